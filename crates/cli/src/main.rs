//! The `corral` binary. `corral server [--config zoo.cfg] [-Dname=value ...]` runs a server with
//! ZooKeeper's zoo.cfg and system properties; without a config it runs the embedded default
//! (one node, client port 2181, data under ./data). `corral data ...` inspects a data directory.

mod data;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use corral_server::config::ServerConfig;
use corral_server::Server;
use corral_storage::snapshot::Compression;
use corral_storage::store::StoreOptions;
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "corral",
    version,
    about = "A drop-in replacement for Apache ZooKeeper 3.8"
)]
struct Cli {
    /// Log lines as text, or as one JSON object per line (timestamp, level, target, fields)
    /// for log collectors. Also `CORRAL_LOG_FORMAT`.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CORRAL_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a server. Java-style `-Dname=value` properties may follow (as for ZooKeeper's JVM).
    Server {
        /// zoo.cfg to use; without it the embedded default runs.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// zoo.cfg given positionally, as to ZooKeeper's QuorumPeerMain.
        #[arg(conflicts_with = "config")]
        config_file: Option<PathBuf>,
    },
    /// Inspect and check a data directory (txn logs, snapshots) without changing it.
    Data {
        #[command(subcommand)]
        cmd: data::DataCmd,
    },
    /// Drive a ZooKeeper-protocol server with load; print throughput and latency percentiles.
    Bench(corral_bench::BenchArgs),
}

/// `-Dname=value` pairs in the order given.
type Defines = Vec<(String, String)>;

/// Split `-Dname=value` arguments (which clap cannot express) from the rest.
fn split_defines(args: Vec<String>) -> anyhow::Result<(Vec<String>, Defines)> {
    let mut rest = Vec::new();
    let mut defines = Vec::new();
    for a in args {
        if let Some(d) = a.strip_prefix("-D") {
            let (k, v) = d.split_once('=').unwrap_or((d, ""));
            anyhow::ensure!(
                !k.is_empty(),
                "invalid property argument '{a}': expected -Dname=value"
            );
            defines.push((k.to_string(), v.to_string()));
        } else {
            rest.push(a);
        }
    }
    Ok((rest, defines))
}

fn main() -> std::process::ExitCode {
    // Operators get one clear line, not a backtrace.
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let (args, defines) = split_defines(std::env::args().collect())?;
    let cli = Cli::parse_from(args);
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    match cli.cmd {
        Cmd::Server {
            config,
            config_file,
        } => server(config.or(config_file), defines),
        Cmd::Data { cmd } => data::run(cmd),
        Cmd::Bench(args) => Ok(corral_bench::main(args)?),
    }
}

fn server(config: Option<PathBuf>, defines: Vec<(String, String)>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let text = match &config {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let file = config.as_deref().zip(text.as_deref());
    // The parser's messages say "zoo.cfg"; name the file actually given.
    let (cfg, warnings) = ServerConfig::load(file, &defines).map_err(|e| {
        let msg = e.to_string();
        match (&config, msg.strip_prefix("zoo.cfg")) {
            (Some(p), Some(rest)) => anyhow::anyhow!("{}{rest}", p.display()),
            _ => anyhow::anyhow!("{msg}"),
        }
    })?;
    match &config {
        Some(p) => info!(
            "corral {} starting with {}",
            env!("CARGO_PKG_VERSION"),
            p.display()
        ),
        None => info!(
            "corral {} starting with the embedded default configuration",
            env!("CARGO_PKG_VERSION")
        ),
    }
    let mut cfg = cfg;
    cfg.config_path = config.clone();
    let mut warnings = warnings;
    if let Some(dynamic) = cfg.dynamic_config_file.clone() {
        let text = std::fs::read_to_string(&dynamic)
            .with_context(|| format!("cannot read dynamicConfigFile {}", dynamic.display()))?;
        let more = cfg.apply_dynamic_file(&text).map_err(|e| {
            let msg = e.to_string();
            match msg.strip_prefix("zoo.cfg") {
                Some(rest) => anyhow::anyhow!("{}{rest}", dynamic.display()),
                None => anyhow::anyhow!("{}: {msg}", dynamic.display()),
            }
        })?;
        info!(
            "ensemble of {} servers from {}",
            cfg.servers.len(),
            dynamic.display()
        );
        warnings.extend(more);
    }
    for w in &warnings {
        let msg = w.to_string();
        match (&config, msg.strip_prefix("zoo.cfg")) {
            (Some(p), Some(rest)) => warn!("{}{rest}", p.display()),
            _ => warn!("{msg}"),
        }
    }
    let data_dir = cfg.data_dir.clone().context("dataDir is not set")?;
    let truthy = |name: &str| {
        cfg.property(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let opts = StoreOptions {
        data_log_dir: cfg.data_log_dir.clone().unwrap_or_else(|| data_dir.clone()),
        data_dir,
        force_sync: cfg.force_sync,
        prealloc_bytes: cfg.pre_alloc_size_kb * 1024,
        compression: Compression::from_method(&cfg.snapshot_compression_method),
        max_txn_len: cfg.jute_max_buffer.max(1 << 20) + 1024,
        trust_empty_snapshot: truthy("zookeeper.snapshot.trust.empty"),
        truncate_corrupt_log: truthy("corral.truncateCorruptLog"),
    };
    info!(
        "data in {} (txn logs in {}), forceSync={}, snapCount={}",
        opts.data_dir.display(),
        opts.data_log_dir.display(),
        if opts.force_sync { "yes" } else { "no" },
        cfg.snap_count
    );
    // MIT Kerberos takes its configuration and keytab from the environment: set it while
    // this is still the only thread.
    for (k, v) in corral_server::kerberos::environment(&cfg).map_err(|e| anyhow::anyhow!(e))? {
        std::env::set_var(k, v);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = Server::bind(cfg, opts).await?;
        info!("ready in {} ms", started.elapsed().as_millis());
        server.run(shutdown_signal()).await?;
        info!("stopped");
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
    }
}
