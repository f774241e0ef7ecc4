//! The `wirespeed` command: traffic generator and device tools.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use wirespeed_apps::{bench, ctl, devtools, doctor, gen, registry, stats};

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
    /// A run's counters as the Linux tools show them: ethtool -S, tc -s qdisc, BQL's sysfs files, /proc/net/snmp (and live: /proc/net/udp, ip neigh).
    Stats {
        /// The summary `wirespeed gen --json FILE` wrote; with --control, the view instead.
        target: Option<String>,
        /// Ask a running generator (its control socket) instead of reading a file.
        #[arg(long, value_name = "PATH")]
        control: Option<std::path::PathBuf>,
        /// Which view.
        #[arg(long, value_enum)]
        view: Option<stats::View>,
        /// Only this port (its index in the run).
        #[arg(long)]
        port: Option<usize>,
    },
    /// Send one command to a running generator's control socket (gen --control PATH).
    Ctl(ctl::CtlArgs),
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

/// `wirespeed stats FILE [--view V]` or `wirespeed stats --control PATH [VIEW]`.
fn cmd_stats(
    target: Option<String>,
    control: Option<std::path::PathBuf>,
    view: Option<stats::View>,
    port: Option<usize>,
) -> ExitCode {
    use clap::ValueEnum;
    let fail = |e: String, code: u8| {
        eprintln!("wirespeed stats: {e}");
        ExitCode::from(code)
    };
    let r = match (control, target) {
        (Some(sock), t) => {
            let v = match (view, t.as_deref()) {
                (Some(v), None) => v,
                (None, None) => stats::View::All,
                (None, Some(t)) => match stats::View::from_str(t, true) {
                    Ok(v) => v,
                    Err(_) => {
                        return fail(
                            format!(
                            "'{t}' is not a view; use ethtool, tc, bql, snmp, udp, neigh or all"
                        ),
                            2,
                        )
                    }
                },
                (Some(_), Some(t)) => {
                    return fail(format!("give the view once: '{t}' or --view"), 2)
                }
            };
            stats::live(&sock, v, port).map_err(|e| (e, 3))
        }
        (None, Some(f)) => stats::run(
            std::path::Path::new(&f),
            view.unwrap_or(stats::View::All),
            port,
        )
        .map_err(|e| (e.to_string(), 2)),
        (None, None) => {
            return fail(
                "give a --json summary FILE, or --control PATH of a running generator".into(),
                2,
            )
        }
    };
    match r {
        Ok(t) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Err((e, code)) => fail(e, code),
    }
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
        Cmd::Stats {
            target,
            control,
            view,
            port,
        } => cmd_stats(target, control, view, port),
        Cmd::Ctl(a) => match ctl::run(&a) {
            Ok((text, ok)) => {
                print!("{text}");
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("wirespeed ctl: {e}");
                ExitCode::from(e.exit_code())
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
