//! SNMP counters in the shape of `/proc/net/snmp` (Ip, Icmp, Udp) plus the
//! neighbour table's statistics (`/proc/net/stat/arp_cache`). Each lcore's
//! stack owns one set (single writer: plain load + store, readable from any
//! thread); [`SnmpSnapshot`]s of several lcores are summed on read.

use crate::ethdev::StatCounter;

macro_rules! counters {
    ($(#[$m:meta])* $live:ident, $snap:ident { $($(#[$fm:meta])* $f:ident => $name:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        pub struct $live { $($(#[$fm])* pub $f: StatCounter,)* }

        /// A point-in-time copy.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
        pub struct $snap { $(#[serde(rename = $name)] pub $f: u64,)* }

        impl $live {
            pub fn snapshot(&self) -> $snap { $snap { $($f: self.$f.get(),)* } }
        }

        impl std::ops::AddAssign for $snap {
            fn add_assign(&mut self, o: $snap) { $(self.$f += o.$f;)* }
        }

        impl $snap {
            /// `(name, value)` pairs in `/proc/net/snmp` order.
            pub fn fields(&self) -> Vec<(&'static str, u64)> { vec![$(($name, self.$f),)*] }
        }
    };
}

counters!(
    /// The `Ip:` line.
    IpCounters, IpSnapshot {
        /// Datagrams received from ports (before any check).
        in_receives => "InReceives",
        in_hdr_errors => "InHdrErrors",
        /// Not for one of our addresses.
        in_addr_errors => "InAddrErrors",
        in_unknown_protos => "InUnknownProtos",
        in_discards => "InDiscards",
        in_delivers => "InDelivers",
        /// Every datagram the local stack tries to send (before fragmentation).
        out_requests => "OutRequests",
        /// Dropped on the way out (device refused, hook dropped, neighbour failed, cork append failed).
        out_discards => "OutDiscards",
        /// No route (ENETUNREACH), in `udp_sendmsg`/`connect` and on output.
        out_no_routes => "OutNoRoutes",
        /// Datagrams whose fragments did not all arrive within `ipfrag_time`.
        reasm_timeout => "ReasmTimeout",
        /// Fragments received that needed reassembly (`ip_defrag` counts each one).
        reasm_reqds => "ReasmReqds",
        /// Datagrams reassembled.
        reasm_oks => "ReasmOKs",
        /// Datagrams the reassembly gave up on (timeout, overlap, bad
        /// fragment, over `ipfrag_high_thresh`), once each.
        reasm_fails => "ReasmFails",
        /// Datagrams fragmented successfully (once per datagram).
        frag_oks => "FragOKs",
        /// Datagrams that needed fragmenting but could not (DF set, allocation failure).
        frag_fails => "FragFails",
        /// Fragments created (once per fragment).
        frag_creates => "FragCreates",
    }
);

counters!(
    /// The `Icmp:` line (the message types this stack handles).
    IcmpCounters, IcmpSnapshot {
        in_msgs => "InMsgs",
        in_errors => "InErrors",
        in_csum_errors => "InCsumErrors",
        in_dest_unreachs => "InDestUnreachs",
        in_time_excds => "InTimeExcds",
        in_parm_probs => "InParmProbs",
        in_src_quenchs => "InSrcQuenchs",
        in_redirects => "InRedirects",
        in_echos => "InEchos",
        in_echo_reps => "InEchoReps",
        out_msgs => "OutMsgs",
        out_errors => "OutErrors",
        /// Refused by the host-wide bucket (`icmp_msgs_per_sec`/`icmp_msgs_burst`):
        /// Linux's `ICMP_MIB_RATELIMITGLOBAL`.
        out_rate_limit_global => "OutRateLimitGlobal",
        /// Refused by the per-destination bucket (`icmp_ratelimit`):
        /// Linux's `ICMP_MIB_RATELIMITHOST`.
        out_rate_limit_host => "OutRateLimitHost",
        out_dest_unreachs => "OutDestUnreachs",
        out_time_excds => "OutTimeExcds",
        out_echos => "OutEchos",
        out_echo_reps => "OutEchoReps",
    }
);

counters!(
    /// The `Udp:` line.
    UdpCounters, UdpSnapshot {
        /// Datagrams read by `recv_from`.
        in_datagrams => "InDatagrams",
        /// Arrived for a port nobody is bound to.
        no_ports => "NoPorts",
        /// Receive errors: bad checksum, malformed, receive queue full.
        in_errors => "InErrors",
        /// Handed to IP without error.
        out_datagrams => "OutDatagrams",
        /// Receive queue full (also counted in InErrors).
        rcvbuf_errors => "RcvbufErrors",
        /// Send buffer full or the device queue refused (ENOBUFS).
        sndbuf_errors => "SndbufErrors",
        /// Bad checksum (also counted in InErrors).
        in_csum_errors => "InCsumErrors",
        /// Multicast datagrams no socket wanted (`UDP_MIB_IGNOREDMULTI`).
        ignored_multi => "IgnoredMulti",
    }
);

counters!(
    /// The `Tcp:` line (RtoAlgorithm, RtoMin, RtoMax and MaxConn are
    /// constants: 1, 200, 120000, -1).
    TcpCounters, TcpSnapshot {
        /// Connections that went SYN-SENT (`tcp_connect`).
        active_opens => "ActiveOpens",
        /// Connections that went SYN-RECV → ESTABLISHED from a listener.
        passive_opens => "PassiveOpens",
        /// Attempts that failed: SYN-SENT/SYN-RECV to CLOSED (refused, reset, timed out).
        attempt_fails => "AttemptFails",
        /// ESTABLISHED/CLOSE-WAIT connections that ended in a reset.
        estab_resets => "EstabResets",
        /// Connections now ESTABLISHED or CLOSE-WAIT (a gauge).
        curr_estab => "CurrEstab",
        /// Segments received (including bad ones).
        in_segs => "InSegs",
        /// Segments sent, retransmissions excepted (Linux's `__tcp_transmit_skb` rule).
        out_segs => "OutSegs",
        /// Segments retransmitted.
        retrans_segs => "RetransSegs",
        /// Segments received with errors (bad checksum, bad header).
        in_errs => "InErrs",
        /// Segments sent with RST.
        out_rsts => "OutRsts",
        /// Bad checksums (also in InErrs).
        in_csum_errors => "InCsumErrors",
    }
);

counters!(
    /// The `TcpExt:` counters this stack touches (`/proc/net/netstat` names).
    TcpExtCounters, TcpExtSnapshot {
        listen_overflows => "ListenOverflows",
        listen_drops => "ListenDrops",
        delayed_acks => "DelayedACKs",
        /// Retransmission timer expiries.
        timeouts => "TCPTimeouts",
        syn_retrans => "TCPSynRetrans",
        fast_retrans => "TCPFastRetrans",
        sack_recovery => "TCPSackRecovery",
        reno_recovery => "TCPRenoRecovery",
        abort_on_data => "TCPAbortOnData",
        abort_on_close => "TCPAbortOnClose",
        abort_on_linger => "TCPAbortOnLinger",
        abort_on_timeout => "TCPAbortOnTimeout",
        challenge_acks => "TCPChallengeACK",
        /// Segments dropped by PAWS (an old timestamp).
        paws_estab_rejected => "PAWSEstabRejected",
        /// Out-of-order segments dropped (queue full, outside the window, overlapping).
        ofo_drop => "TCPOFODrop",
        /// Out-of-order segments queued.
        ofo_queue => "TCPOFOQueue",
        /// Segments that carried only bytes already received.
        dup_data => "TCPDupData",
        autocorking => "TCPAutoCorking",
        /// Sends stopped by TCP small queues (`tcp_small_queue_check`).
        tsq_throttled => "TCPTSQThrottled",
        /// Sends stopped by the peer's window.
        rwnd_limited => "TCPRwndLimited",
        /// sendmsg found no packet buffer (mempool empty).
        sndbuf_nomem => "TCPSndbufNoMem",
        synacks_sent => "TCPSynAcksSent",
        hystart_train_detect => "TCPHystartTrainDetect",
        hystart_delay_detect => "TCPHystartDelayDetect",
    }
);

counters!(
    /// Neighbour/ARP statistics (`/proc/net/stat/arp_cache`-like).
    NeighCounters, NeighSnapshot {
        /// Entries created.
        allocs => "allocs",
        /// Entries removed by garbage collection.
        destroys => "destroys",
        /// Resolution failures (INCOMPLETE or PROBE ran out of probes).
        res_failed => "res_failed",
        /// Packets dropped because the pending queue of an unresolved entry was full.
        unres_discards => "unres_discards",
        /// `neigh_forced_gc` runs (creating past `gc_thresh2`/`gc_thresh3`).
        forced_gc_runs => "forced_gc_runs",
        /// Entries not created: at `gc_thresh3` and the forced GC freed nothing.
        table_fulls => "table_fulls",
        /// Queued packets dropped when their entry failed.
        failed_drops => "failed_drops",
        /// Queued packets the device refused when the entry resolved.
        queued_tx_drops => "queued_tx_drops",
        /// FAILED entries a new packet sent back to INCOMPLETE (re-resolving).
        failed_resolves => "failed_resolves",
        arp_requests_sent => "arp_requests_sent",
        arp_replies_sent => "arp_replies_sent",
        arp_requests_received => "arp_requests_received",
        arp_replies_received => "arp_replies_received",
        /// ARP packets that failed to parse or were not for us.
        arp_ignored => "arp_ignored",
        /// ARP/ICMP frames the device refused.
        ctl_tx_drops => "ctl_tx_drops",
    }
);

counters!(
    /// IGMP messages this host sent.
    IgmpCounters, IgmpSnapshot {
        /// IGMPv2 membership reports (0x16).
        reports_sent => "reports_sent",
        /// IGMPv2 leave group messages (0x17).
        leaves_sent => "leaves_sent",
    }
);

counters!(
    /// Receive demux leftovers.
    RxCounters, RxSnapshot {
        frames => "frames",
        /// Not for our MAC (and not broadcast/multicast).
        not_for_us => "not_for_us",
        /// Ethertype we do not speak.
        unknown_ethertype => "unknown_ethertype",
        /// Truncated/malformed L2.
        malformed => "malformed",
        /// A packet hook dropped it or an ICMP reply could not be built.
        dropped => "dropped",
        /// ICMP errors an `IP_RECVERR` socket could not queue: its receive
        /// buffer was full (`sock_queue_err_skb` → `-ENOMEM`; Linux frees
        /// the clone without a counter, the error still sets `sk_err`).
        errqueue_full => "errqueue_full",
        /// Multicast datagrams for a group not joined on the port they
        /// came in on (`ip_check_mc_rcu` false: not ours).
        mc_not_joined => "mc_not_joined",
    }
);

/// All counters of one stack.
#[derive(Debug, Default)]
pub struct StackCounters {
    pub ip: IpCounters,
    pub icmp: IcmpCounters,
    pub udp: UdpCounters,
    pub tcp: TcpCounters,
    pub tcp_ext: TcpExtCounters,
    pub neigh: NeighCounters,
    pub rx: RxCounters,
    pub igmp: IgmpCounters,
}

/// A snapshot of all counters; sum several lcores' with `+=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnmpSnapshot {
    #[serde(rename = "Ip")]
    pub ip: IpSnapshot,
    #[serde(rename = "Icmp")]
    pub icmp: IcmpSnapshot,
    #[serde(rename = "Udp")]
    pub udp: UdpSnapshot,
    #[serde(rename = "Tcp")]
    pub tcp: TcpSnapshot,
    #[serde(rename = "TcpExt")]
    pub tcp_ext: TcpExtSnapshot,
    #[serde(rename = "Neigh")]
    pub neigh: NeighSnapshot,
    #[serde(rename = "Rx")]
    pub rx: RxSnapshot,
    #[serde(rename = "Igmp")]
    pub igmp: IgmpSnapshot,
}

impl StackCounters {
    pub fn snapshot(&self) -> SnmpSnapshot {
        SnmpSnapshot {
            ip: self.ip.snapshot(),
            icmp: self.icmp.snapshot(),
            udp: self.udp.snapshot(),
            tcp: self.tcp.snapshot(),
            tcp_ext: self.tcp_ext.snapshot(),
            neigh: self.neigh.snapshot(),
            rx: self.rx.snapshot(),
            igmp: self.igmp.snapshot(),
        }
    }
}

impl std::ops::AddAssign for SnmpSnapshot {
    fn add_assign(&mut self, o: SnmpSnapshot) {
        self.ip += o.ip;
        self.icmp += o.icmp;
        self.udp += o.udp;
        self.tcp += o.tcp;
        self.tcp_ext += o.tcp_ext;
        self.neigh += o.neigh;
        self.rx += o.rx;
        self.igmp += o.igmp;
    }
}

impl SnmpSnapshot {
    /// Sums per-lcore snapshots.
    pub fn sum<'a>(it: impl IntoIterator<Item = &'a SnmpSnapshot>) -> SnmpSnapshot {
        let mut t = SnmpSnapshot::default();
        for s in it {
            t += *s;
        }
        t
    }

    /// Renders the `/proc/net/snmp` text layout (header line, value line per protocol).
    pub fn to_proc_text(&self) -> String {
        let mut out = String::new();
        for (tag, f) in [
            ("Ip", self.ip.fields()),
            ("Icmp", self.icmp.fields()),
            ("Tcp", self.tcp.fields()),
            ("Udp", self.udp.fields()),
            ("TcpExt", self.tcp_ext.fields()),
        ] {
            out.push_str(tag);
            out.push(':');
            for (n, _) in &f {
                out.push(' ');
                out.push_str(n);
            }
            out.push('\n');
            out.push_str(tag);
            out.push(':');
            for (_, v) in &f {
                out.push_str(&format!(" {v}"));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_and_render() {
        let a = StackCounters::default();
        a.udp.out_datagrams.add(3);
        a.ip.out_requests.add(3);
        let b = StackCounters::default();
        b.udp.out_datagrams.add(2);
        let s = SnmpSnapshot::sum([&a.snapshot(), &b.snapshot()]);
        assert_eq!(s.udp.out_datagrams, 5);
        assert_eq!(s.ip.out_requests, 3);
        let t = s.to_proc_text();
        assert!(t.contains("Udp: InDatagrams NoPorts InErrors OutDatagrams"));
        assert!(t.contains("Udp: 0 0 0 5 0 0 0"));
        let j = serde_json::to_string(&s).unwrap();
        assert!(j.contains("\"OutDatagrams\":5"));
    }
}
