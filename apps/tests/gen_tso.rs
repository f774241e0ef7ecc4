//! The `[[port]]` key `tso`: a `mode = "tcp"` stream hands the port
//! super-segments (the device or the kernel cuts them), every byte still
//! arrives intact at a kernel receiver; a port without TSO is refused with
//! the key named. (On QEMU's igb, the same key is checked end to end by
//! tests/vm/run.sh.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod common;
use common::kernel::Peer;
use common::{bin, tmpdir};

fn gen(dir: &std::path::Path, toml: &str) -> (std::process::Output, Option<serde_json::Value>) {
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, toml).unwrap();
    let json = dir.join("s.json");
    let _ = std::fs::remove_file(&json);
    let out = Command::new(bin())
        .args(["gen", "-q", "--no-huge"])
        .arg(&cfg)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let v = std::fs::read(&json)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    (out, v)
}

fn tcp_config(spec: &str, bytes: u64) -> String {
    format!(
        r#"
[run]
lcores = "0"
duration = 30

[[port]]
spec = "{spec}"
ip = "10.77.0.1/24"
tso = true

[[stream]]
name = "bulk"
mode = "tcp"
dst_ip = "10.77.0.2"
dst_port = 5001
src_port = 40000
connections = 1
bytes = {bytes}
size = 65536
"#
    )
}

#[test]
fn tso_on_a_port_without_it_is_refused_naming_the_key() {
    let dir = tmpdir("tso-refused");
    let spec = format!("pcap:{}", dir.join("out.pcap").display());
    let (out, _) = gen(&dir, &tcp_config(&spec, 1000));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("port[0].tso"), "{err}");
    assert!(err.contains("no TCP segmentation offload"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A kernel sink that reads one connection to its FIN and prints the bytes
/// and the bytes that break the generator's pattern (byte k = k mod the
/// 65536-byte write, as a byte).
const SINK: &str = "import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('0.0.0.0',5001)); s.listen(1); s.settimeout(60); print('ready',flush=True)
c,a=s.accept(); c.settimeout(60); n=0; bad=0
while True:
    d=c.recv(262144)
    if not d: break
    for i,b in enumerate(d):
        if b != ((n+i)%65536)%256: bad+=1
    n+=len(d)
print(n,bad,flush=True)
";

#[test]
fn kernel_receives_a_generator_tcp_stream_sent_as_super_segments() {
    kernel_receives_super_segments("wtso", "");
}

/// `zerocopy = true` (iperf3's `-Z`): the stream's bytes are spliced from
/// buffers built once; the kernel still reads the pattern, every byte.
#[test]
fn kernel_receives_a_zero_copy_generator_tcp_stream() {
    kernel_receives_super_segments("wtsz", "zerocopy = true\n");
}

fn kernel_receives_super_segments(tag: &str, extra: &str) {
    let Some(peer) = Peer::new(tag) else {
        return;
    };
    // Our veth end without TX checksum offload, so without TSO: the kernel
    // cuts the super-segments (software GSO) before the wire.
    peer.full_checksums();
    assert!(
        Command::new("ethtool")
            .args(["-K", &peer.host_if, "tx", "off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "ethtool -K {} tx off failed (scripts/test installs ethtool)",
        peer.host_if
    );
    let mut sink = peer
        .exec(&["python3", "-c", SINK])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is required: scripts/test installs it");
    let mut r = BufReader::new(sink.stdout.take().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let bytes = 4u64 << 20;
    let rx0 = peer.link_packets().0;
    let dir = tmpdir(&format!("tso-kernel-{tag}"));
    let (out, v) = gen(
        &dir,
        &(tcp_config(&format!("af_packet:{}", peer.host_if), bytes) + extra),
    );
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    line.clear();
    r.read_line(&mut line).unwrap();
    let _ = sink.wait();
    assert_eq!(
        line.trim(),
        format!("{bytes} 0"),
        "the sink's bytes, bad bytes\n{text}"
    );
    let v = v.unwrap();
    let t = &v["streams"][0]["tcp"];
    assert_eq!(t["established"], 1, "{t}");
    assert_eq!(t["bytes_acked"], bytes, "{t}");
    let p = &v["ports"][0];
    let offloads = p["offloads"].as_str().unwrap();
    assert!(offloads.split(',').any(|o| o == "tso"), "{offloads}");
    // The port took super-segments: far fewer packets than the MSS-sized
    // segments the kernel's end received.
    let rx = peer.link_packets().0 - rx0;
    let mss_segments = bytes / 1448;
    let handed = p["tx_packets"].as_u64().unwrap();
    assert!(
        rx >= mss_segments,
        "the kernel's end received {rx} packets, fewer than {mss_segments} segments"
    );
    assert!(
        handed * 4 < mss_segments,
        "the port took {handed} packets for {mss_segments} segments: no super-segments"
    );
    std::fs::remove_dir_all(&dir).ok();
}
