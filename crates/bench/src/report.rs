//! The summary of a run: one line in zkbench's `key=value` form, or one JSON object with the
//! same fields plus the run's parameters.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Everything a run reports. Latencies are microseconds from queueing a request to reading its
/// reply (for `watch`: from the writer reading its reply to a watcher reading its notification).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub op: String,
    /// Latency samples: completed requests (for `watch`: notifications, writes x watchers).
    pub count: u64,
    pub sessions: u32,
    pub window: u32,
    pub bytes: u32,
    pub ops_per_s: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: u64,
    /// Requests that failed: an error reply, or no reply (connection lost, deadline).
    pub errors: u64,
    /// Failures by ZooKeeper error code (-4 connection loss, -101 no node, ...).
    pub errors_by_code: BTreeMap<i32, u64>,
    pub reads: u64,
    pub writes: u64,
    /// The measured phase, from the first request to the last reply.
    pub elapsed_s: f64,
    /// Creating the prefix and the keys, before the measured phase.
    pub setup_s: f64,
    pub servers: Vec<String>,
    pub prefix: String,
    pub keys: u64,
    pub read_percent: Option<u32>,
    pub watchers: Option<u32>,
    /// For `watch`: notifications read before the writer read its reply (recorded as 0).
    pub notified_before_reply: Option<u64>,
    /// For `watch`: each notification timed from sending the write instead.
    pub from_write_p50_us: Option<u64>,
    pub from_write_p99_us: Option<u64>,
    pub from_write_max_us: Option<u64>,
    pub requested_count: Option<u64>,
    pub duration_s: Option<f64>,
    /// Nodes deleted by `--cleanup` (None without it).
    pub cleaned: Option<u64>,
}

impl Report {
    /// `op=get count=… sessions=… window=… bytes=… ops_per_s=… p50_us=… p90_us=… p99_us=…
    /// p999_us=… max_us=… errors=…`, as zkbench prints (with `sessions` for its `clients`).
    pub fn line(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "op={} count={} sessions={} window={} bytes={} ops_per_s={:.0} p50_us={} p90_us={} \
             p99_us={} p999_us={} max_us={} errors={}",
            self.op,
            self.count,
            self.sessions,
            self.window,
            self.bytes,
            self.ops_per_s,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.errors
        );
        if let Some(w) = self.watchers {
            let _ = write!(s, " watchers={w}");
        }
        if let (Some(p50), Some(p99), Some(max)) = (
            self.from_write_p50_us,
            self.from_write_p99_us,
            self.from_write_max_us,
        ) {
            let _ = write!(
                s,
                " from_write_p50_us={p50} from_write_p99_us={p99} from_write_max_us={max}"
            );
        }
        if let Some(p) = self.read_percent {
            let _ = write!(s, " read_percent={p}");
        }
        s
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a report of numbers and strings always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            op: "get".into(),
            count: 300,
            sessions: 4,
            window: 8,
            bytes: 100,
            ops_per_s: 1234.4,
            p50_us: 1,
            p90_us: 2,
            p99_us: 3,
            p999_us: 4,
            max_us: 5,
            mean_us: 2,
            errors: 0,
            errors_by_code: BTreeMap::new(),
            reads: 300,
            writes: 0,
            elapsed_s: 0.25,
            setup_s: 0.1,
            servers: vec!["127.0.0.1:2181".into()],
            prefix: "/b".into(),
            keys: 300,
            read_percent: None,
            watchers: None,
            notified_before_reply: None,
            from_write_p50_us: None,
            from_write_p99_us: None,
            from_write_max_us: None,
            requested_count: Some(300),
            duration_s: None,
            cleaned: None,
        }
    }

    #[test]
    fn line_has_zkbench_fields_in_order() {
        assert_eq!(
            report().line(),
            "op=get count=300 sessions=4 window=8 bytes=100 ops_per_s=1234 p50_us=1 p90_us=2 \
             p99_us=3 p999_us=4 max_us=5 errors=0"
        );
    }

    #[test]
    fn json_round_trips_with_error_codes() {
        let mut r = report();
        r.errors = 2;
        r.errors_by_code.insert(-110, 2);
        let text = r.json();
        assert!(text.contains(r#""errors_by_code":{"-110":2}"#), "{text}");
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), r);
    }
}
