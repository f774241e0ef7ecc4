//! Per-queue transmit machinery: XPS queue pick, qdisc, BQL (DQL), xmit_more batching, completion → wake.
