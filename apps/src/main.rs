//! The `wirespeed` command: traffic generator and device tools.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use wirespeed_apps::{bench, devtools, doctor, gen, registry, stats};

#[derive(Parser)]
#[command(
    name = "wirespeed",
    version,
    about = "Poll-mode packet engine: the Linux TX path in user space"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate traffic (raw frames at line rate; see configs/).
    Gen(Box<gen::GenArgs>),
    /// RFC 2544 benchmarks over a config's streams: throughput (NDR/PDR), frame loss, back-to-back.
    Bench {
        #[command(subcommand)]
        cmd: bench::BenchCmd,
    },
    /// A run's `--json` summary as the Linux tools show it: ethtool -S, tc -s qdisc, BQL's sysfs files, /proc/net/snmp.
    Stats {
        /// The summary `wirespeed gen --json FILE` wrote.
        json: std::path::PathBuf,
        /// Which view.
        #[arg(long, value_enum, default_value = "all")]
        view: stats::View,
        /// Only this port (its index in the run).
        #[arg(long)]
        port: Option<usize>,
    },
    /// List the registered drivers and their device-spec syntax.
    Ports,
    /// Validate a config file without running it (exit 2 with the key named if it is wrong).
    Check {
        /// The TOML config.
        config: std::path::PathBuf,
    },
    /// Report hugepages, VFIO and IOMMU readiness, and what to do about gaps.
    Doctor {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Dev(devtools::DevCmd),
}

/// Splits `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + w.chars().count() > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `wirespeed gen`: the summary, `--json`, warnings, and exit 1 when the
/// run failed (exit 2 for bad input).
fn cmd_gen(args: &gen::GenArgs) -> ExitCode {
    let s = match gen::run(args, &registry()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wirespeed gen: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    gen::print_summary(&s);
    if let Some(path) = &args.json {
        let text = match serde_json::to_string_pretty(&s) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("wirespeed gen: cannot encode the summary: {e}");
                return ExitCode::from(1);
            }
        };
        if let Err(e) = wirespeed::eal::file::write_nofollow(path, text.as_bytes()) {
            eprintln!("wirespeed gen: --json {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if s.streams.iter().any(|st| st.rate_miss) {
        eprintln!("wirespeed gen: warning: a stream missed its target rate (see the summary)");
    }
    if s.lcores.iter().any(|l| l.mempool_in_use_at_end > 0) {
        eprintln!("wirespeed gen: warning: mbufs still in use at the end of the run");
    }
    if !s.failures.is_empty() {
        for f in &s.failures {
            eprintln!("wirespeed gen: run failed: {f}");
        }
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `wirespeed check CONFIG`.
fn cmd_check(config: &std::path::Path) -> ExitCode {
    let args = gen::GenArgs {
        config: Some(config.to_path_buf()),
        ..Default::default()
    };
    match gen::check(&args, &registry()) {
        Ok(n) => {
            println!("{}: ok ({n} stream(s))", config.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wirespeed check: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// `wirespeed ports`: syntax in the first column; a syntax too wide for it
/// gets a line of its own, and the help wraps under its column.
fn cmd_ports() -> ExitCode {
    const COL: usize = 30;
    const WIDTH: usize = 100;
    let reg = registry();
    let rows = reg
        .drivers()
        .iter()
        .map(|d| (d.syntax, d.help))
        .chain(reg.wrappers().iter().map(|w| (w.syntax, w.help)));
    for (syntax, help) in rows {
        let mut lines = wrap(help, WIDTH - COL).into_iter();
        if syntax.chars().count() < COL {
            println!("{:<COL$}{}", syntax, lines.next().unwrap_or_default());
        } else {
            println!("{syntax}");
        }
        for l in lines {
            println!("{:COL$}{l}", "");
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let level = match std::env::var("WIRESPEED_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        Ok("error") => tracing::Level::ERROR,
        Ok("info") => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(level)
        .init();
    wirespeed::eal::signal::default_sigpipe();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Gen(args) => cmd_gen(&args),
        Cmd::Check { config } => cmd_check(&config),
        Cmd::Bench { cmd } => match bench::run(&cmd, &registry()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wirespeed bench: {e}");
                ExitCode::from(e.exit_code() as u8)
            }
        },
        Cmd::Stats { json, view, port } => match stats::run(&json, view, port) {
            Ok(t) => {
                print!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("wirespeed stats: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Ports => cmd_ports(),
        Cmd::Dev(c) => devtools::run(&c),
        Cmd::Doctor { json } => {
            let r = doctor::inspect();
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                doctor::print(&r);
            }
            ExitCode::SUCCESS
        }
    }
}
