//! A port's receive queues and receive-side scaling, from its `[[port]]`
//! keys (`rx_queues`, `rss`, `rss_key`, `rss_reta`, `rss_hash`) and what
//! the device offers; every error names `port[i].KEY`.

use super::GenError;
use crate::config::{ConfigError, PortSection};
use wirespeed::ethdev::rss::{DEFAULT_RSS_KEY, RSS_KEY_LEN};
use wirespeed::ethdev::{PortInfo, RssConf, RssHashTypes};

/// How many RX queues the port gets and its RSS set-up. `wants_rx`: a
/// stream, ARP or the port's stack listens on it; `rss` asks for RX too.
pub(super) fn plan_rx(
    i: usize,
    p: &PortSection,
    info: &PortInfo,
    lcores: usize,
    ntx: u16,
    wants_rx: bool,
) -> Result<(u16, Option<RssConf>), GenError> {
    let key = |k: &str| format!("port[{i}].{k}");
    if !p.rss {
        for (k, set) in [
            ("rss_key", p.rss_key.is_some()),
            ("rss_reta", p.rss_reta.is_some()),
            ("rss_hash", p.rss_hash.is_some()),
        ] {
            if set {
                return Err(ConfigError::new(
                    key(k),
                    "only means something with rss = true; add it or drop this key",
                )
                .into());
            }
        }
    }
    let nb_rx = match p.rx_queues {
        Some(n) if n == 0 || n > info.max_rx_queues => {
            return Err(ConfigError::new(
                key("rx_queues"),
                format!("{n}: {} has 1..={} RX queues", p.spec, info.max_rx_queues),
            )
            .into())
        }
        Some(n) => n,
        None if !(wants_rx || p.rss) => 0,
        None if p.rss => (lcores as u16).min(info.max_rx_queues),
        // A NIC without RSS set up lands every frame in queue 0.
        None if info.reta_size > 0 => 1,
        None => ntx.min(info.max_rx_queues),
    };
    if !p.rss {
        return Ok((nb_rx, None));
    }
    if info.reta_size == 0 {
        return Err(ConfigError::new(
            key("rss"),
            format!(
                "{} ({}) has no receive-side scaling (igb, igb-model, ice and ice-model have); drop rss = true",
                p.spec, info.driver
            ),
        )
        .into());
    }
    let conf = RssConf {
        key: match &p.rss_key {
            Some(s) => parse_key(s).map_err(|why| ConfigError::new(key("rss_key"), why))?,
            None => DEFAULT_RSS_KEY,
        },
        reta: p
            .rss_reta
            .clone()
            .unwrap_or_else(|| RssConf::spread(nb_rx, info.reta_size).reta),
        hash_types: match &p.rss_hash {
            Some(v) => parse_types(v).map_err(|why| ConfigError::new(key("rss_hash"), why))?,
            None => info.rss_hash_types,
        },
    };
    check(i, p, info, nb_rx, &conf)?;
    Ok((nb_rx, Some(conf)))
}

/// The ethdev checks, with the TOML key names.
fn check(
    i: usize,
    p: &PortSection,
    info: &PortInfo,
    nb_rx: u16,
    c: &RssConf,
) -> Result<(), GenError> {
    let key = |k: &str| format!("port[{i}].{k}");
    if c.reta.len() != info.reta_size as usize {
        return Err(ConfigError::new(
            key("rss_reta"),
            format!(
                "{} entries; {}'s redirection table has exactly {}",
                c.reta.len(),
                p.spec,
                info.reta_size
            ),
        )
        .into());
    }
    if let Some((j, q)) = c.reta.iter().enumerate().find(|(_, &q)| q >= nb_rx) {
        return Err(ConfigError::new(
            key(&format!("rss_reta[{j}]")),
            format!("queue {q} does not exist: the port has RX queues 0..{nb_rx} (raise rx_queues or lower the entry)"),
        )
        .into());
    }
    let missing = c.hash_types.difference(info.rss_hash_types);
    if !missing.is_empty() {
        return Err(ConfigError::new(
            key("rss_hash"),
            format!(
                "{} does not hash {} (it hashes {})",
                p.spec,
                missing.names(),
                info.rss_hash_types.names()
            ),
        )
        .into());
    }
    Ok(())
}

/// 40 bytes of hex, optionally with ':' between bytes.
fn parse_key(s: &str) -> Result<[u8; RSS_KEY_LEN], String> {
    let hex: String = s.chars().filter(|&c| c != ':').collect();
    if hex.len() != 2 * RSS_KEY_LEN || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "'{s}' is not {RSS_KEY_LEN} bytes of hex ({} hex digits, ':' between bytes allowed)",
            2 * RSS_KEY_LEN
        ));
    }
    let mut k = [0u8; RSS_KEY_LEN];
    for (j, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * j..2 * j + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(k)
}

fn parse_types(v: &[String]) -> Result<RssHashTypes, String> {
    let mut t = RssHashTypes::NONE;
    for n in v {
        t = t | RssHashTypes::from_name(n).ok_or_else(|| {
            format!("'{n}' is no hashed packet type; use ipv4, ipv4-tcp or ipv4-udp")
        })?;
    }
    if t.is_empty() {
        return Err("empty: list some of ipv4, ipv4-tcp, ipv4-udp".into());
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_bad_ones_are_refused() {
        let hex: String = DEFAULT_RSS_KEY.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_key(&hex).unwrap(), DEFAULT_RSS_KEY);
        let colons: Vec<String> = DEFAULT_RSS_KEY.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_key(&colons.join(":")).unwrap(), DEFAULT_RSS_KEY);
        assert!(parse_key("6d5a").unwrap_err().contains("40 bytes"));
        assert!(parse_key(&"zz".repeat(40)).is_err());
        assert_eq!(
            parse_types(&["ipv4".into(), "ipv4-udp".into()]).unwrap(),
            RssHashTypes::IPV4 | RssHashTypes::IPV4_UDP
        );
        assert!(parse_types(&["ipv6".into()])
            .unwrap_err()
            .contains("'ipv6'"));
        assert!(parse_types(&[]).is_err());
    }
}
