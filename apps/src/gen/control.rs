//! `--control PATH`: a local Unix stream socket on which a running
//! generator takes commands, one JSON object per line, one JSON reply per
//! line (TRex's JSON-RPC control port and pktgen-dpdk's command line, in
//! the form of a local socket: `{"cmd":"rate","stream":"a","rate":"5
//! kpps"}`). Served by a thread of its own off the lcores; a command
//! reaches the senders through the stream's [`StreamGate`], which they
//! read once per send round. Every error is a reply
//! (`{"ok":false,"error":"…"}`), never the end of the run.
//!
//! [`StreamGate`]: super::gate::StreamGate

use super::gate::Command;
use super::live::LiveRun;
use crate::config::{Rate, StreamMode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the control socket changed, for the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Rate(Rate),
    Pause,
    Resume,
    Stop,
    Start,
}

/// One change, when (TSC) and to which stream.
#[derive(Debug, Clone)]
pub struct ControlEvent {
    pub stream: usize,
    pub tsc: u64,
    pub change: Change,
}

/// The commands, for `help` and the unknown-command error.
pub const COMMANDS: &str =
    "streams, stats, pause, resume, stop, start, rate (with \"rate\"), quit, help";

/// The listening socket and its thread; dropping it stops the thread and
/// removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    events: Arc<Mutex<Vec<ControlEvent>>>,
}

/// Binds `path`: a stale socket of an ended run is replaced, a live one
/// (another run answers) or any other file is an error.
fn bind(path: &Path) -> Result<UnixListener, String> {
    let shown = path.display();
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(format!(
                "{shown} exists and is not a socket; give another path or remove it"
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{shown}: another run is serving this socket; give another path"
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("{shown}: stale socket: {e}"))?;
    }
    let l = UnixListener::bind(path).map_err(|e| {
        format!("cannot listen on {shown}: {e} (does its directory exist and is it writable?)")
    })?;
    // Only the user who started the run may steer it.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    l.set_nonblocking(true)
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(l)
}

impl ControlServer {
    pub fn start(path: &Path, run: LiveRun) -> Result<ControlServer, String> {
        let l = bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (s2, e2) = (stop.clone(), events.clone());
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || accept_loop(&l, &run, &s2, &e2))
            .map_err(|e| format!("control thread: {e}"))?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
            events,
        })
    }

    /// The changes made so far, in order.
    pub fn events(&self) -> Vec<ControlEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(
    l: &UnixListener,
    run: &LiveRun,
    stop: &Arc<AtomicBool>,
    events: &Arc<Mutex<Vec<ControlEvent>>>,
) {
    let mut clients = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((c, _)) => {
                let (run, stop, events) = (run.clone(), stop.clone(), events.clone());
                if let Ok(t) = std::thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || serve(c, &run, &stop, &events))
                {
                    clients.push(t);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        clients.retain(|t| !t.is_finished());
    }
    for t in clients {
        let _ = t.join();
    }
}

/// One client: a reply per request line until it hangs up or the run ends.
fn serve(c: UnixStream, run: &LiveRun, stop: &AtomicBool, events: &Mutex<Vec<ControlEvent>>) {
    let _ = c.set_nonblocking(false);
    let _ = c.set_read_timeout(Some(Duration::from_millis(100)));
    let Ok(mut w) = c.try_clone() else { return };
    let mut r = BufReader::new(c);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        if line.trim().is_empty() {
            line.clear();
            continue;
        }
        let reply = handle(line.trim(), run, events);
        line.clear();
        let mut text = reply.to_string();
        text.push('\n');
        if w.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

fn err(why: impl Into<String>) -> Value {
    json!({"ok": false, "error": why.into()})
}

/// The reply to one request line.
pub fn handle(line: &str, run: &LiveRun, events: &Mutex<Vec<ControlEvent>>) -> Value {
    let req: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return err(format!(
                "bad JSON: {e}; send one object per line, e.g. {{\"cmd\":\"streams\"}}"
            ))
        }
    };
    let Some(cmd) = req.get("cmd").and_then(Value::as_str) else {
        return err(format!(
            "no \"cmd\" (a string) in the request; commands: {COMMANDS}"
        ));
    };
    match cmd {
        "streams" => {
            let rows: Vec<Value> = (0..run.streams().len())
                .map(|i| run.stream_json(i))
                .collect();
            json!({"ok": true, "elapsed_s": run.elapsed(), "streams": rows})
        }
        "stats" => run.stats_json(),
        "quit" => {
            run.monitor.request_stop();
            json!({"ok": true, "quitting": true})
        }
        "help" => json!({"ok": true, "commands": COMMANDS}),
        "pause" | "resume" | "stop" | "start" | "rate" => {
            match stream_command(cmd, &req, run, events) {
                Ok(v) => v,
                Err(e) => err(e),
            }
        }
        other => err(format!("unknown command '{other}'; commands: {COMMANDS}")),
    }
}

/// The stream a request names.
fn stream_of(req: &Value, run: &LiveRun, cmd: &str) -> Result<usize, String> {
    let names = || {
        run.streams()
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(name) = req.get("stream").and_then(Value::as_str) else {
        return Err(format!(
            "{cmd}: give \"stream\": the stream's name ({})",
            names()
        ));
    };
    run.streams()
        .iter()
        .position(|s| s.name == name)
        .ok_or_else(|| {
            format!(
                "{cmd}: no stream '{name}' in this run; streams: {}",
                names()
            )
        })
}

/// A new rate is held to what the config's would be: a percentage needs
/// a line rate, and one stream cannot ask for more than the line.
fn check_rate(r: &Rate, (wire, line): (f64, u64), name: &str) -> Result<(), String> {
    if matches!(r, Rate::Percent(_)) && line == 0 {
        return Err(format!(
            "rate: stream '{name}''s port has no line rate; give the rate in pps or bit/s"
        ));
    }
    if let Some(pps) = r.pps(wire, line) {
        let l1 = pps * (wire + 20.0) * 8.0;
        if line > 0 && l1 > line as f64 * 1.000_001 {
            return Err(format!(
                "rate: {} is {:.3} Gbit/s on the wire (L1), above the port's line rate of {:.3} Gbit/s",
                r.describe(),
                l1 / 1e9,
                line as f64 / 1e9
            ));
        }
    }
    Ok(())
}

/// pause, resume, stop, start, rate on one stream.
fn stream_command(
    cmd: &str,
    req: &Value,
    run: &LiveRun,
    events: &Mutex<Vec<ControlEvent>>,
) -> Result<Value, String> {
    let i = stream_of(req, run, cmd)?;
    let st = &run.streams()[i];
    let state = run.state(i);
    if state == "stopped" && cmd != "stop" {
        return Err(format!(
            "{cmd}: stream '{}' was stopped (stop ends a stream; pause and resume hold one)",
            st.name
        ));
    }
    let change = match cmd {
        "pause" => Change::Pause,
        "resume" => Change::Resume,
        "stop" => Change::Stop,
        "start" => Change::Start,
        _ => {
            let text = req.get("rate").and_then(Value::as_str).ok_or_else(|| {
                "rate: give \"rate\": a rate text, e.g. \"5 kpps\", \"1 Gbit/s\", \"50%\", \"line\""
                    .to_string()
            })?;
            if st.mode == StreamMode::Tcp {
                return Err(format!(
                    "rate: stream '{}' is a TCP stream: TCP's congestion control sets its rate",
                    st.name
                ));
            }
            let r = Rate::parse(text).map_err(|e| format!("rate: {e}"))?;
            check_rate(&r, run.limits[i], &st.name)?;
            Change::Rate(r)
        }
    };
    let g = run.gate(i).update(|g| match &change {
        Change::Pause => g.command = Command::Pause,
        Change::Resume => g.command = Command::Run,
        Change::Stop => g.command = Command::Stop,
        Change::Start => {
            g.command = Command::Run;
            g.start_now = true;
        }
        Change::Rate(r) => g.rate = Some(*r),
    });
    events
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(ControlEvent {
            stream: i,
            tsc: run.tsc.now(),
            change,
        });
    Ok(json!({
        "ok": true,
        "stream": st.name,
        "state": match g.command {
            Command::Pause => "paused",
            Command::Stop => "stopped",
            Command::Run => if state == "done" { "done" } else { "running" },
        },
        "rate": g.rate.unwrap_or(st.rate).describe(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_rate_is_held_to_the_line() {
        // 100 Mbit/s with 64-byte frames: 148 809 pps on the wire.
        let l = (64.0, 100_000_000);
        assert!(check_rate(&Rate::Pps(148_000.0), l, "a").is_ok());
        let e = check_rate(&Rate::Pps(200_000.0), l, "a").unwrap_err();
        assert!(
            e.contains("above the port's line rate of 0.100 Gbit/s"),
            "{e}"
        );
        assert!(check_rate(&Rate::Percent(50.0), l, "a").is_ok());
        let e = check_rate(&Rate::Percent(50.0), (64.0, 0), "a").unwrap_err();
        assert!(e.contains("'a''s port has no line rate"), "{e}");
        assert!(check_rate(&Rate::Line, (64.0, 0), "a").is_ok());
    }
}
