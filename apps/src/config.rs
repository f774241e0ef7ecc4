//! The generator's configuration: TOML (serde, unknown keys rejected), CLI
//! overrides, and validation that names the key and the fix.

use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::Path;
use wirespeed::ethdev::MacAddr;

/// A configuration or usage error: exit code 2, one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {why}")]
pub struct ConfigError {
    pub key: String,
    pub why: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, why: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            why: why.into(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConfig,
    #[serde(default, rename = "port")]
    pub ports: Vec<PortSection>,
    #[serde(default, rename = "stream")]
    pub streams: Vec<StreamSection>,
}

/// `[run]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// DPDK-style core list; one lcore per core.
    #[serde(default = "default_lcores")]
    pub lcores: String,
    /// Total packets to send (over all lcores); 0 = no limit.
    #[serde(default)]
    pub count: u64,
    /// Seconds to run; 0 = no limit (then `count` or a signal ends the run).
    #[serde(default)]
    pub duration: f64,
    /// "auto" (hugepages, else 4 KiB with a warning), "huge", or "small".
    #[serde(default)]
    pub pages: wirespeed::eal::PageMode,
    /// Buffers per lcore mempool.
    #[serde(default = "default_pool")]
    pub mempool_size: u32,
    /// Packets per burst (1..=256).
    #[serde(default = "default_burst")]
    pub burst: u16,
}

fn default_lcores() -> String {
    "0".into()
}
fn default_pool() -> u32 {
    8192
}
fn default_burst() -> u16 {
    32
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            lcores: default_lcores(),
            count: 0,
            duration: 0.0,
            pages: Default::default(),
            mempool_size: default_pool(),
            burst: default_burst(),
        }
    }
}

/// `[[port]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    /// Device spec, e.g. `null`, `pcap:out.pcap`, `ring:a`, `ice-model`.
    pub spec: String,
    /// TX queues; default: one per lcore.
    #[serde(default)]
    pub tx_queues: Option<u16>,
    #[serde(default = "default_ring")]
    pub ring_size: u16,
    /// Request checksum offload from the port when it has it.
    #[serde(default)]
    pub offload: bool,
}

fn default_ring() -> u16 {
    1024
}

/// `[[stream]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    /// Index of the port in `[[port]]`.
    #[serde(default)]
    pub port: usize,
    /// Frame size on the wire including the 4-byte FCS (64..=1518, more with jumbo ports).
    #[serde(default = "default_size")]
    pub size: u32,
    #[serde(default = "default_src_mac")]
    pub src_mac: String,
    #[serde(default = "default_dst_mac")]
    pub dst_mac: String,
    #[serde(default = "default_src_ip")]
    pub src_ip: String,
    #[serde(default = "default_dst_ip")]
    pub dst_ip: String,
    #[serde(default = "default_sport")]
    pub src_port: u16,
    #[serde(default = "default_dport")]
    pub dst_port: u16,
    /// 802.1Q VLAN id (0 = untagged).
    #[serde(default)]
    pub vlan: u16,
    #[serde(default)]
    pub tos: u8,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
}

fn default_size() -> u32 {
    64
}
fn default_src_mac() -> String {
    "02:00:00:00:00:01".into()
}
fn default_dst_mac() -> String {
    "02:00:00:00:00:02".into()
}
fn default_src_ip() -> String {
    "198.18.0.1".into()
}
fn default_dst_ip() -> String {
    "198.18.0.2".into()
}
fn default_sport() -> u16 {
    1024
}
fn default_dport() -> u16 {
    1024
}
fn default_ttl() -> u8 {
    64
}

impl Default for StreamSection {
    fn default() -> Self {
        StreamSection {
            port: 0,
            size: default_size(),
            src_mac: default_src_mac(),
            dst_mac: default_dst_mac(),
            src_ip: default_src_ip(),
            dst_ip: default_dst_ip(),
            src_port: default_sport(),
            dst_port: default_dport(),
            vlan: 0,
            tos: 0,
            ttl: default_ttl(),
        }
    }
}

/// A stream with its addresses parsed.
#[derive(Debug, Clone)]
pub struct Stream {
    pub port: usize,
    pub size: u32,
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub vlan: u16,
    pub tos: u8,
    pub ttl: u8,
}

/// Smallest frame the generator builds (Ethernet minimum, with FCS).
pub const MIN_SIZE: u32 = 64;

impl Config {
    /// Reads and parses a TOML file; errors name the key and line.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path.display().to_string(),
                format!("cannot read config file: {e}"),
            )
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().replace('\n', " ");
            ConfigError::new(
                match line {
                    Some(l) => format!("{name}:{l}"),
                    None => name.to_string(),
                },
                msg,
            )
        })
    }

    /// Validates everything that can be checked before a port is opened.
    pub fn validate(&self) -> Result<Vec<Stream>, ConfigError> {
        let r = &self.run;
        if !(r.duration >= 0.0 && r.duration.is_finite()) {
            return Err(ConfigError::new(
                "run.duration",
                format!("{} is not a number of seconds ≥ 0", r.duration),
            ));
        }
        if r.burst == 0 || r.burst as usize > wirespeed::mbuf::BURST_MAX {
            return Err(ConfigError::new(
                "run.burst",
                format!("{} is outside 1..={}", r.burst, wirespeed::mbuf::BURST_MAX),
            ));
        }
        if r.mempool_size < 2 * r.burst as u32 {
            return Err(ConfigError::new(
                "run.mempool_size",
                format!(
                    "{} buffers is less than two bursts ({}); raise it",
                    r.mempool_size,
                    2 * r.burst
                ),
            ));
        }
        wirespeed::eal::CoreList::parse(&r.lcores)
            .map_err(|e| ConfigError::new("run.lcores", e.to_string()))?;
        if self.ports.is_empty() {
            return Err(ConfigError::new(
                "port",
                "no [[port]] given; add one (e.g. spec = \"null\") or pass --port SPEC",
            ));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if p.spec.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("port[{i}].spec"),
                    "empty device spec",
                ));
            }
            if p.tx_queues == Some(0) {
                return Err(ConfigError::new(
                    format!("port[{i}].tx_queues"),
                    "must be at least 1",
                ));
            }
            if p.ring_size == 0 {
                return Err(ConfigError::new(
                    format!("port[{i}].ring_size"),
                    "must be at least 1",
                ));
            }
        }
        let sections = if self.streams.is_empty() {
            vec![StreamSection::default()]
        } else {
            self.streams.clone()
        };
        let mut out = Vec::new();
        for (i, s) in sections.iter().enumerate() {
            let k = |f: &str| format!("stream[{i}].{f}");
            if s.port >= self.ports.len() {
                return Err(ConfigError::new(
                    k("port"),
                    format!(
                        "port {} does not exist; {} port(s) are configured",
                        s.port,
                        self.ports.len()
                    ),
                ));
            }
            let max = 2048 + 4;
            if s.size < MIN_SIZE || s.size > max {
                return Err(ConfigError::new(
                    k("size"),
                    format!("{} bytes is outside {MIN_SIZE}..={max} (frame size on the wire, FCS included)", s.size),
                ));
            }
            if s.vlan > 4095 {
                return Err(ConfigError::new(
                    k("vlan"),
                    format!("{} is not a VLAN id (0..=4095)", s.vlan),
                ));
            }
            if s.vlan != 0 && s.size < MIN_SIZE + 4 {
                return Err(ConfigError::new(
                    k("size"),
                    "a VLAN-tagged frame needs at least 68 bytes",
                ));
            }
            let mac = |f: &str, v: &str| -> Result<MacAddr, ConfigError> {
                v.parse().map_err(|e: String| ConfigError::new(k(f), e))
            };
            let ip = |f: &str, v: &str| -> Result<Ipv4Addr, ConfigError> {
                v.parse()
                    .map_err(|_| ConfigError::new(k(f), format!("'{v}' is not an IPv4 address")))
            };
            out.push(Stream {
                port: s.port,
                size: s.size,
                src_mac: mac("src_mac", &s.src_mac)?,
                dst_mac: mac("dst_mac", &s.dst_mac)?,
                src_ip: ip("src_ip", &s.src_ip)?,
                dst_ip: ip("dst_ip", &s.dst_ip)?,
                src_port: s.src_port,
                dst_port: s.dst_port,
                vlan: s.vlan,
                tos: s.tos,
                ttl: s.ttl,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quickstart_and_defaults_parse() {
        let c = Config::parse("[[port]]\nspec = \"null\"\n", "t").unwrap();
        let s = c.validate().unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].size, 64);
        assert_eq!(c.run.burst, 32);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let cases: &[(&str, &str)] = &[
            ("[run]\nlcores = \"0\"\nbogus = 1\n", "t:3"),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\nsize = 20\n",
                "stream[0].size",
            ),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\nsrc_ip = \"1.2.3\"\n",
                "stream[0].src_ip",
            ),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\ndst_mac = \"zz\"\n",
                "stream[0].dst_mac",
            ),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\nport = 3\n",
                "stream[0].port",
            ),
            (
                "[run]\nlcores = \"3-1\"\n[[port]]\nspec = \"null\"\n",
                "run.lcores",
            ),
            ("[run]\nburst = 0\n[[port]]\nspec = \"null\"\n", "run.burst"),
            ("[run]\n", "port"),
            (
                "[[port]]\nspec = \"null\"\ntx_queues = 0\n",
                "port[0].tx_queues",
            ),
            (
                "[[port]]\nspec = \"null\"\n[[stream]]\nvlan = 5000\n",
                "stream[0].vlan",
            ),
            ("[run]\ncount = -1\n", "t:2"),
        ];
        for (text, key) in cases {
            let e = Config::parse(text, "t").and_then(|c| c.validate().map(|_| ()));
            let e = e.expect_err(text);
            assert_eq!(&e.key, key, "{text}: {e}");
        }
    }
}
