//! Every config in configs/ validates and runs (briefly) on a model or a
//! software port: what users start from must work.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wirespeed")
}

fn configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("toml"))
        .collect();
    v.sort();
    v
}

/// Named `model_*` so it runs in the serial phase (scripts/test): its
/// rate checks need both cores, as the model tests do.
#[test]
fn model_every_config_validates_and_runs_clean() {
    let all = configs();
    assert!(
        all.len() >= 8,
        "expected the 8 starter configs, found {}",
        all.len()
    );
    let dir = std::env::temp_dir().join(format!("ws-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cfg in all {
        let name = cfg.file_stem().unwrap().to_str().unwrap().to_string();
        // Not generator runs of a software port: l3fwd, udp_echo and
        // macswap are the example appliances' (apps/tests/examples.rs runs
        // each binary on its config); tcp needs a veth and a kernel
        // receiver (apps/tests/kernel_tcp.rs runs it against one).
        if matches!(name.as_str(), "l3fwd" | "udp_echo" | "macswap") {
            continue;
        }
        if name == "tcp" {
            let out = Command::new(bin()).arg("check").arg(&cfg).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            // Validated up to opening its port: only the absent veth0 may fail.
            assert!(out.status.success() || err.contains("veth0"), "tcp: {err}");
            continue;
        }
        let out = Command::new(bin()).arg("check").arg(&cfg).output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // VFIO configs run on the models of their NICs; files go to a temp dir.
        let port = match name.as_str() {
            "igb-vfio" => Some("igb-model".to_string()),
            "ice-vfio" => Some("ice-model".to_string()),
            "pcap-replay" => Some(format!("pcap:{}", dir.join("replayed.pcap").display())),
            "headers" => Some(format!("pcap:{}", dir.join("headers.pcap").display())),
            _ => None,
        };
        let json = dir.join(format!("{name}.json"));
        let mut cmd = Command::new(bin());
        cmd.arg("gen")
            .arg(&cfg)
            .args(["-q", "--no-huge", "--duration", "0.5", "--json"])
            .arg(&json);
        if let Some(p) = &port {
            cmd.args(["--port", p]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert!(
            v["packets_sent"].as_u64().unwrap() > 0,
            "{name}: nothing sent"
        );
        for p in v["ports"].as_array().unwrap() {
            assert_eq!(
                p["conserved"], true,
                "{name}: port {} lost packets",
                p["spec"]
            );
        }
        // A shipped config runs clean: no warning (leaked mbufs, missed
        // rates), every stream within its target and nothing dropped.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.to_lowercase().contains("warn"),
            "{name}: warnings:\n{stderr}"
        );
        for st in v["streams"].as_array().unwrap() {
            assert_eq!(
                st["flags"].as_array().map(|f| f.len()),
                Some(0),
                "{name}: stream {} flagged: {}",
                st["name"],
                st["flags"]
            );
        }
        for l in v["lcores"].as_array().unwrap() {
            assert_eq!(
                l["mempool_in_use_at_end"], 0,
                "{name}: mbufs in use at the end"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
