//! `[[port]] xps`: the XPS map in the TOML (entry l: lcore l's TX queues)
//! decides which queue each lcore's frames leave by; a bad map exits 2
//! naming `port[i].xps`.

mod common;
use common::{bin, tmpdir};
use std::process::Command;

fn run(dir: &std::path::Path, xps: &str) -> std::process::Output {
    let cfg = dir.join("xps.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nlcores = \"0,1\"\n[[port]]\nspec = \"null\"\ntx_queues = 4\n{xps}\n\
             [[stream]]\nlcores = \"0\"\ncount = 3000\nsize = 64\n"
        ),
    )
    .unwrap();
    Command::new(bin())
        .args(["gen", cfg.to_str().unwrap(), "--no-huge", "-q", "--json"])
        .arg(dir.join("out.json"))
        .output()
        .unwrap()
}

#[test]
fn the_xps_map_picks_each_lcores_queue() {
    let dir = tmpdir("gen-xps");
    // Lcore 0 owns queues 3 and 1; its one stream goes out of its first.
    let out = run(&dir, "xps = [[3, 1], [0, 2]]");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out.json")).unwrap()).unwrap();
    let q: Vec<u64> = (0..4)
        .map(|i| v["ports"][0]["queues"][i]["packets"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(q, vec![0, 0, 0, 3000], "{}", v["ports"][0]["queues"]);
}

#[test]
fn a_bad_xps_map_names_the_key() {
    let dir = tmpdir("gen-xps-bad");
    for (xps, why) in [
        ("xps = [[0, 1, 2, 3]]", "2 lcores"),
        ("xps = [[0, 1], [1, 2, 3]]", "one owner"),
        ("xps = [[0, 1], [2]]", "queue 3 belongs to no lcore"),
        ("xps = [[0, 9], [1, 2, 3]]", "queue 9 does not exist"),
        ("xps = [[], [0, 1, 2, 3]]", "no TX queue"),
    ] {
        let out = run(&dir, xps);
        assert_eq!(out.status.code(), Some(2), "{xps}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("port[0].xps") && e.contains(why), "{xps}: {e}");
    }
}
