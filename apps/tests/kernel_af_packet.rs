//! Against the Linux kernel's own stack: wirespeed on one end of a veth pair
//! through the `af_packet` port, the kernel in a network namespace on the
//! other. The kernel validates every IPv4 and UDP checksum, answers ARP and
//! ping, and reassembles our fragments; its /proc/net/snmp counts what
//! arrived. Needs root (network namespaces, AF_PACKET): CI runs as root;
//! elsewhere the test says why it cannot run and passes.

use std::process::{Child, Command, Stdio};

mod common;
use common::{bin, tmpdir};

/// A veth pair `{tag}h` (here) ↔ `{tag}n` (in namespace `{tag}`, 10.77.0.2/24).
struct Peer {
    ns: String,
    host_if: String,
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Peer {
    fn new(tag: &str) -> Option<Peer> {
        // SAFETY: plain libc call with no arguments.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("kernel interop: not root, cannot create a network namespace: skipped");
            return None;
        }
        let ns = format!("{tag}{}", std::process::id() % 100_000);
        let host_if = format!("{ns}h");
        let peer_if = format!("{ns}n");
        let _ = sh(&["ip", "netns", "del", &ns]);
        for cmd in [
            vec!["ip", "netns", "add", &ns],
            vec![
                "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
            ],
            vec!["ip", "link", "set", &peer_if, "netns", &ns],
            vec!["ip", "link", "set", &host_if, "up"],
            vec![
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                "10.77.0.2/24",
                "dev",
                &peer_if,
            ],
            vec![
                "ip", "netns", "exec", &ns, "ip", "link", "set", &peer_if, "up",
            ],
            vec!["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"],
        ] {
            assert!(
                sh(&cmd),
                "setting up the namespace failed at: {}",
                cmd.join(" ")
            );
        }
        Some(Peer { ns, host_if })
    }

    fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(args);
        c
    }

    /// A UDP socket bound in the namespace that reads and counts what
    /// arrives (the kernel counts InDatagrams as they are read), then prints
    /// `count bytes` once nothing came for a second.
    /// With `answer` > 0 it also sends `answer` 3000-byte datagrams back to
    /// the first sender it hears from: the kernel fragments them, for our
    /// reassembly.
    fn sink(&self, port: u16, answer: usize) -> Child {
        self.exec(&[
            "python3",
            "-c",
            &format!(
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                 s.setsockopt(socket.SOL_SOCKET,33,1<<24)\n\
                 s.bind(('0.0.0.0',{port}))\nprint('ready',flush=True)\n\
                 n=b=0\ns.settimeout(30)\n\
                 try:\n  while True:\n    d,a=s.recvfrom(65535); n+=1; b+=len(d); s.settimeout(1)\n\
                 \x20   if n==1:\n\
                 \x20     for i in range({answer}): s.sendto(bytes([i%256])*3000,a)\n\
                 except socket.timeout:\n  pass\nprint(n,b,flush=True)\n"
            ),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
    }

    /// The namespace's /proc/net/snmp value `proto`:`field`.
    fn snmp(&self, proto: &str, field: &str) -> u64 {
        let out = self.exec(&["cat", "/proc/net/snmp"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{proto}:")))
            .collect();
        let names: Vec<&str> = lines[0].split_whitespace().collect();
        let vals: Vec<&str> = lines[1].split_whitespace().collect();
        let i = names.iter().position(|n| *n == field).unwrap();
        vals[i].parse().unwrap()
    }

    fn mac(&self) -> String {
        let out = self
            .exec(&["cat", &format!("/sys/class/net/{}n/address", self.ns)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", &self.host_if]);
        let _ = sh(&["ip", "netns", "del", &self.ns]);
    }
}

/// An ICMP echo from the namespace's kernel to 10.77.0.1 (a raw socket, so
/// no ping binary is needed): exit 0 when the reply came within 3 s.
const PING: &str = "import socket,struct,time,sys
time.sleep(0.4)
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)
def csum(b):
    t=sum(struct.unpack('!%dH'%(len(b)//2),b)); t=(t>>16)+(t&0xffff); t+=t>>16; return ~t&0xffff
h=struct.pack('!BBHHH',8,0,0,0x77,1)+b'wirespeed'*4
h=h[:2]+struct.pack('!H',csum(h))+h[4:]
end=time.time()+3
while time.time()<end:
    s.sendto(h,('10.77.0.1',0)); s.settimeout(0.3)
    try:
        while True:
            d,a=s.recvfrom(2048)
            if a[0]=='10.77.0.1' and d[20]==0 and struct.unpack('!H',d[24:26])[0]==0x77: sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
";

fn wait_ready(c: &mut Child) -> std::io::BufReader<std::process::ChildStdout> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    r
}

/// The sink's final count of datagrams and payload bytes.
fn sink_count(c: &mut Child, mut r: std::io::BufReader<std::process::ChildStdout>) -> (u64, u64) {
    use std::io::BufRead;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let _ = c.wait();
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (v[0], v[1])
}

fn run(cfg: &str, dir: &std::path::Path, extra: &[&str]) -> (serde_json::Value, String) {
    let p = dir.join("c.toml");
    std::fs::write(&p, cfg).unwrap();
    let j = dir.join("s.json");
    let o = Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .arg(&p)
        .arg("--json")
        .arg(&j)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    (
        serde_json::from_slice(&std::fs::read(&j).unwrap()).unwrap(),
        text,
    )
}

/// Socket mode: the engine's stack resolves the kernel by ARP through the
/// af_packet RX ring, sends 4000 datagrams (1000 of them 4000 bytes, so
/// fragmented), and the kernel accepts every one with valid checksums and
/// reassembles the fragments; the kernel's pings are answered meanwhile.
#[test]
fn kernel_receives_every_datagram_and_reassembles_our_fragments() {
    let Some(peer) = Peer::new("wsk") else { return };
    let dir = tmpdir("kernel-sock");
    let mut sink = peer.sink(9000, 20);
    let r = wait_ready(&mut sink);
    let ping = peer
        .exec(&["python3", "-c", PING])
        .stdout(Stdio::null())
        .spawn();
    let cfg = format!(
        r#"[run]
lcores = "0"
[[port]]
spec = "af_packet:{}"
ip = "10.77.0.1/24"
[[stream]]
name = "small"
mode = "socket"
src_port = 40000
dst_ip = "10.77.0.2"
dst_port = 9000
count = 3000
rate = "2 kpps"
size = 200
[[stream]]
name = "frag"
mode = "socket"
src_port = 40100
dst_ip = "10.77.0.2"
dst_port = 9000
count = 1000
rate = "1 kpps"
size = 4000
"#,
        peer.host_if
    );
    let (v, text) = run(&cfg, &dir, &[]);
    let (n, bytes) = sink_count(&mut sink, r);
    let got = n + peer.snmp("Udp", "RcvbufErrors");
    assert_eq!(got, 4000, "the kernel got {got} of 4000 datagrams\n{text}");
    if n == 4000 {
        assert_eq!(bytes, 3000 * 200 + 1000 * 4000, "payload bytes");
    }
    assert_eq!(peer.snmp("Udp", "InCsumErrors"), 0, "bad UDP checksums");
    assert_eq!(peer.snmp("Ip", "InHdrErrors"), 0, "bad IPv4 headers");
    // 4000-byte datagrams at MTU 1500: 3 fragments each, all reassembled.
    assert_eq!(peer.snmp("Ip", "ReasmOKs"), 1000, "{text}");
    assert_eq!(peer.snmp("Ip", "ReasmFails"), 0);
    for s in v["streams"].as_array().unwrap() {
        assert_eq!(s["flags"].as_array().unwrap().len(), 0, "{text}");
    }
    assert_eq!(v["ports"][0]["conserved"], true);
    assert!(
        v["ports"][0]["rx_packets"].as_u64().unwrap() >= 1,
        "ARP reply received"
    );
    if let Ok(mut p) = ping {
        assert!(
            p.wait().unwrap().success(),
            "the kernel's pings to 10.77.0.1 got no answer\n{text}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Raw mode with ARP: prebuilt frames (varying source ports) to the
/// kernel's MAC, found by ARP through the RX ring; every one accepted.
#[test]
fn kernel_accepts_raw_frames_with_varying_fields() {
    let Some(peer) = Peer::new("wsr") else { return };
    let dir = tmpdir("kernel-raw");
    let mut sink = peer.sink(9001, 0);
    let r = wait_ready(&mut sink);
    let cfg = format!(
        r#"[run]
lcores = "0"
[[port]]
spec = "af_packet:{}"
[[stream]]
src_ip = "10.77.0.1"
dst_ip = "10.77.0.2"
dst_port = 9001
count = 5000
rate = "20 kpps"
size = 128
[[stream.field]]
name = "src_port"
min = 2000
max = 2099
"#,
        peer.host_if
    );
    let (v, text) = run(&cfg, &dir, &["--arp"]);
    let (n, _) = sink_count(&mut sink, r);
    let got = n + peer.snmp("Udp", "RcvbufErrors");
    assert_eq!(got, 5000, "the kernel got {got} of 5000\n{text}");
    assert_eq!(peer.snmp("Udp", "InCsumErrors"), 0, "bad UDP checksums");
    assert_eq!(peer.snmp("Ip", "InHdrErrors"), 0);
    assert_eq!(v["streams"][0]["packets"], 5000);
    assert!(peer.mac().len() == 17);
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad interface names are refused before anything starts, naming them.
#[test]
fn unknown_interface_is_a_clear_error() {
    let o = Command::new(bin())
        .args([
            "gen",
            "--no-huge",
            "-q",
            "--port",
            "af_packet:nosuch0",
            "--count",
            "1",
        ])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no interface 'nosuch0'"), "{err}");
}
