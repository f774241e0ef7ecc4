//! The driver against the model's own reading of the published definitions
//! (`pmd_ice::model::spec`, written independently of `pmd_ice::regs`):
//! everything the driver encodes is decoded with the model's table, field by
//! field, so a wrong driver constant fails here.

mod common;

use common::*;
use pmd_ice::adminq::AqDesc;
use pmd_ice::ctx::{rlan, tlan, Field, RlanCtx, TlanCtx, RLAN_CTX_SIZE, TLAN_CTX_SIZE};
use pmd_ice::hw::{IceHw, ProbeOptions};
use pmd_ice::model::firmware_consts as fw;
use pmd_ice::model::spec;
use pmd_ice::regs;
use pmd_ice::{Sink, Speed};
use std::time::Duration;
use wirespeed::ethdev::{Port, RxQueue, TxQueue};

fn hw_for(m: &std::sync::Arc<pmd_ice::IceModel>) -> IceHw<pmd_ice::IceModel> {
    IceHw::probe(
        m.clone(),
        0x8086,
        m.device_id(),
        &ProbeOptions {
            aq_len: 16,
            aq_timeout: Duration::from_secs(2),
        },
    )
    .unwrap()
}

/// The driver's field table for TLAN, by published name.
fn driver_tlan_fields() -> Vec<(&'static str, Field)> {
    vec![
        ("base", tlan::BASE),
        ("port_num", tlan::PORT_NUM),
        ("cgd_num", tlan::CGD_NUM),
        ("pf_num", tlan::PF_NUM),
        ("vmvf_num", tlan::VMVF_NUM),
        ("vmvf_type", tlan::VMVF_TYPE),
        ("src_vsi", tlan::SRC_VSI),
        ("tsyn_ena", tlan::TSYN_ENA),
        ("internal_usage_flag", tlan::INTERNAL_USAGE_FLAG),
        ("alt_vlan", tlan::ALT_VLAN),
        ("cpuid", tlan::CPUID),
        ("wb_mode", tlan::WB_MODE),
        ("tphrd_desc", tlan::TPHRD_DESC),
        ("tphrd", tlan::TPHRD),
        ("tphwr_desc", tlan::TPHWR_DESC),
        ("cmpq_id", tlan::CMPQ_ID),
        ("qnum_in_func", tlan::QNUM_IN_FUNC),
        ("itr_notification_mode", tlan::ITR_NOTIFICATION_MODE),
        ("adjust_prof_id", tlan::ADJUST_PROF_ID),
        ("qlen", tlan::QLEN),
        ("quanta_prof_idx", tlan::QUANTA_PROF_IDX),
        ("tso_ena", tlan::TSO_ENA),
        ("tso_qnum", tlan::TSO_QNUM),
        ("legacy_int", tlan::LEGACY_INT),
        ("drop_ena", tlan::DROP_ENA),
        ("cache_prof_idx", tlan::CACHE_PROF_IDX),
        ("pkt_shaper_prof_idx", tlan::PKT_SHAPER_PROF_IDX),
    ]
}

fn driver_rlan_fields() -> Vec<(&'static str, Field)> {
    vec![
        ("head", rlan::HEAD),
        ("cpuid", rlan::CPUID),
        ("base", rlan::BASE),
        ("qlen", rlan::QLEN),
        ("dbuf", rlan::DBUF),
        ("hbuf", rlan::HBUF),
        ("dtype", rlan::DTYPE),
        ("dsize", rlan::DSIZE),
        ("crcstrip", rlan::CRCSTRIP),
        ("l2tsel", rlan::L2TSEL),
        ("hsplit_0", rlan::HSPLIT_0),
        ("hsplit_1", rlan::HSPLIT_1),
        ("showiv", rlan::SHOWIV),
        ("rxmax", rlan::RXMAX),
        ("lrxqthresh", rlan::LRXQTHRESH),
        ("prefena", rlan::PREFENA),
    ]
}

/// Every driver TLAN field sits where the published table puts it; each one
/// written alone with all-ones decodes, with the model's table, to all-ones
/// in that field and nothing anywhere else.
#[test]
fn tlan_fields_match_the_published_table() {
    for (name, fd) in driver_tlan_fields() {
        let sf = spec::TLAN_FIELDS
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} not published"));
        assert_eq!((fd.width, fd.lsb), (sf.width, sf.lsb), "tlan {name}");
        let mut img = [0u8; TLAN_CTX_SIZE];
        pmd_ice::ctx::put(&mut img, fd, u64::MAX);
        for other in spec::TLAN_FIELDS.iter() {
            let want = if other.name == name {
                (1u64 << other.width.min(63)) - 1
            } else {
                0
            };
            assert_eq!(
                spec::ctx_get(&img, &spec::TLAN_FIELDS, other.name),
                want,
                "driver field {name}, model field {}",
                other.name
            );
        }
    }
    assert_eq!(TLAN_CTX_SIZE, spec::TLAN_BYTES);
}

/// A TLAN context packed by the driver, decoded field by field by the model.
#[test]
fn tlan_context_round_trips_through_the_model_table() {
    let c = TlanCtx {
        base: 0x0123_4567_89AB,
        port_num: 5,
        cgd_num: 17,
        pf_num: 6,
        vmvf_num: 0x2A5,
        vmvf_type: 2,
        src_vsi: 0x1C3,
        tsyn_ena: true,
        alt_vlan: true,
        wb_mode: false,
        qnum_in_func: 0x2BCD,
        qlen: 0x1ABC,
        quanta_prof_idx: 9,
        tso_ena: true,
        tso_qnum: 0x5A5,
        legacy_int: true,
        drop_ena: true,
    };
    let img = c.pack();
    let g = |n| spec::ctx_get(&img, &spec::TLAN_FIELDS, n);
    assert_eq!(g("base"), c.base);
    assert_eq!(g("port_num"), c.port_num as u64);
    assert_eq!(g("cgd_num"), c.cgd_num as u64);
    assert_eq!(g("pf_num"), c.pf_num as u64);
    assert_eq!(g("vmvf_num"), c.vmvf_num as u64);
    assert_eq!(g("vmvf_type"), c.vmvf_type as u64);
    assert_eq!(g("src_vsi"), c.src_vsi as u64);
    assert_eq!(g("tsyn_ena"), 1);
    assert_eq!(g("alt_vlan"), 1);
    assert_eq!(g("wb_mode"), 0);
    assert_eq!(g("qnum_in_func"), c.qnum_in_func as u64);
    assert_eq!(g("qlen"), c.qlen as u64);
    assert_eq!(g("quanta_prof_idx"), c.quanta_prof_idx as u64);
    assert_eq!(g("tso_ena"), 1);
    assert_eq!(g("tso_qnum"), c.tso_qnum as u64);
    assert_eq!(g("legacy_int"), 1);
    assert_eq!(g("drop_ena"), 1);
    assert!(spec::ctx_stray_bits(&img, &spec::TLAN_FIELDS).is_empty());
    assert_eq!(tlan::VMVF_TYPE_PF, spec::TLAN_VMVF_TYPE_PF);
}

#[test]
fn rlan_fields_match_the_published_table() {
    for (name, fd) in driver_rlan_fields() {
        let sf = spec::RLAN_FIELDS
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} not published"));
        assert_eq!((fd.width, fd.lsb), (sf.width, sf.lsb), "rlan {name}");
    }
    let c = RlanCtx {
        head: 0x1234,
        base: 0x00AB_CDEF_0123,
        qlen: 0x1555,
        dbuf: 0x55,
        dsize: true,
        crcstrip: true,
        l2tsel: true,
        showiv: true,
        rxmax: 0x2AAA,
        lrxqthresh: 5,
        prefena: true,
    };
    let img = c.pack();
    let g = |n| spec::ctx_get(&img, &spec::RLAN_FIELDS, n);
    assert_eq!(g("head"), c.head as u64);
    assert_eq!(g("base"), c.base);
    assert_eq!(g("qlen"), c.qlen as u64);
    assert_eq!(g("dbuf"), c.dbuf as u64);
    assert_eq!(g("dsize"), 1);
    assert_eq!(g("crcstrip"), 1);
    assert_eq!(g("l2tsel"), 1);
    assert_eq!(g("showiv"), 1);
    assert_eq!(g("rxmax"), c.rxmax as u64);
    assert_eq!(g("lrxqthresh"), c.lrxqthresh as u64);
    assert_eq!(g("prefena"), 1);
    assert!(spec::ctx_stray_bits(&img, &spec::RLAN_FIELDS).is_empty());
    assert_eq!(RLAN_CTX_SIZE, spec::RLAN_BYTES);
    assert_eq!(rlan::DBUF_SHIFT, spec::RLAN_DBUF_UNIT_SHIFT);
    assert_eq!(rlan::BASE_SHIFT, spec::RLAN_BASE_UNIT_SHIFT);
}

/// The VSI properties buffer the driver sends, decoded with the published
/// `ice_aqc_vsi_props` offsets.
#[test]
fn vsi_props_round_trip() {
    let b = IceHw::<pmd_ice::IceModel>::vsi_props(3, 6);
    assert_eq!(b.len(), spec::VSI_PROPS_BYTES);
    assert_eq!(
        spec::le16(&b, 0),
        spec::VSI_PROP_RXQ_MAP_VALID | spec::VSI_PROP_Q_OPT_VALID,
        "queue map and queueing options valid"
    );
    // ice_set_rss_vsi_ctx for a PF VSI: the PF LUT, Toeplitz.
    assert_eq!(
        b[spec::VSI_Q_OPT_RSS],
        spec::Q_OPT_RSS_LUT_PF | (spec::Q_OPT_RSS_HASH_TPLZ << spec::Q_OPT_RSS_HASH_S)
    );
    assert_eq!(spec::le16(&b, spec::VSI_MAPPING_FLAGS), 0, "contiguous");
    assert_eq!(spec::le16(&b, spec::VSI_Q_MAPPING), 3, "q_mapping[0]");
    assert_eq!(spec::le16(&b, spec::VSI_Q_MAPPING + 2), 6, "q_mapping[1]");
    let tc0 = spec::le16(&b, spec::VSI_TC_MAPPING);
    assert_eq!(tc0 & 0x7FF, 0, "TC0 queue offset");
    assert_eq!(
        (tc0 & spec::VSI_TC_Q_NUM_M) >> spec::VSI_TC_Q_NUM_SHIFT,
        3,
        "2^3 >= 6"
    );
    // Nothing else written.
    for (i, x) in b.iter().enumerate() {
        let known = i < 2
            || (spec::VSI_Q_MAPPING..spec::VSI_Q_MAPPING + 4).contains(&i)
            || (spec::VSI_TC_MAPPING..spec::VSI_TC_MAPPING + 2).contains(&i)
            || i == spec::VSI_Q_OPT_RSS;
        assert!(known || *x == 0, "stray byte {i} = {x:#x}");
    }
}

/// The admin descriptor the driver writes, decoded with the published
/// `ice_aq_desc` offsets.
#[test]
fn aq_descriptor_layout() {
    let mut d = AqDesc::new(regs::opc::GET_LINK_STATUS);
    d.datalen = 0x1234;
    d.retval = 0x5678;
    d.cookie_high = 0x0A0B_0C0D;
    d.cookie_low = 0x1112_1314;
    d.set_buf_addr(0x1122_3344_5566_7788);
    let b = d.to_bytes();
    assert_eq!(spec::le16(&b, spec::AQD_FLAGS), spec::AQF_SI);
    assert_eq!(spec::le16(&b, spec::AQD_OPCODE), spec::op::GET_LINK_STATUS);
    assert_eq!(spec::le16(&b, spec::AQD_DATALEN), 0x1234);
    assert_eq!(spec::le16(&b, spec::AQD_RETVAL), 0x5678);
    assert_eq!(spec::le32(&b, spec::AQD_COOKIE_H), 0x0A0B_0C0D);
    assert_eq!(spec::le32(&b, spec::AQD_COOKIE_L), 0x1112_1314);
    assert_eq!(
        spec::le32(&b, spec::AQD_PARAMS + 8),
        0x1122_3344,
        "addr_high"
    );
    assert_eq!(
        spec::le32(&b, spec::AQD_PARAMS + 12),
        0x5566_7788,
        "addr_low"
    );
}

/// Every driver constant that has a published counterpart in the model's table.
#[test]
fn driver_constants_match_the_model_table() {
    let pairs: [(&str, u64, u64); 52] = [
        (
            "QTX_COMM_DBELL(7)",
            regs::qtx_comm_dbell(7) as u64,
            spec::qtx_comm_dbell(7) as u64,
        ),
        (
            "QTX_COMM_HEAD(7)",
            regs::qtx_comm_head(7) as u64,
            spec::qtx_comm_head(7) as u64,
        ),
        (
            "QRX_TAIL(7)",
            regs::qrx_tail(7) as u64,
            spec::qrx_tail(7) as u64,
        ),
        (
            "QRX_CTRL(7)",
            regs::qrx_ctrl(7) as u64,
            spec::qrx_ctrl(7) as u64,
        ),
        (
            "QRX_CTRL_QENA_REQ",
            regs::QRX_CTRL_QENA_REQ as u64,
            spec::QRX_CTRL_QENA_REQ as u64,
        ),
        (
            "QRX_CTRL_QENA_STAT",
            regs::QRX_CTRL_QENA_STAT as u64,
            spec::QRX_CTRL_QENA_STAT as u64,
        ),
        (
            "QRX_CONTEXT(3,7)",
            regs::qrx_context(3, 7) as u64,
            spec::qrx_context(3, 7) as u64,
        ),
        (
            "QRXFLXP_CNTXT(7)",
            regs::qrxflxp_cntxt(7) as u64,
            spec::qrxflxp_cntxt(7) as u64,
        ),
        (
            "QRXFLXP_CNTXT_RXDID_PRIO_S",
            regs::QRXFLXP_CNTXT_RXDID_PRIO_S as u64,
            spec::QRXFLXP_RXDID_PRIO.0 as u64,
        ),
        (
            "RXDID_PRIO",
            regs::RXDID_PRIO as u64,
            spec::RXDID_PRIO_EXPECTED as u64,
        ),
        (
            "PF_FW_ATQLEN",
            regs::PF_FW_ATQLEN as u64,
            spec::PF_FW_ATQLEN as u64,
        ),
        (
            "PF_FW_ARQLEN",
            regs::PF_FW_ARQLEN as u64,
            spec::PF_FW_ARQLEN as u64,
        ),
        (
            "PF_FW_ATQT",
            regs::PF_FW_ATQT as u64,
            spec::PF_FW_ATQT as u64,
        ),
        (
            "PF_FW_ARQH",
            regs::PF_FW_ARQH as u64,
            spec::PF_FW_ARQH as u64,
        ),
        (
            "AQLEN_VFE",
            regs::PF_FW_AQLEN_VFE as u64,
            spec::AQLEN_VFE as u64,
        ),
        (
            "AQLEN_OVFL",
            regs::PF_FW_AQLEN_OVFL as u64,
            spec::AQLEN_OVFL as u64,
        ),
        (
            "AQLEN_CRIT",
            regs::PF_FW_AQLEN_CRIT as u64,
            spec::AQLEN_CRIT as u64,
        ),
        (
            "AQLEN_ENABLE",
            regs::PF_FW_AQLEN_ENABLE as u64,
            spec::AQLEN_ENABLE as u64,
        ),
        (
            "PF_FUNC_RID",
            regs::PF_FUNC_RID as u64,
            spec::PF_FUNC_RID as u64,
        ),
        ("GLNVM_ULD", regs::GLNVM_ULD as u64, spec::GLNVM_ULD as u64),
        (
            "ICE_RESET_DONE_MASK",
            regs::GLNVM_ULD_RESET_DONE as u64,
            spec::GLNVM_ULD_RESET_DONE as u64,
        ),
        (
            "GL_MDET_TX_PQM",
            regs::GL_MDET_TX_PQM as u64,
            spec::GL_MDET_TX_PQM as u64,
        ),
        (
            "GL_MDET_TX_TCLAN",
            regs::GL_MDET_TX_TCLAN as u64,
            spec::GL_MDET_TX_TCLAN as u64,
        ),
        (
            "GL_MDET_TX_TDPU",
            regs::GL_MDET_TX_TDPU as u64,
            spec::GL_MDET_TX_TDPU as u64,
        ),
        (
            "GL_MDET_RX",
            regs::GL_MDET_RX as u64,
            spec::GL_MDET_RX as u64,
        ),
        (
            "PF_MDET_TX_TCLAN",
            regs::PF_MDET_TX_TCLAN as u64,
            spec::PF_MDET_TX_TCLAN as u64,
        ),
        (
            "GLPRT_GOTCL(3)",
            regs::glprt_gotcl(3) as u64,
            spec::glprt_gotcl(3) as u64,
        ),
        (
            "GLPRT_UPTCL(3)",
            regs::glprt_uptcl(3) as u64,
            spec::glprt_uptcl(3) as u64,
        ),
        (
            "GLV_GOTCL(9)",
            regs::glv_gotcl(9) as u64,
            spec::glv_gotcl(9) as u64,
        ),
        (
            "GLV_UPTCL(9)",
            regs::glv_uptcl(9) as u64,
            spec::glv_uptcl(9) as u64,
        ),
        (
            "GLV_TEPC(9)",
            regs::glv_tepc(9) as u64,
            spec::glv_tepc(9) as u64,
        ),
        ("TXD_QW1_CMD_M", regs::TXD_QW1_CMD_M, spec::TXD_QW1_CMD_M),
        (
            "TXD_QW1_TX_BUF_SZ_M",
            regs::TXD_QW1_TX_BUF_SZ_M,
            spec::TXD_QW1_TX_BUF_SZ_M,
        ),
        (
            "TXD_QW1_L2TAG1_S",
            regs::TXD_QW1_L2TAG1_S as u64,
            spec::TXD_L2TAG1.0 as u64,
        ),
        (
            "TXD_QW1_OFFSET_S",
            regs::TXD_QW1_OFFSET_S as u64,
            spec::TXD_OFFSET.0 as u64,
        ),
        (
            "RX_FLEX_STATUS0_DD",
            regs::RX_FLEX_STATUS0_DD as u64,
            1 << spec::RX_STATUS0_DD_BIT,
        ),
        (
            "RX_FLEX_STATUS0_EOF",
            regs::RX_FLEX_STATUS0_EOF as u64,
            1 << spec::RX_STATUS0_EOF_BIT,
        ),
        (
            "RX_FLEX_STATUS0_RXE",
            regs::RX_FLEX_STATUS0_RXE as u64,
            1 << spec::RX_STATUS0_RXE_BIT,
        ),
        (
            "RX_FLEX_STATUS0_IPV6EXADD",
            regs::RX_FLEX_STATUS0_IPV6EXADD as u64,
            1 << spec::RX_STATUS0_IPV6EXADD_BIT,
        ),
        (
            "RX_FLEX_STATUS0_OFF",
            regs::RX_FLEX_STATUS0_OFF as u64,
            spec::RX_STATUS0_BYTE as u64,
        ),
        (
            "RX_FLEX_PKT_LEN_OFF",
            regs::RX_FLEX_PKT_LEN_OFF as u64,
            spec::RX_PKT_LEN_BYTE as u64,
        ),
        (
            "MAX_CHAINED_RX_BUFS",
            regs::MAX_CHAINED_RX_BUFS as u64,
            spec::MAX_CHAINED_RX_BUFS as u64,
        ),
        (
            "SW_CONF_RESP_FUNC_NUM_M",
            regs::SW_CONF_RESP_FUNC_NUM_M as u64,
            spec::SWCFG_FUNC_NUM_M as u64,
        ),
        (
            "SW_CONF_RESP_IS_VF",
            regs::SW_CONF_RESP_IS_VF as u64,
            spec::SWCFG_IS_VF as u64,
        ),
        (
            "VSI_PROPS_MAPPING_FLAGS_OFF",
            regs::VSI_PROPS_MAPPING_FLAGS_OFF as u64,
            spec::VSI_MAPPING_FLAGS as u64,
        ),
        (
            "VSI_PROPS_Q_MAPPING_OFF",
            regs::VSI_PROPS_Q_MAPPING_OFF as u64,
            spec::VSI_Q_MAPPING as u64,
        ),
        (
            "VSI_PROPS_TC_MAPPING_OFF",
            regs::VSI_PROPS_TC_MAPPING_OFF as u64,
            spec::VSI_TC_MAPPING as u64,
        ),
        (
            "LINK_DATA_MAX_FRAME_OFF",
            regs::LINK_DATA_MAX_FRAME_OFF as u64,
            spec::LINK_MAX_FRAME as u64,
        ),
        (
            "LINK_DATA_SPEED_OFF",
            regs::LINK_DATA_SPEED_OFF as u64,
            spec::LINK_SPEED as u64,
        ),
        ("AQ_LSE_DIS", regs::AQ_LSE_DIS as u64, spec::LSE_DIS as u64),
        (
            "Q_DIS_CMD_FLUSH_PIPE",
            regs::Q_DIS_CMD_FLUSH_PIPE as u64,
            spec::DISQ_FLUSH_PIPE as u64,
        ),
        (
            "Q_DIS_TIMEOUT_S",
            regs::Q_DIS_TIMEOUT_S as u64,
            spec::DISQ_TIMEOUT_SHIFT as u64,
        ),
    ];
    let bad: Vec<_> = pairs.iter().filter(|(_, d, s)| d != s).collect();
    assert!(
        bad.is_empty(),
        "driver ≠ published (name, driver, model): {bad:?}"
    );
    assert_eq!(regs::Q_DIS_TIMEOUT, spec::DISQ_TIMEOUT_EXPECTED);
    assert_eq!(regs::AQ_LINK_SPEED_100GB, spec::LINK_SPEED_100G);
    assert_eq!(regs::AQ_LINK_SPEED_25GB, spec::LINK_SPEED_25G);
    assert_eq!(regs::AQ_LINK_SPEED_10GB, spec::LINK_SPEED_10G);
}

/// The link speed the driver reads is the one the model reports, at each speed.
#[test]
fn link_speed_reads_back_at_every_speed() {
    for (sp, mbps) in [
        (Speed::G10, 10_000),
        (Speed::G25, 25_000),
        (Speed::G100, 100_000),
    ] {
        let m = model(Sink::Count, false, sp);
        let hw = hw_for(&m);
        assert!(hw.link.up);
        assert_eq!(hw.link.speed_mbps, mbps, "{sp:?}");
    }
}

/// Link events enabled and disabled as asked (ICE_AQ_LSE_ENA / _DIS).
#[test]
fn link_events_follow_the_request() {
    let m = model(Sink::Count, false, Speed::G25);
    let mut hw = hw_for(&m);
    assert!(m.link_events_enabled(), "probe enables them");
    hw.get_link_status(false).unwrap();
    assert!(!m.link_events_enabled(), "LSE_DIS turns them off");
    hw.get_link_status(true).unwrap();
    assert!(m.link_events_enabled());
}

/// The PF number comes from PF_FUNC_RID, the logical port from get_sw_cfg,
/// and the queue base from list_func_caps; none of them is 0 in the model.
#[test]
fn pf_identity_and_queue_base() {
    let m = model(Sink::Count, false, Speed::G25);
    let hw = hw_for(&m);
    assert_eq!(hw.pf_num, fw::PF_NUM);
    assert_eq!(hw.lport, fw::LPORT);
    assert_eq!(hw.caps.first_txq, fw::FIRST_QUEUE);
    assert_ne!(fw::FIRST_QUEUE, 0);
}

/// TX queue 0 is PF-relative queue 0 everywhere: the TLAN context's
/// `tso_qnum`, the doorbell, the MDD report; and dis_txqs as the reference
/// drivers send it is accepted.
#[test]
fn tx_queues_are_pf_relative() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let c = m.tx_queue_context(0).expect("PF-relative queue 0 enabled");
    assert_eq!(c.tso_qnum, 0);
    let mut pool = pool(128);
    let mut b = wirespeed::mbuf::Burst::new();
    for s in 0..2 {
        b.push(mbuf(&mut pool, &frame(s, 64))).unwrap();
    }
    q.tx_burst(&mut b);
    wait_until("two frames on the wire", || m.stats().tx_frames == 2);
    port.stop().unwrap();
    assert!(!m.tx_queue_running(0), "dis_txqs accepted");
}

/// The RX queue context and flex profile the driver programs are accepted by
/// the model's table (RXDID 2 at priority 3, rxmax within the buffer).
#[test]
fn rx_queue_is_accepted() {
    let m = model(Sink::Loopback, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut rx = port.ice_rx_queue(0).unwrap();
    let mut pool = pool(512);
    let mut out = wirespeed::mbuf::Burst::new();
    rx.rx_burst(&mut pool, &mut out, 32);
    assert!(
        m.rx_queue_enabled(0),
        "the firmware accepted the RLAN context"
    );
}

/// q_shutdown says the driver is unloading.
#[test]
fn shutdown_says_driver_unloading() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m);
    hw.shutdown();
    assert!(m.driver_unloaded());
}

/// With small buffers the driver keeps `rxmax` within what the published rule
/// allows (≤ ICE_MAX_CHAINED_RX_BUFS × buffer; this driver: one buffer), so
/// the firmware accepts the context; 9728 with 1 KiB buffers would not be.
#[test]
fn rxmax_follows_the_buffer_size() {
    wirespeed::eal::dma::set_page_mode(wirespeed::eal::dma::PageMode::Small);
    let m = model(Sink::Loopback, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut rx = port.ice_rx_queue(0).unwrap();
    let mut pool = wirespeed::mbuf::Mempool::new(&wirespeed::mbuf::PoolConfig {
        name: "ice-small".into(),
        size: 512,
        headroom: 128,
        data_room: 1024,
    })
    .unwrap();
    let mut out = wirespeed::mbuf::Burst::new();
    rx.rx_burst(&mut pool, &mut out, 32);
    assert!(m.rx_queue_enabled(0), "rxmax ≤ 5 × 1024 accepted");
}

fn pool_of(name: &str, n: u32, data_room: u16) -> wirespeed::mbuf::Mempool {
    wirespeed::eal::dma::set_page_mode(wirespeed::eal::dma::PageMode::Small);
    wirespeed::mbuf::Mempool::new(&wirespeed::mbuf::PoolConfig {
        name: name.into(),
        size: n,
        headroom: 128,
        data_room,
    })
    .unwrap()
}

/// Frames larger than one RX buffer arrive in up to ICE_MAX_CHAINED_RX_BUFS
/// buffers and are delivered as one mbuf chain, byte-exact; frames above
/// rxmax (5 × 1 KiB here) are dropped by the device.
#[test]
fn chained_rx_buffers_deliver_one_chain() {
    let m = model(Sink::Loopback, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut txq = port.ice_tx_queue(0).unwrap();
    let mut rxq = port.ice_rx_queue(0).unwrap();
    let mut txpool = pool_of("ice-tx-big", 256, 8192);
    let mut rxpool = pool_of("ice-rx-small", 512, 1024);
    let mut got = wirespeed::mbuf::Burst::new();
    assert_eq!(rxq.rx_burst(&mut rxpool, &mut got, 32), 0);
    // 1000 B: one buffer; 1024: exactly one; 1025: two; 3000: three; 5120: five.
    let sizes = [1000usize, 1024, 1025, 3000, 5120, 60, 2049];
    let frames: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(s, &l)| frame(s as u32, l))
        .collect();
    let mut b = wirespeed::mbuf::Burst::new();
    for f in &frames {
        b.push(mbuf(&mut txpool, f)).unwrap();
    }
    // And one frame over rxmax, which the device drops.
    b.push(mbuf(&mut txpool, &frame(99, 6000))).unwrap();
    let mut seen = Vec::new();
    let mut segs = Vec::new();
    wait_until("chained frames looped back", || {
        txq.tx_burst(&mut b);
        txq.clean(usize::MAX);
        rxq.rx_burst(&mut rxpool, &mut got, 32);
        while let Some(m) = got.pop_front() {
            segs.push(m.nb_segs());
            let mut v = Vec::new();
            for s in m.segments() {
                v.extend_from_slice(s.data);
            }
            assert_eq!(v.len(), m.pkt_len());
            seen.push(v);
        }
        seen.len() == frames.len() && m.stats().rx_oversize == 1
    });
    assert_eq!(seen, frames);
    assert_eq!(segs, vec![1, 1, 2, 3, 5, 1, 3]);
    assert_eq!(rxq.stats().errors.get(), 0);
}

/// Link set-up as DPDK does it (get_phy_caps with media → set_phy_cfg with
/// ENA_LINK | AUTO_LINK_UPDT), restart_an with and without LINK_ENABLE, and
/// the link-up wait naming the cable/module state when it fails.
#[test]
fn link_setup_restart_and_wait() {
    let m = model(Sink::Count, false, Speed::G25);
    let mut hw = hw_for(&m);
    let caps = hw.get_phy_caps(regs::AQC_REPORT_TOPO_CAP_MEDIA).unwrap();
    assert_eq!(caps.len(), spec::PHY_CAPS_BYTES);
    assert_eq!(
        u64::from_le_bytes(caps[0..8].try_into().unwrap()),
        spec::PHY_TYPE_25GBASE_CR
    );
    hw.setup_link().unwrap();
    assert!(m.link_up());
    hw.restart_an(false).unwrap();
    assert!(
        !m.link_up(),
        "restart_an without LINK_ENABLE takes the link down"
    );
    let e = hw.wait_link_up(Duration::from_millis(30)).unwrap_err();
    assert!(e.to_string().contains("did not come up"), "{e}");
    hw.restart_an(true).unwrap();
    let l = hw.wait_link_up(Duration::from_secs(1)).unwrap();
    assert_eq!(l.speed_mbps, 25_000);
    // No cable: the error says so.
    m.set_media_present(false);
    let e = hw.wait_link_up(Duration::from_millis(30)).unwrap_err();
    assert!(e.to_string().contains("no cable or module"), "{e}");
    m.set_media_present(true);
    assert!(hw.wait_link_up(Duration::from_secs(1)).unwrap().up);
}

/// The PHY configuration the driver sends, decoded with the model's table.
#[test]
fn set_phy_cfg_layout() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut hw = hw_for(&m);
    let mut cfg = [0u8; regs::SET_PHY_CFG_DATA_SIZE];
    cfg[0..8].copy_from_slice(&spec::PHY_TYPE_100GBASE_CR4.to_le_bytes());
    cfg[spec::SET_PHY_CAPS] = 0xFF; // the driver masks to the valid bits
    hw.set_phy_cfg(&mut cfg).unwrap();
    assert_eq!(cfg[spec::SET_PHY_CAPS], spec::SET_PHY_VALID_MASK);
    assert_eq!(regs::SET_PHY_CFG_DATA_SIZE, spec::SET_PHY_BYTES);
    assert_eq!(regs::AQ_PHY_ENA_LINK, spec::SET_PHY_ENA_LINK);
    assert_eq!(
        regs::AQ_PHY_ENA_AUTO_LINK_UPDT,
        spec::SET_PHY_AUTO_LINK_UPDT
    );
    assert_eq!(
        regs::AQC_RESTART_AN_LINK_RESTART,
        spec::RESTART_AN_LINK_RESTART
    );
    assert_eq!(
        regs::AQC_RESTART_AN_LINK_ENABLE,
        spec::RESTART_AN_LINK_ENABLE
    );
    assert_eq!(regs::PHY_CAPS_DATA_SIZE, spec::PHY_CAPS_BYTES);
    assert_eq!(regs::PHY_CAPS_CAPS_OFF, spec::PHY_CAPS_CAPS);
}

/// A port started on an unplugged cable still starts; waiting for the link
/// fails with the reason.
#[test]
fn port_wait_link_up_names_the_cable_state() {
    let m = model(Sink::Count, false, Speed::G10);
    let mut port = configured(&m, 64, 0);
    m.set_media_present(false);
    port.start().unwrap();
    assert!(!port.link().up);
    let e = port.wait_link_up(Duration::from_millis(30)).unwrap_err();
    assert!(e.to_string().contains("no cable or module"), "{e}");
    m.set_media_present(true);
    assert!(port.wait_link_up(Duration::from_secs(1)).unwrap().up);
}

/// list_dev_caps: the device's enabled PFs include this one; queue totals.
#[test]
fn device_capabilities() {
    let m = model(Sink::Count, false, Speed::G100);
    let hw = hw_for(&m);
    assert_eq!(
        hw.dev_caps.valid_functions & (1 << fw::PF_NUM),
        1 << fw::PF_NUM
    );
    assert_eq!(hw.dev_caps.num_txq, 128);
    assert_eq!(hw.dev_caps.num_rxq, 128);
    assert_eq!(hw.dev_caps.num_vsi, 768);
    assert_eq!(regs::caps::VALID_FUNCTIONS, spec::CAP_VALID_FUNCTIONS);
}

/// RX status bits at their published positions: a frame with RXE (bit 10)
/// is dropped and counted, whole even when chained; a frame with IPV6EXADD
/// (bit 9, not an error) is delivered.
#[test]
fn rx_error_bit_is_rxe_not_ipv6exadd() {
    let m = model(Sink::Loopback, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut txq = port.ice_tx_queue(0).unwrap();
    let mut rxq = port.ice_rx_queue(0).unwrap();
    let mut txpool = pool_of("ice-tx-rxe", 64, 4096);
    let mut rxpool = pool_of("ice-rx-rxe", 512, 1024);
    let mut got = wirespeed::mbuf::Burst::new();
    assert_eq!(rxq.rx_burst(&mut rxpool, &mut got, 32), 0);
    let errors = rxq.stats();
    let mut exchange = |len: usize, bits: u16, seq: u32| {
        m.inject_rx_status(bits);
        let before = m.stats().rx_frames;
        let mut b = wirespeed::mbuf::Burst::new();
        b.push(mbuf(&mut txpool, &frame(seq, len))).unwrap();
        wait_until("frame looped back", || {
            txq.tx_burst(&mut b);
            txq.clean(usize::MAX);
            m.stats().rx_frames == before + 1
        });
        let mut n = 0;
        for _ in 0..50 {
            n += rxq.rx_burst(&mut rxpool, &mut got, 32);
            std::thread::sleep(Duration::from_millis(1));
        }
        while got.pop_front().is_some() {}
        n
    };
    let rxe = 1u16 << spec::RX_STATUS0_RXE_BIT;
    let exadd = 1u16 << spec::RX_STATUS0_IPV6EXADD_BIT;
    assert_eq!(exchange(200, exadd, 1), 1, "IPV6EXADD is not an error");
    assert_eq!(exchange(200, rxe, 2), 0, "RXE drops the frame");
    assert_eq!(errors.errors.get(), 1);
    assert_eq!(
        exchange(3000, rxe, 3),
        0,
        "RXE on a chained frame drops it whole"
    );
    assert_eq!(errors.errors.get(), 2);
    assert_eq!(exchange(3000, 0, 4), 1, "the next frame is delivered");
}
