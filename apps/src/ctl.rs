//! `wirespeed ctl PATH CMD [ARGS]`: one command to a running generator's
//! control socket (`wirespeed gen --control PATH`), its reply printed
//! readably (or as the JSON line with `--json`). The protocol is one JSON
//! object per line each way; see [`crate::gen::control`].

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `wirespeed ctl` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CtlArgs {
    /// The control socket (`wirespeed gen --control PATH`).
    pub socket: PathBuf,
    /// streams, stats, pause STREAM, resume STREAM, stop STREAM, start
    /// STREAM, rate STREAM RATE, quit, help — or a JSON request object.
    pub cmd: String,
    /// The stream, then for `rate` the rate ("5 kpps", "1 Gbit/s", "50%").
    pub args: Vec<String>,
    /// Print the reply as its JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Why a command got no reply.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}: no control socket there (is `wirespeed gen --control {0}` running?)")]
    Absent(String),
    #[error("{0}: connection refused: nothing serves this socket any more (the run ended)")]
    Refused(String),
    #[error("{path}: {why}")]
    Io { path: String, why: String },
    #[error("usage: {0}")]
    Usage(String),
}

impl CtlError {
    /// 2 for usage, 3 when the run cannot be reached, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => 2,
            CtlError::Absent(_) | CtlError::Refused(_) => 3,
            CtlError::Io { .. } => 1,
        }
    }
}

/// Sends `req` on `path` and returns the reply.
pub fn request(path: &Path, req: &Value) -> Result<Value, CtlError> {
    let p = path.display().to_string();
    let io = |e: std::io::Error| CtlError::Io {
        path: p.clone(),
        why: e.to_string(),
    };
    let mut c = UnixStream::connect(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => CtlError::Absent(p.clone()),
        ErrorKind::ConnectionRefused => CtlError::Refused(p.clone()),
        _ => io(e),
    })?;
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut line = req.to_string();
    line.push('\n');
    c.write_all(line.as_bytes()).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(c).read_line(&mut reply).map_err(io)?;
    if reply.is_empty() {
        return Err(CtlError::Io {
            path: p,
            why: "the run closed the connection without a reply (it is ending)".into(),
        });
    }
    serde_json::from_str(&reply).map_err(|e| CtlError::Io {
        path: p,
        why: format!("reply is not JSON: {e}"),
    })
}

/// The request for `CMD [ARGS]`.
pub fn build(cmd: &str, args: &[String]) -> Result<Value, CtlError> {
    if cmd.trim_start().starts_with('{') {
        // A request object as is (its fields are the server's to check).
        return serde_json::from_str(cmd)
            .map_err(|e| CtlError::Usage(format!("'{cmd}' is not a JSON object: {e}")));
    }
    let need = |n: usize, what: &str| {
        if args.len() < n {
            Err(CtlError::Usage(format!("wirespeed ctl PATH {cmd} {what}")))
        } else {
            Ok(())
        }
    };
    Ok(match cmd {
        "pause" | "resume" | "stop" | "start" => {
            need(1, "STREAM")?;
            json!({"cmd": cmd, "stream": args[0]})
        }
        "rate" => {
            need(2, "STREAM RATE (e.g. rate a 5 kpps)")?;
            json!({"cmd": cmd, "stream": args[0], "rate": args[1..].join(" ")})
        }
        _ => json!({ "cmd": cmd }),
    })
}

/// A reply as text: the streams as a table, `stats` as the Linux tools'
/// views, anything else as `key: value` lines.
pub fn render(reply: &Value) -> String {
    let mut out = String::new();
    if reply["ok"] == false {
        return format!(
            "error: {}\n",
            reply["error"].as_str().unwrap_or("(no reason given)")
        );
    }
    if let Some(rows) = reply["streams"].as_array() {
        out.push_str(&streams_table(rows));
    }
    if reply["ports"].is_array() {
        if let Ok(t) = crate::stats::render(reply, crate::stats::View::All, None) {
            out.push_str(&t);
        }
    }
    if let Some(m) = reply.as_object() {
        for (k, v) in m {
            if matches!(k.as_str(), "ok" | "streams" | "ports" | "stacks") {
                continue;
            }
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out
}

/// The `streams` rows as a table.
pub fn streams_table(rows: &[Value]) -> String {
    let mut out = format!(
        "{:<16} {:>4} {:<8} {:<28} {:>12} {:>12} {:>9}\n",
        "stream", "port", "state", "rate", "offered", "delivered", "dropped"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<16} {:>4} {:<8} {:<28} {:>12} {:>12} {:>9}\n",
            r["name"].as_str().unwrap_or("?"),
            r["port"],
            r["state"].as_str().unwrap_or("?"),
            r["rate"].as_str().unwrap_or("?"),
            r["offered"],
            r["delivered"],
            r["dropped"],
        ));
    }
    out
}

/// `wirespeed ctl`: the reply's text and whether it said ok.
pub fn run(a: &CtlArgs) -> Result<(String, bool), CtlError> {
    let req = build(&a.cmd, &a.args)?;
    let reply = request(&a.socket, &req)?;
    let ok = reply["ok"] == true;
    let text = if a.json {
        format!("{reply}\n")
    } else {
        render(&reply)
    };
    Ok((text, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_become_requests() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            build("rate", &a(&["a", "2", "Mpps"])).unwrap(),
            json!({"cmd": "rate", "stream": "a", "rate": "2 Mpps"})
        );
        assert_eq!(
            build("pause", &a(&["b"])).unwrap(),
            json!({"cmd": "pause", "stream": "b"})
        );
        assert_eq!(build("stats", &[]).unwrap(), json!({"cmd": "stats"}));
        assert!(matches!(build("rate", &a(&["a"])), Err(CtlError::Usage(_))));
        assert_eq!(
            build(r#"{"cmd":"help"}"#, &[]).unwrap(),
            json!({"cmd": "help"})
        );
        assert!(matches!(build("{nope", &[]), Err(CtlError::Usage(_))));
        assert_eq!(
            render(&json!({"ok": false, "error": "no stream 'x'"})),
            "error: no stream 'x'\n"
        );
    }
}
