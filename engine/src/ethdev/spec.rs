//! Device spec strings: `driver[:arg][?key=value&key=value]`, e.g. `null`,
//! `pcap:out.pcap?rx=in.pcap`, `ring:a`, `igb:0000:00:01.0`, `ice-model?speed=10g`.

use super::EthdevError;

/// A parsed device spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevSpec {
    /// The whole string.
    pub raw: String,
    pub driver: String,
    /// What follows the first ':' (a path, a name, a PCI address).
    pub arg: Option<String>,
    pub params: Vec<(String, String)>,
}

impl DevSpec {
    pub fn parse(s: &str) -> Result<DevSpec, EthdevError> {
        let bad = |why: &str| EthdevError::BadSpec {
            spec: s.to_string(),
            why: why.to_string(),
        };
        let s_trim = s.trim();
        if s_trim.is_empty() {
            return Err(bad("empty; expected driver[:arg][?key=value]"));
        }
        let (head, query) = match s_trim.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (s_trim, None),
        };
        let (driver, arg) = match head.split_once(':') {
            Some((d, a)) => (d, Some(a)),
            None => (head, None),
        };
        if driver.is_empty()
            || !driver
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("the driver name must be letters, digits, '-' or '_'"));
        }
        if let Some(a) = arg {
            if a.is_empty() {
                return Err(bad("nothing after ':'"));
            }
        }
        let mut params = Vec::new();
        if let Some(q) = query {
            for kv in q.split('&') {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| bad(&format!("parameter '{kv}' is not key=value")))?;
                if k.is_empty() {
                    return Err(bad("empty parameter name"));
                }
                params.push((k.to_string(), v.to_string()));
            }
        }
        Ok(DevSpec {
            raw: s_trim.to_string(),
            driver: driver.to_string(),
            arg: arg.map(str::to_string),
            params,
        })
    }

    /// The value of parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Errors on parameters outside `allowed` (catches typos).
    pub fn check_params(&self, allowed: &[&str]) -> Result<(), EthdevError> {
        for (k, _) in &self.params {
            if !allowed.contains(&k.as_str()) {
                return Err(EthdevError::BadSpec {
                    spec: self.raw.clone(),
                    why: format!(
                        "unknown parameter '{k}' for driver '{}'; allowed: {}",
                        self.driver,
                        if allowed.is_empty() {
                            "none".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                });
            }
        }
        Ok(())
    }

    /// Parses parameter `key` as a number, with a default.
    pub fn param_u64(&self, key: &str, default: u64) -> Result<u64, EthdevError> {
        match self.param(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| EthdevError::BadSpec {
                spec: self.raw.clone(),
                why: format!("parameter '{key}={v}' is not a whole number"),
            }),
        }
    }

    /// The required argument, or an error naming the syntax.
    pub fn require_arg(&self, syntax: &str) -> Result<&str, EthdevError> {
        self.arg.as_deref().ok_or_else(|| EthdevError::BadSpec {
            spec: self.raw.clone(),
            why: format!("driver '{}' needs an argument: {syntax}", self.driver),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let s = DevSpec::parse("pcap:out.pcap?rx=in.pcap").unwrap();
        assert_eq!(s.driver, "pcap");
        assert_eq!(s.arg.as_deref(), Some("out.pcap"));
        assert_eq!(s.param("rx"), Some("in.pcap"));
        let s = DevSpec::parse("igb:0000:00:01.0").unwrap();
        assert_eq!(s.arg.as_deref(), Some("0000:00:01.0"));
        let s = DevSpec::parse("ice-model?speed=10g&sink=count").unwrap();
        assert_eq!(s.driver, "ice-model");
        assert_eq!(s.arg, None);
        assert_eq!(s.param("sink"), Some("count"));
        assert!(s.check_params(&["speed"]).is_err());
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in ["", "pcap:", "a b", "null?x", "null?=1", ":x"] {
            assert!(DevSpec::parse(bad).is_err(), "{bad:?}");
        }
    }
}
