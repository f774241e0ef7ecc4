//! Admin queue against the model firmware: round trips, typed errors,
//! timeouts, ring wrap, ARQ events, reset.

mod common;

use common::*;
use pmd_ice::adminq::{AqDesc, AqError, AqRc};
use pmd_ice::ctx::tlan;
use pmd_ice::hw::{IceError, IceHw};
use pmd_ice::model::firmware_consts as fw;
use pmd_ice::regs::{self, opc};
use pmd_ice::{ProbeOptions, Sink, Speed};
use std::time::Duration;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{Port, TxQueue};

fn hw_for(m: &std::sync::Arc<pmd_ice::IceModel>, aq_len: u16) -> IceHw<pmd_ice::IceModel> {
    IceHw::probe(
        m.clone(),
        0x8086,
        m.device_id(),
        &ProbeOptions {
            aq_len,
            aq_timeout: Duration::from_secs(2),
        },
    )
    .unwrap()
}

#[test]
fn bring_up_round_trips() {
    let m = model(Sink::Count, false, Speed::G25);
    let hw = hw_for(&m, 16);
    assert_eq!(hw.version.fw, fw::FW_VERSION);
    assert_eq!(hw.version.api, fw::API_VERSION);
    assert_eq!(hw.caps.num_txq, 64);
    assert_eq!(hw.caps.num_rxq, 64);
    assert_eq!(hw.caps.max_mtu, regs::MAX_FRAME_SIZE as u32);
    assert_eq!(hw.qparent_teid, fw::TEID_QGROUP);
    assert!(hw.link.up);
    assert_eq!(hw.link.speed_mbps, 25_000);
    assert_eq!(hw.mac, m.config().mac);
    assert_eq!(hw.device_name, "E810-C QSFP");
}

#[test]
fn unsupported_device_is_refused() {
    let m = model(Sink::Count, false, Speed::G100);
    let e = IceHw::probe(m.clone(), 0x8086, 0x10C9, &ProbeOptions::default())
        .err()
        .unwrap();
    assert!(matches!(
        e,
        IceError::UnsupportedDevice { device: 0x10C9, .. }
    ));
    assert!(e.to_string().contains("1591"));
}

#[test]
fn unknown_opcode_is_a_typed_error() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m, 16);
    let mut d = AqDesc::new(0x0FFF);
    let e = hw.send(&mut d, None).unwrap_err();
    assert!(
        matches!(
            e,
            AqError::Firmware {
                opcode: 0x0FFF,
                rc: AqRc::Enosys
            }
        ),
        "{e:?}"
    );
    assert!(d.flags & regs::AQ_FLAG_ERR != 0);
    assert!(e.to_string().contains("ICE_AQ_RC_ENOSYS"), "{e}");
    // The queue keeps working after an error.
    assert!(hw.get_version().is_ok());
}

#[test]
fn bad_teid_bad_queue_and_double_enable_are_rejected() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m, 16);
    hw.setup_vsi(4).unwrap();
    let ring = wirespeed::eal::DmaRegion::alloc(64 * 16).unwrap();
    // Bad parent TEID.
    let good = hw.qparent_teid;
    hw.qparent_teid = 0xDEAD;
    let e = hw.add_txq(0, ring.iova(), 64).unwrap_err();
    assert!(
        matches!(
            e,
            IceError::Aq(AqError::Firmware {
                opcode: opc::ADD_TXQS,
                rc: AqRc::Einval
            })
        ),
        "{e:?}"
    );
    hw.qparent_teid = good;
    // Queue outside the VSI's queue map.
    let e = hw.add_txq(9, ring.iova(), 64).unwrap_err();
    assert!(
        matches!(
            e,
            IceError::Aq(AqError::Firmware {
                rc: AqRc::Einval,
                ..
            })
        ),
        "{e:?}"
    );
    // Enable, then enable again: EEXIST.
    let teid = hw.add_txq(1, ring.iova(), 64).unwrap();
    assert_eq!(teid, fw::TEID_LEAF_BASE + 1);
    let e = hw.add_txq(1, ring.iova(), 64).unwrap_err();
    assert!(
        matches!(
            e,
            IceError::Aq(AqError::Firmware {
                rc: AqRc::Eexist,
                ..
            })
        ),
        "{e:?}"
    );
    // Disable a queue that is not enabled: ENOENT.
    let e = hw.dis_txq(2).unwrap_err();
    assert!(
        matches!(
            e,
            IceError::Aq(AqError::Firmware {
                opcode: opc::DIS_TXQS,
                rc: AqRc::Enoent
            })
        ),
        "{e:?}"
    );
    hw.dis_txq(1).unwrap();
    assert!(!m.tx_queue_running(1));
}

#[test]
fn firmware_decodes_the_driver_tlan_context() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut port = configured(&m, 256, 0);
    port.start().unwrap();
    let q = port.ice_tx_queue(1).unwrap();
    let c = m.tx_queue_context(1).expect("queue enabled");
    let (_, _, _, vsi) = port.firmware_info();
    assert_eq!(c.qlen, 256);
    assert_eq!(c.ring_iova() % regs::RING_BASE_ALIGN, 0);
    assert_eq!(c.vmvf_type as u64, tlan::VMVF_TYPE_PF);
    assert_eq!(c.src_vsi, vsi.unwrap());
    assert_eq!(c.pf_num, fw::PF_NUM);
    assert_eq!(c.port_num, fw::LPORT);
    assert!(c.tsyn_ena && c.tso_ena && c.legacy_int);
    assert_eq!(c.tso_qnum, 1);
    assert_eq!(q.ring_size(), 256);
}

#[test]
fn timeout_when_firmware_does_not_answer() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m, 16);
    hw.aq.set_timeout(Duration::from_millis(50));
    m.set_firmware_responding(false);
    let t0 = std::time::Instant::now();
    let e = hw.get_version().unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(2), "bounded wait");
    assert!(
        matches!(
            e,
            IceError::Aq(AqError::Timeout {
                opcode: opc::GET_VER,
                ms: 50
            })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("did not answer"));
}

#[test]
fn atq_ring_wraps() {
    let m = model(Sink::Count, false, Speed::G100);
    // Probe uses 9 commands (get_ver, clear_pf_cfg, list_dev_caps,
    // list_func_caps twice — its 4-element first buffer is short for the
    // model's 5 capabilities, ENOMEM + count, retried — get_sw_cfg,
    // get_dflt_topo, get_link_status, manage_mac_read); a 4-entry ring has
    // wrapped already.
    let mut hw = hw_for(&m, 4);
    let before = m.stats().admin_commands;
    for i in 0..23u32 {
        let v = hw.get_version().unwrap();
        assert_eq!(v.fw, fw::FW_VERSION, "command {i}");
    }
    assert_eq!(m.stats().admin_commands - before, 23);
    assert_eq!(hw.aq.atq_next(), ((9 + 23) % 4) as u16);
}

#[test]
fn arq_delivers_the_link_event() {
    let m = model(Sink::Count, false, Speed::G10);
    let mut hw = hw_for(&m, 8);
    // Probe asked for link-status events: the firmware reported the state.
    let regs = hw.regs.clone();
    let ev = hw.aq.receive(&*regs).expect("link event");
    assert_eq!(ev.desc.opcode, opc::GET_LINK_STATUS);
    assert_eq!(ev.data[regs::LINK_DATA_INFO_OFF] & regs::AQ_LINK_UP, 1);
    assert_eq!(
        u16::from_le_bytes([
            ev.data[regs::LINK_DATA_SPEED_OFF],
            ev.data[regs::LINK_DATA_SPEED_OFF + 1]
        ]),
        regs::AQ_LINK_SPEED_10GB
    );
    assert!(hw.aq.receive(&*regs).is_none());
}

#[test]
fn pf_reset_disables_queues_and_admin_queue() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m, 8);
    hw.setup_vsi(2).unwrap();
    let ring = wirespeed::eal::DmaRegion::alloc(64 * 16).unwrap();
    hw.add_txq(0, ring.iova(), 64).unwrap();
    assert!(m.tx_queue_running(0));
    pmd_ice::hw::pf_reset(&*m).unwrap();
    assert!(!m.tx_queue_running(0));
    assert_eq!(m.read32(regs::PF_FW_ATQLEN), 0);
    // The old admin queue is gone: a command now times out (bounded).
    hw.aq.set_timeout(Duration::from_millis(30));
    assert!(matches!(
        hw.get_version(),
        Err(IceError::Aq(AqError::Timeout { .. }))
    ));
    // A fresh probe works.
    let hw2 = hw_for(&m, 8);
    assert!(hw2.link.up);
}

#[test]
fn arq_ring_wraps() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m, 4);
    let regs = hw.regs.clone();
    assert!(hw.aq.receive(&*regs).is_some()); // the probe's event
    for i in 0..11 {
        hw.get_link_status(true).unwrap();
        let ev = hw.aq.receive(&*regs).unwrap_or_else(|| panic!("event {i}"));
        assert_eq!(ev.desc.opcode, opc::GET_LINK_STATUS);
        assert_eq!(ev.data.len(), regs::LINK_STATUS_DATALEN);
    }
    assert!(hw.aq.receive(&*regs).is_none());
}

#[test]
fn cookie_mismatch_is_detected() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m, 8);
    m.corrupt_next_cookie();
    let e = hw.get_version().unwrap_err();
    match e {
        IceError::Aq(AqError::CookieMismatch { opcode, want, got }) => {
            assert_eq!(opcode, opc::GET_VER);
            assert_eq!(got, want + 1);
        }
        e => panic!("{e:?}"),
    }
    assert!(hw.get_version().is_ok(), "next command matches again");
}

#[test]
fn short_caps_buffer_reports_enomem_and_needed_count() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m, 8);
    let mut buf = vec![0u8; regs::CAPS_ELEM_SIZE];
    let mut d = AqDesc::new(opc::LIST_FUNC_CAPS);
    let e = hw.send(&mut d, Some((&mut buf, false))).unwrap_err();
    assert!(
        matches!(
            e,
            AqError::Firmware {
                rc: AqRc::Enomem,
                ..
            }
        ),
        "{e:?}"
    );
    // VSI, RSS, RXQS, TXQS, MAX_MTU.
    assert_eq!(d.param_u32(regs::LIST_CAPS_COUNT_OFF), 5);
}
