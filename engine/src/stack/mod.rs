//! The protocol stack: wire formats, routes, neighbours/ARP, IPv4 output, UDP sockets, SNMP counters, RX demux.
