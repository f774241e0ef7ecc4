//! The Linux kernel's own stack as the peer: a veth pair with one end in a
//! network namespace the test creates (and removes, by the names it made,
//! on drop — also when the test fails), and the small programs that run
//! there (UDP sink, UDP echo, ping, a port-unreachable probe, a capture).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A veth pair `{ns}h` (here) ↔ `{ns}n` (in namespace `{ns}`, 10.77.0.2/24),
/// IPv6 off on both ends so that the only frames on the wire are the
/// test's (the kernel would send router solicitations and MLD reports).
pub struct Peer {
    pub ns: String,
    pub host_if: String,
    pub peer_if: String,
}

/// Root is needed for namespaces, AF_PACKET and AF_XDP; elsewhere a test
/// says why it cannot run and passes (CI runs as root).
pub fn is_root() -> bool {
    // SAFETY: plain libc call with no arguments.
    unsafe { libc::geteuid() == 0 }
}

impl Peer {
    pub fn new(tag: &str) -> Option<Peer> {
        Peer::with_queues(tag, 1)
    }

    /// As [`Peer::new`], each veth end with `queues` RX and TX queues.
    pub fn with_queues(tag: &str, queues: u32) -> Option<Peer> {
        if !is_root() {
            eprintln!("kernel interop: not root, cannot create a network namespace: skipped");
            return None;
        }
        let ns = format!("{tag}{}", std::process::id() % 100_000);
        let host_if = format!("{ns}h");
        let peer_if = format!("{ns}n");
        let _ = sh(&["ip", "netns", "del", &ns]);
        let _ = sh(&["ip", "link", "del", &host_if]);
        let nq = queues.to_string();
        let v6 = |i: &str| format!("net.ipv6.conf.{i}.disable_ipv6=1");
        let (h6, p6) = (v6(&host_if), v6(&peer_if));
        for cmd in [
            vec!["ip", "netns", "add", &ns],
            vec![
                "ip",
                "link",
                "add",
                &host_if,
                "numtxqueues",
                &nq,
                "numrxqueues",
                &nq,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
                "numtxqueues",
                &nq,
                "numrxqueues",
                &nq,
            ],
            vec!["ip", "link", "set", &peer_if, "netns", &ns],
            vec!["sysctl", "-qw", &h6],
            vec!["ip", "netns", "exec", &ns, "sysctl", "-qw", &p6],
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
        Some(Peer {
            ns,
            host_if,
            peer_if,
        })
    }

    /// Turns TX checksum offload off on the kernel's end: a veth leaves a
    /// locally sent frame's L4 checksum partial (CHECKSUM_PARTIAL), which
    /// AF_PACKET flags (`TP_STATUS_CSUMNOTREADY`) but an XDP frame cannot,
    /// so over `af_xdp` the kernel's datagrams would fail our checksum check.
    pub fn full_checksums(&self) {
        assert!(
            sh(&[
                "ip",
                "netns",
                "exec",
                &self.ns,
                "ethtool",
                "-K",
                &self.peer_if,
                "tx",
                "off"
            ]),
            "ethtool -K {} tx off failed (scripts/test installs ethtool)",
            self.peer_if
        );
    }

    pub fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(args);
        c
    }

    fn python(&self, code: &str) -> Child {
        self.exec(&["python3", "-c", code])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is required: scripts/test installs it")
    }

    /// A UDP socket bound in the namespace that reads what arrives and
    /// counts it per payload size, checking each payload's bytes (the
    /// generator's socket payload is a pattern; here: every datagram of one
    /// size has the same bytes as the first of that size), then prints
    /// `count bytes bad size:count,…` once nothing came for a second.
    /// With `answer` > 0 it sends `answer` 3000-byte datagrams back to the
    /// first sender: the kernel fragments them, for our reassembly.
    pub fn sink(&self, port: u16, answer: usize) -> Sink {
        let mut c = self.python(&format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.SOL_SOCKET,33,1<<25)\n\
             s.bind(('0.0.0.0',{port}))\nprint('ready',flush=True)\n\
             n=b=bad=0\nfirst={{}}\nsizes={{}}\ns.settimeout(30)\n\
             try:\n  while True:\n    d,a=s.recvfrom(65535); n+=1; b+=len(d); s.settimeout(1)\n\
             \x20   sizes[len(d)]=sizes.get(len(d),0)+1\n\
             \x20   if first.setdefault(len(d),d)!=d: bad+=1\n\
             \x20   if n==1:\n\
             \x20     for i in range({answer}): s.sendto(bytes([i%256])*3000,a)\n\
             except socket.timeout:\n  pass\n\
             print(n,b,bad,','.join('%d:%d'%kv for kv in sorted(sizes.items())),flush=True)\n"
        ));
        let mut r = std::io::BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Sink { child: c, out: r }
    }

    /// A UDP echo on `port`: every datagram goes back to its sender as is.
    pub fn echo(&self, port: u16) -> Child {
        let mut c = self.python(&format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.SOL_SOCKET,33,1<<24)\n\
             s.bind(('0.0.0.0',{port}))\nprint('ready',flush=True)\n\
             while True:\n  d,a=s.recvfrom(65535); s.sendto(d,a)\n"
        ));
        let mut r = std::io::BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        c
    }

    /// ICMP echo from the namespace's kernel to 10.77.0.1 (a raw socket,
    /// no ping binary needed) until answered, for `secs`: exit 0 when a
    /// reply came.
    pub fn ping(&self, secs: u32) -> Child {
        self.python(&format!(
            "import socket,struct,time,sys
time.sleep(0.4)
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)
def csum(b):
    t=sum(struct.unpack('!%dH'%(len(b)//2),b)); t=(t>>16)+(t&0xffff); t+=t>>16; return ~t&0xffff
h=struct.pack('!BBHHH',8,0,0,0x77,1)+b'wirespeed'*4
h=h[:2]+struct.pack('!H',csum(h))+h[4:]
end=time.time()+{secs}
while time.time()<end:
    s.sendto(h,('10.77.0.1',0)); s.settimeout(0.3)
    try:
        while True:
            d,a=s.recvfrom(2048)
            if a[0]=='10.77.0.1' and d[20]==0 and struct.unpack('!H',d[24:26])[0]==0x77: sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
"
        ))
    }

    /// A connected UDP socket in the namespace sending to 10.77.0.1:`port`
    /// (nothing listens there) until a recv fails with ECONNREFUSED — the
    /// kernel's `__udp4_lib_err` turning our ICMP port unreachable into the
    /// socket's error: exit 0 then, 1 after `secs`.
    pub fn refused_probe(&self, port: u16, secs: u32) -> Child {
        self.python(&format!(
            "import socket,time,sys
time.sleep(0.4)
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
s.connect(('10.77.0.1',{port})); s.settimeout(0.3)
end=time.time()+{secs}
while time.time()<end:
    try:
        s.send(b'anyone?'); s.recv(100)
    except ConnectionRefusedError:
        sys.exit(0)
    except (socket.timeout, OSError):
        pass
sys.exit(1)
"
        ))
    }

    /// The namespace's /proc/net/snmp value `proto`:`field`.
    pub fn snmp(&self, proto: &str, field: &str) -> u64 {
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

    /// The peer interface's counters as `ip -s link` shows them:
    /// (rx packets, tx packets).
    pub fn link_packets(&self) -> (u64, u64) {
        let out = self
            .exec(&["ip", "-s", "-j", "link", "show", &self.peer_if])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let s = &v[0]["stats64"];
        (
            s["rx"]["packets"].as_u64().unwrap(),
            s["tx"]["packets"].as_u64().unwrap(),
        )
    }

    /// The NUD state the namespace's kernel has for `ip` (`ip neigh`).
    pub fn neigh_state(&self, ip: &str) -> String {
        let out = self
            .exec(&["ip", "neigh", "show", ip, "dev", &self.peer_if])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_string()
    }

    pub fn mac(&self) -> String {
        let out = self
            .exec(&["cat", &format!("/sys/class/net/{}/address", self.peer_if)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// tshark capturing on the kernel's end of the veth into `pcap`;
    /// returns once it captures (stop it with [`Capture::stop`]).
    pub fn capture(&self, pcap: &std::path::Path) -> Capture {
        let mut c = self
            .exec(&["tshark", "-q", "-n", "-i", &self.peer_if, "-w"])
            .arg(pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark is required: scripts/test installs it");
        // tshark says "Capturing on …" when the capture is live.
        let mut r = std::io::BufReader::new(c.stderr.take().unwrap());
        let mut line = String::new();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < end {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line.contains("Capturing on") {
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
        Capture { child: c }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", &self.host_if]);
        let _ = sh(&["ip", "netns", "del", &self.ns]);
    }
}

/// The running sink.
pub struct Sink {
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

/// What the sink counted.
#[derive(Debug)]
pub struct SinkCount {
    pub datagrams: u64,
    pub bytes: u64,
    /// Datagrams whose payload differed from the first of their size.
    pub bad: u64,
    /// (payload size, datagrams)
    pub sizes: Vec<(u64, u64)>,
}

impl Sink {
    /// Waits for the sink to finish (a second of silence) and reads its count.
    pub fn count(mut self) -> SinkCount {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let _ = self.child.wait();
        let v: Vec<&str> = line.split_whitespace().collect();
        let sizes = v
            .get(3)
            .map(|s| {
                s.split(',')
                    .filter_map(|kv| {
                        let (k, c) = kv.split_once(':')?;
                        Some((k.parse().ok()?, c.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        SinkCount {
            datagrams: v[0].parse().unwrap(),
            bytes: v[1].parse().unwrap(),
            bad: v[2].parse().unwrap(),
            sizes,
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running tshark capture.
pub struct Capture {
    child: Child,
}

impl Capture {
    /// Ends the capture (SIGINT: tshark flushes the file) and waits.
    pub fn stop(mut self) {
        // SAFETY: plain libc call on the pid of a child we spawned.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Frames of `pcap` matching the display `filter` (tshark with IPv4 and UDP
/// checksum validation on).
pub fn tshark_count(pcap: &std::path::Path, filter: &str) -> usize {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            filter,
        ])
        .output()
        .expect("tshark is required: scripts/test installs it");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}
