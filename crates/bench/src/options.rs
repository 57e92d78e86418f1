//! The options of `corral bench` (clap) and their checked, defaulted form.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::BenchError;
use crate::limits::*;
use crate::workload::Op;

/// `corral bench`: drive a ZooKeeper-protocol server (corral or ZooKeeper) with load and report
/// throughput and latency percentiles.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Servers, HOST:PORT[,HOST:PORT...]; sessions are spread over them round-robin.
    #[arg(long, default_value = "127.0.0.1:2181", value_delimiter = ',')]
    pub server: Vec<String>,
    /// Operation to measure [default: get, or watch when --watchers is given].
    #[arg(long, value_enum)]
    pub op: Option<Op>,
    /// Share of reads (getData) in --op mixed; the rest are setData.
    #[arg(long, default_value_t = 90, value_name = "N")]
    pub read_percent: u32,
    /// Watch fan-out: N sessions watch one node that one writer sets [default with --op
    /// watch: 10].
    #[arg(long, value_name = "N")]
    pub watchers: Option<u32>,
    /// Sessions issuing requests (not for --op watch).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub sessions: u32,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub window: u32,
    /// Bytes of each value written.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub value_bytes: u32,
    /// Key space of set/get/exists/children/mixed, created before the run and not measured
    /// [default: the smaller of --count and 10000].
    #[arg(long, value_name = "N")]
    pub keys: Option<u64>,
    /// Requests to issue (for --op watch: writes) [default: 10000 unless --duration].
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Issue requests for this long instead of a count.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Node under which everything is created [default: /corral-bench-<pid>-<unix time>].
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,
    /// Delete what the run created afterwards (bounded: 120 s).
    #[arg(long)]
    pub cleanup: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Session timeout asked for; pings go out after a third of the negotiated one.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub session_timeout_ms: u32,
    /// Hard limit for the measured phase [default: 300 with --count, the duration + 30
    /// with --duration].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

/// Checked options with every default resolved.
#[derive(Debug, Clone)]
pub struct Options {
    pub servers: Vec<String>,
    pub op: Op,
    pub read_percent: u32,
    pub watchers: u32,
    pub sessions: u32,
    pub window: u32,
    pub value_bytes: u32,
    pub keys: u64,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub prefix: String,
    pub cleanup: bool,
    pub json: bool,
    pub quiet: bool,
    pub session_timeout_ms: u32,
    pub timeout: Duration,
}

fn usage(msg: impl Into<String>) -> BenchError {
    BenchError::Usage(msg.into())
}

fn secs(name: &str, v: f64) -> Result<Duration, BenchError> {
    if !(v > 0.0 && v <= 7.0 * 86_400.0) {
        return Err(usage(format!("--{name} must be in (0, 604800] seconds")));
    }
    Ok(Duration::from_secs_f64(v))
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, BenchError> {
    if v < lo || v > hi {
        return Err(usage(format!(
            "--{name} must be between {lo} and {hi}, not {v}"
        )));
    }
    Ok(v)
}

impl Options {
    pub fn from_args(a: BenchArgs) -> Result<Options, BenchError> {
        let op = match (a.op, a.watchers) {
            (None, Some(_)) | (Some(Op::Watch), _) => Op::Watch,
            (Some(op), None) => op,
            (None, None) => Op::Get,
            (Some(op), Some(_)) => {
                return Err(usage(format!(
                    "--watchers goes with --op watch, not --op {}",
                    op.name()
                )))
            }
        };
        let servers: Vec<String> = a
            .server
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(usage("--server needs at least one HOST:PORT"));
        }
        if let Some(bad) = servers.iter().find(|s| !s.contains(':')) {
            return Err(usage(format!("--server {bad}: expected HOST:PORT")));
        }
        let duration = a.duration.map(|d| secs("duration", d)).transpose()?;
        let count = match (a.count, duration) {
            (Some(c), _) => Some(in_range("count", c, 1, u64::MAX / 2)?),
            (None, Some(_)) => None,
            (None, None) => Some(10_000),
        };
        let keys = match a.keys {
            Some(k) => in_range("keys", k, 1, KEYS_MAX)?,
            None => count.unwrap_or(KEYS_DEFAULT).min(KEYS_DEFAULT),
        };
        let timeout = match (a.timeout, duration) {
            (Some(t), _) => secs("timeout", t)?,
            (None, Some(d)) => d + DRAIN_GRACE,
            (None, None) => RUN_TIMEOUT_DEFAULT,
        };
        let prefix = match a.prefix {
            Some(p) => p,
            None => {
                let unix = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                format!("/corral-bench-{}-{unix}", std::process::id())
            }
        };
        if !prefix.starts_with('/')
            || prefix.ends_with('/')
            || prefix.contains("//")
            || prefix.contains('\0')
        {
            return Err(usage(format!(
                "--prefix {prefix}: expected an absolute path like /bench, not ending in /"
            )));
        }
        Ok(Options {
            servers,
            op,
            read_percent: in_range("read-percent", a.read_percent, 0, 100)?,
            watchers: in_range("watchers", a.watchers.unwrap_or(10), 1, SESSIONS_MAX)?,
            sessions: in_range("sessions", a.sessions, 1, SESSIONS_MAX)?,
            window: in_range("window", a.window, 1, WINDOW_MAX)?,
            value_bytes: in_range("value-bytes", a.value_bytes, 0, VALUE_BYTES_MAX)?,
            keys,
            count,
            duration,
            prefix,
            cleanup: a.cleanup,
            json: a.json,
            quiet: a.quiet,
            session_timeout_ms: in_range(
                "session-timeout-ms",
                a.session_timeout_ms,
                100,
                3_600_000,
            )?,
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<Options, BenchError> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map_err(|e| usage(e.to_string()))?;
        Options::from_args(cli.args)
    }

    #[test]
    fn defaults_follow_zkbench() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.op, Op::Get);
        assert_eq!(o.servers, vec!["127.0.0.1:2181"]);
        assert_eq!(
            (o.count, o.keys, o.sessions, o.window, o.value_bytes),
            (Some(10_000), 10_000, 8, 64, 100)
        );
        assert!(o.prefix.starts_with("/corral-bench-"));
        assert_eq!(o.timeout, RUN_TIMEOUT_DEFAULT);
        let o = parse(&["--count", "300"]).unwrap();
        assert_eq!(o.keys, 300, "keys default to the count when smaller");
        let o = parse(&["--duration", "2.5"]).unwrap();
        assert_eq!((o.count, o.keys), (None, 10_000));
        assert_eq!(o.timeout, Duration::from_millis(2500) + DRAIN_GRACE);
    }

    #[test]
    fn watchers_imply_the_watch_op() {
        assert_eq!(parse(&["--watchers", "5"]).unwrap().op, Op::Watch);
        let o = parse(&["--op", "watch"]).unwrap();
        assert_eq!((o.op, o.watchers), (Op::Watch, 10));
        assert!(parse(&["--op", "get", "--watchers", "5"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["--window", "0"][..],
            &["--sessions", "0"],
            &["--read-percent", "101"],
            &["--count", "0"],
            &["--count", "5", "--duration", "1"],
            &["--duration", "0"],
            &["--prefix", "rel"],
            &["--prefix", "/a/"],
            &["--server", "nohost"],
            &["--value-bytes", "2000000"],
            &["--op", "nope"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        let o = parse(&[
            "--server",
            "a:1,b:2",
            "--op",
            "mixed",
            "--read-percent",
            "50",
        ])
        .unwrap();
        assert_eq!(o.servers, vec!["a:1", "b:2"]);
        assert_eq!((o.op, o.read_percent), (Op::Mixed, 50));
    }
}
