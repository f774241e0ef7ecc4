//! What the example appliances (`l3fwd`, `macswap`, `udp_echo`) share:
//! their error type and how they read their TOML configs. Each includes
//! this file as its `common` module.

use std::path::Path;

/// Why a run could not start or ended; [`Error::exit_code`] is 2 for bad
/// configuration, 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {why}")]
    Read { path: String, why: String },
    #[error("{key}: {why}")]
    Config { key: String, why: String },
    #[error(transparent)]
    Ethdev(#[from] wirespeed::ethdev::EthdevError),
    #[error(transparent)]
    Runtime(#[from] wirespeed::runtime::RuntimeError),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Read { .. } | Error::Config { .. } => 2,
            Error::Ethdev(_) | Error::Runtime(_) => 1,
        }
    }
}

/// A bad value at `key`, and why.
pub fn bad(key: impl Into<String>, why: impl Into<String>) -> Error {
    Error::Config {
        key: key.into(),
        why: why.into(),
    }
}

/// Reads and parses a TOML file (unknown keys are errors naming them).
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Read {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    parse_toml(&path.display().to_string(), &text)
}

/// Parses TOML `text` read from `name`.
pub fn parse_toml<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<T, Error> {
    toml::from_str(text).map_err(|e| Error::Read {
        path: name.to_string(),
        why: e.to_string().trim_end().to_string(),
    })
}
