//! ZooKeeper 3.8's server metrics (its `ServerMetrics` catalogue): the counters and summaries
//! `mntr` prints, the AdminServer's `monitor` returns and the Prometheus endpoint exports, under
//! ZooKeeper's names. The node task owns one [`Metrics`] and records into it; nothing here is
//! shared between threads.
//!
//! Two providers, as in ZooKeeper (`metricsProvider.className`):
//! - the default one: `srst` resets every counter and summary; summaries print
//!   `avg_/min_/max_/cnt_/sum_` keys, the detailed ones also `p50_/p95_/p99_/p999_`;
//! - Prometheus: nothing resets (ZooKeeper's provider does not support it), summaries carry the
//!   quantiles ZooKeeper's exporter gives them (0.5 for the basic ones, 0.5/0.9/0.99 for the
//!   detailed ones) over a sliding ten-minute window (five two-minute buckets, as the Prometheus
//!   Java client's default), `_count` and `_sum` since start-up.
//!
//! Summaries whose stage corral does not have (ZooKeeper's request-processor queues, the JVM's
//! pauses, Netty's buffers) are exported and never observed: their count stays 0. The list of
//! which metric corral records where is in docs/operations.md.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

macro_rules! metric_table {
    ($ty:ident, $names:ident; $($id:ident = $name:literal,)*) => {
        /// One of ZooKeeper's metrics, by its position in the table. The table is ZooKeeper's
        /// whole catalogue, so some are never recorded (see the module's documentation).
        #[allow(dead_code)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub(crate) enum $ty { $($id,)* }
        /// Their names, in the order ZooKeeper 3.8's `mntr` prints them.
        pub(crate) const $names: &[&str] = &[$($name,)*];
    };
}

metric_table! { Counter, COUNTER_NAMES;
    ProposalCount = "proposal_count",
    WatchBytes = "watch_bytes",
    OutstandingChangesRemoved = "outstanding_changes_removed",
    ThrottledOps = "throttled_ops",
    StaleRequestsDropped = "stale_requests_dropped",
    LargeRequestsRejected = "large_requests_rejected",
    InsecureAdminCount = "insecure_admin_count",
    ConnectionRejected = "connection_rejected",
    CnxnClosedWithoutZkServerRunning = "cnxn_closed_without_zk_server_running",
    SessionlessConnectionsExpired = "sessionless_connections_expired",
    LookingCount = "looking_count",
    DeadWatchersQueued = "dead_watchers_queued",
    StaleRequests = "stale_requests",
    ConnectionDropCount = "connection_drop_count",
    LearnerProposalReceivedCount = "learner_proposal_received_count",
    DigestMismatchesCount = "digest_mismatches_count",
    DeadWatchersCleared = "dead_watchers_cleared",
    ResponsePacketCacheHits = "response_packet_cache_hits",
    BytesReceivedCount = "bytes_received_count",
    AddDeadWatcherStallTime = "add_dead_watcher_stall_time",
    RequestThrottleWaitCount = "request_throttle_wait_count",
    RequestsNotForwardedToCommitProcessor = "requests_not_forwarded_to_commit_processor",
    ResponsePacketCacheMisses = "response_packet_cache_misses",
    EnsembleAuthSuccess = "ensemble_auth_success",
    PrepProcessorRequestQueued = "prep_processor_request_queued",
    LearnerCommitReceivedCount = "learner_commit_received_count",
    StaleReplies = "stale_replies",
    ConnectionRequestCount = "connection_request_count",
    ResponseBytes = "response_bytes",
    EnsembleAuthFail = "ensemble_auth_fail",
    DiffCount = "diff_count",
    ResponsePacketGetChildrenCacheMisses = "response_packet_get_children_cache_misses",
    ConnectionRevalidateCount = "connection_revalidate_count",
    QuitLeadingDueToDisloyalVoter = "quit_leading_due_to_disloyal_voter",
    SnapCount = "snap_count",
    UnrecoverableErrorCount = "unrecoverable_error_count",
    UnsuccessfulHandshake = "unsuccessful_handshake",
    CommitCount = "commit_count",
    StaleSessionsExpired = "stale_sessions_expired",
    ResponsePacketGetChildrenCacheHits = "response_packet_get_children_cache_hits",
    SyncProcessorRequestQueued = "sync_processor_request_queued",
    OutstandingChangesQueued = "outstanding_changes_queued",
    RequestCommitQueued = "request_commit_queued",
    EnsembleAuthSkip = "ensemble_auth_skip",
    SkipLearnerRequestToNextProcessorCount = "skip_learner_request_to_next_processor_count",
    TlsHandshakeExceeded = "tls_handshake_exceeded",
    RevalidateCount = "revalidate_count",
}
metric_table! { Summary, SUMMARY_NAMES;
    SocketClosingTime = "socket_closing_time",
    ProposalProcessTime = "proposal_process_time",
    LeaderUnavailableTime = "leader_unavailable_time",
    NodeCreatedWatchCount = "node_created_watch_count",
    SessionQueuesDrained = "session_queues_drained",
    WriteCommitProcReqQueued = "write_commit_proc_req_queued",
    ConnectionTokenDeficit = "connection_token_deficit",
    ReadCommitProcReqQueued = "read_commit_proc_req_queued",
    NodeDeletedWatchCount = "node_deleted_watch_count",
    StartupTxnsLoadTime = "startup_txns_load_time",
    SyncProcessorQueueSize = "sync_processor_queue_size",
    FollowerSyncTime = "follower_sync_time",
    PrepProcessorQueueSize = "prep_processor_queue_size",
    Fsynctime = "fsynctime",
    InflightSnapCount = "inflight_snap_count",
    ReadsIssuedFromSessionQueue = "reads_issued_from_session_queue",
    LearnerRequestProcessorQueueSize = "learner_request_processor_queue_size",
    Snapshottime = "snapshottime",
    UnavailableTime = "unavailable_time",
    StartupTxnsLoaded = "startup_txns_loaded",
    ReadsAfterWriteInSessionQueue = "reads_after_write_in_session_queue",
    RequestsInSessionQueue = "requests_in_session_queue",
    WriteCommitProcIssued = "write_commit_proc_issued",
    PrepProcessTime = "prep_process_time",
    PendingSessionQueueSize = "pending_session_queue_size",
    TimeWaitingEmptyPoolInCommitProcessorReadMs = "time_waiting_empty_pool_in_commit_processor_read_ms",
    CommitProcessTime = "commit_process_time",
    Dbinittime = "dbinittime",
    InflightDiffCount = "inflight_diff_count",
    NettyQueuedBufferCapacity = "netty_queued_buffer_capacity",
    ElectionTime = "election_time",
    CommitCommitProcReqQueued = "commit_commit_proc_req_queued",
    SyncProcessorBatchSize = "sync_processor_batch_size",
    NodeChildrenWatchCount = "node_children_watch_count",
    WriteBatchTimeInCommitProcessor = "write_batch_time_in_commit_processor",
    ReadCommitProcIssued = "read_commit_proc_issued",
    ConcurrentRequestProcessingInCommitProcessor = "concurrent_request_processing_in_commit_processor",
    ObserverSyncTime = "observer_sync_time",
    NodeChangedWatchCount = "node_changed_watch_count",
    SyncProcessTime = "sync_process_time",
    StartupSnapLoadTime = "startup_snap_load_time",
    PrepProcessorQueueTimeMs = "prep_processor_queue_time_ms",
    JvmPauseTimeMs = "jvm_pause_time_ms",
    CloseSessionPrepTime = "close_session_prep_time",
    ReadCommitprocTimeMs = "read_commitproc_time_ms",
    Updatelatency = "updatelatency",
    LocalWriteCommittedTimeMs = "local_write_committed_time_ms",
    RequestThrottleQueueTimeMs = "request_throttle_queue_time_ms",
    Readlatency = "readlatency",
    QuorumAckLatency = "quorum_ack_latency",
    OmCommitProcessTimeMs = "om_commit_process_time_ms",
    ReadFinalProcTimeMs = "read_final_proc_time_ms",
    CommitPropagationLatency = "commit_propagation_latency",
    DeadWatchersCleanerLatency = "dead_watchers_cleaner_latency",
    WriteFinalProcTimeMs = "write_final_proc_time_ms",
    ProposalAckCreationLatency = "proposal_ack_creation_latency",
    ProposalLatency = "proposal_latency",
    OmProposalProcessTimeMs = "om_proposal_process_time_ms",
    SyncProcessorQueueAndFlushTimeMs = "sync_processor_queue_and_flush_time_ms",
    PropagationLatency = "propagation_latency",
    ServerWriteCommittedTimeMs = "server_write_committed_time_ms",
    SyncProcessorQueueTimeMs = "sync_processor_queue_time_ms",
    SyncProcessorQueueFlushTimeMs = "sync_processor_queue_flush_time_ms",
    WriteCommitprocTimeMs = "write_commitproc_time_ms",
}

/// Summaries from this one on are ZooKeeper's detailed (`ADVANCED`) ones: they also have
/// percentiles.
const FIRST_ADVANCED: usize = Summary::PrepProcessorQueueTimeMs as usize;

impl Summary {
    fn advanced(self) -> bool {
        self as usize >= FIRST_ADVANCED
    }
}

/// Which of ZooKeeper's metrics providers the configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Provider {
    /// `org.apache.zookeeper.metrics.impl.DefaultMetricsProvider`.
    #[default]
    Default,
    /// `org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider`.
    Prometheus,
}

/// The Prometheus Java client's default window for summary quantiles.
const WINDOW: Duration = Duration::from_secs(600);
const WINDOW_BUCKETS: u32 = 5;

/// Quantiles the Prometheus exporter gives each summary.
const BASIC_QUANTILES: &[f64] = &[0.5];
const ADVANCED_QUANTILES: &[f64] = &[0.5, 0.9, 0.99];

fn histogram() -> Histogram<u64> {
    // Two significant digits: within 1% of the true quantile, a few KiB per histogram.
    Histogram::new(2).expect("two significant digits is a valid precision")
}

/// One summary's observations.
#[derive(Debug)]
struct Stat {
    count: u64,
    sum: i64,
    min: i64,
    max: i64,
    /// Percentiles: one histogram since the last reset (default provider), or the buckets of
    /// the sliding window, newest last (Prometheus). Empty until something is observed.
    recent: VecDeque<(Instant, Histogram<u64>)>,
}

impl Stat {
    fn new() -> Stat {
        Stat {
            count: 0,
            sum: 0,
            min: i64::MAX,
            max: i64::MIN,
            recent: VecDeque::new(),
        }
    }

    fn add(&mut self, value: i64, keep_percentiles: bool, windowed: bool, now: Instant) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if !keep_percentiles {
            return;
        }
        let bucket = WINDOW / WINDOW_BUCKETS;
        let fresh = match self.recent.back() {
            None => true,
            Some((since, _)) => windowed && now.duration_since(*since) >= bucket,
        };
        if fresh {
            self.recent.push_back((now, histogram()));
        }
        if windowed {
            while self
                .recent
                .front()
                .is_some_and(|(since, _)| now.duration_since(*since) >= WINDOW)
            {
                self.recent.pop_front();
            }
        }
        if let Some((_, h)) = self.recent.back_mut() {
            h.saturating_record(value.max(0) as u64);
        }
    }

    /// The values at quantiles `qs` over what is kept (the window's buckets merged once);
    /// None when nothing is.
    fn quantiles(&self, qs: &[f64], now: Instant, windowed: bool) -> Option<Vec<f64>> {
        let mut merged = histogram();
        let mut any = false;
        for (since, h) in &self.recent {
            if windowed && now.duration_since(*since) >= WINDOW {
                continue;
            }
            let _ = merged.add(h);
            any |= !h.is_empty();
        }
        any.then(|| {
            qs.iter()
                .map(|q| merged.value_at_quantile(*q) as f64)
                .collect()
        })
    }

    /// ZooKeeper's average: rounded half-up to four decimals, 0 when empty.
    fn avg(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let avg = self.sum as f64 / self.count as f64;
        (avg * 10_000.0).round() / 10_000.0
    }

    fn min(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    fn max(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            self.max
        }
    }
}

/// A value as `mntr` prints it and JSON carries it: Java longs print as integers, doubles with
/// at least one decimal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Long(i64),
    Double(f64),
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Long(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{}", java_double(*v)),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// A double as Java's `Double.toString` prints the values seen here (`0.0`, `1.5`, `NaN`).
pub(crate) fn java_double(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if v != 0.0 && (v.abs() >= 1e7 || v.abs() < 1e-3) {
        // Java switches to computerized scientific notation outside [1e-3, 1e7).
        let sci = format!("{v:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    } else if v == v.trunc() {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The server's metrics, recorded by the node task.
#[derive(Debug)]
pub(crate) struct Metrics {
    provider: Provider,
    counters: Vec<u64>,
    summaries: Vec<Stat>,
    /// Summary sets (ZooKeeper's `getSummarySet`, basic): (set name, key) → observations.
    sets: std::collections::BTreeMap<(&'static str, String), Stat>,
    /// Counter sets (`getCounterSet`): (set name, key) → count.
    counter_sets: std::collections::BTreeMap<(&'static str, String), u64>,
    /// corral's own summaries, on the Prometheus endpoint only (`corral_` names; `mntr` keeps
    /// ZooKeeper's keys): (family, `op` label) → observations.
    own: std::collections::BTreeMap<(&'static str, &'static str), Stat>,
}

/// corral's own metrics (Prometheus only).
pub(crate) mod own {
    /// Each txn log fsync, in ms.
    pub const FSYNC_MS: &str = "corral_fsync_ms";
    /// Txns made durable by each fsync.
    pub const FSYNC_BATCH_TXNS: &str = "corral_fsync_batch_txns";
    /// Each snapshot written, in ms.
    pub const SNAPSHOT_WRITE_MS: &str = "corral_snapshot_write_ms";
    /// Each request, from its arrival to its reply, in ms, by operation (`op` label).
    pub const REQUEST_LATENCY_MS: &str = "corral_request_latency_ms";
}

impl Metrics {
    pub(crate) fn new(provider: Provider) -> Metrics {
        Metrics {
            provider,
            counters: vec![0; COUNTER_NAMES.len()],
            summaries: (0..SUMMARY_NAMES.len()).map(|_| Stat::new()).collect(),
            sets: Default::default(),
            counter_sets: Default::default(),
            own: Default::default(),
        }
    }

    pub(crate) fn provider(&self) -> Provider {
        self.provider
    }

    pub(crate) fn add(&mut self, c: Counter, n: u64) {
        self.counters[c as usize] += n;
    }

    pub(crate) fn observe(&mut self, s: Summary, value: i64) {
        let windowed = self.provider == Provider::Prometheus;
        // Percentiles are kept for the detailed summaries, and for every summary when
        // Prometheus wants their median.
        let keep = s.advanced() || windowed;
        self.summaries[s as usize].add(value, keep, windowed, Instant::now());
    }

    /// One observation for `key` in the summary set `set` (`read_per_namespace`,
    /// `write_per_namespace`).
    pub(crate) fn observe_set(&mut self, set: &'static str, key: &str, value: i64) {
        let windowed = self.provider == Provider::Prometheus;
        let keep = windowed || set_is_advanced(set);
        self.sets
            .entry((set, key.to_string()))
            .or_insert_with(Stat::new)
            .add(value, keep, windowed, Instant::now());
    }

    /// One observation for one of corral's own summaries (`op`: the operation, or "").
    pub(crate) fn observe_own(&mut self, family: &'static str, op: &'static str, value: i64) {
        self.own.entry((family, op)).or_insert_with(Stat::new).add(
            value,
            true,
            true,
            Instant::now(),
        );
    }

    /// `n` more for `key` in the counter set `set` (`quota_exceeded_error_per_namespace`).
    pub(crate) fn add_to_set(&mut self, set: &'static str, key: &str, n: u64) {
        *self.counter_sets.entry((set, key.to_string())).or_default() += n;
    }

    /// `srst`: ZooKeeper's default provider resets every counter and summary; its Prometheus
    /// provider resets nothing.
    pub(crate) fn reset(&mut self) {
        if self.provider == Provider::Prometheus {
            return;
        }
        self.counters.iter_mut().for_each(|c| *c = 0);
        self.summaries.iter_mut().for_each(|s| *s = Stat::new());
        // The sets keep their keys, zeroed, as ZooKeeper's do.
        self.sets.values_mut().for_each(|s| *s = Stat::new());
        self.counter_sets.values_mut().for_each(|c| *c = 0);
    }

    /// The default provider's rows for `mntr` (without the `zk_` prefix): counters, then
    /// summaries, as ZooKeeper's default provider dumps them.
    pub(crate) fn rows(&self) -> Vec<(String, Value)> {
        let mut rows: Vec<(String, Value)> = COUNTER_NAMES
            .iter()
            .zip(&self.counters)
            .map(|(n, v)| (n.to_string(), Value::Long(*v as i64)))
            .collect();
        for ((set, key), v) in &self.counter_sets {
            rows.push((format!("{key}_{set}"), Value::Long(*v as i64)));
        }
        let now = Instant::now();
        for (i, (name, stat)) in SUMMARY_NAMES.iter().zip(&self.summaries).enumerate() {
            let advanced = i >= FIRST_ADVANCED;
            summary_rows(&mut rows, name, stat, advanced, now);
        }
        for ((set, key), stat) in &self.sets {
            let advanced = set_is_advanced(set);
            summary_rows(&mut rows, &format!("{key}_{set}"), stat, advanced, now);
        }
        rows
    }

    /// The metric families the Prometheus endpoint exports for the counters and summaries
    /// (gauges are added by the caller, who computes them).
    pub(crate) fn families(&self) -> Vec<prometheus::proto::MetricFamily> {
        use prometheus::proto::MetricType;
        let now = Instant::now();
        let mut out = Vec::new();
        for (name, v) in COUNTER_NAMES.iter().zip(&self.counters) {
            out.push(family(name, MetricType::COUNTER, vec![counter(*v as f64)]));
        }
        let mut counter_sets: std::collections::BTreeMap<&str, Vec<prometheus::proto::Metric>> =
            Default::default();
        for ((set, key), v) in &self.counter_sets {
            let mut m = counter(*v as f64);
            m.set_label(key_label(Some(key)));
            counter_sets.entry(set).or_default().push(m);
        }
        for (set, metrics) in counter_sets {
            out.push(family(set, MetricType::COUNTER, metrics));
        }
        for (i, (name, stat)) in SUMMARY_NAMES.iter().zip(&self.summaries).enumerate() {
            let qs = if i >= FIRST_ADVANCED {
                ADVANCED_QUANTILES
            } else {
                BASIC_QUANTILES
            };
            out.push(family(
                name,
                MetricType::SUMMARY,
                vec![summary(stat, qs, now)],
            ));
        }
        let mut sets: std::collections::BTreeMap<&str, Vec<prometheus::proto::Metric>> =
            Default::default();
        for ((set, key), stat) in &self.sets {
            let qs = if set_is_advanced(set) {
                ADVANCED_QUANTILES
            } else {
                BASIC_QUANTILES
            };
            let mut m = summary(stat, qs, now);
            m.set_label(key_label(Some(key)));
            sets.entry(set).or_default().push(m);
        }
        for (set, metrics) in sets {
            out.push(family(set, MetricType::SUMMARY, metrics));
        }
        let mut own: std::collections::BTreeMap<&str, Vec<prometheus::proto::Metric>> =
            Default::default();
        for ((name, op), stat) in &self.own {
            let mut m = summary(stat, ADVANCED_QUANTILES, now);
            if !op.is_empty() {
                let mut l = prometheus::proto::LabelPair::default();
                l.set_name("op".to_string());
                l.set_value(op.to_string());
                m.set_label(vec![l]);
            }
            own.entry(name).or_default().push(m);
        }
        for (name, metrics) in own {
            let mut f = family(name, MetricType::SUMMARY, metrics);
            f.set_help(own_help(name).to_string());
            out.push(f);
        }
        out
    }
}

/// The summary sets ZooKeeper registers as detailed (with percentiles).
fn set_is_advanced(set: &str) -> bool {
    set == "learner_handler_qp_time_ms"
}

fn own_help(name: &str) -> &'static str {
    match name {
        own::FSYNC_MS => "corral: each txn log fsync, in milliseconds",
        own::FSYNC_BATCH_TXNS => "corral: txns made durable by each fsync",
        own::SNAPSHOT_WRITE_MS => "corral: each snapshot written, in milliseconds",
        own::REQUEST_LATENCY_MS => {
            "corral: request latency from arrival to reply, in milliseconds, by operation"
        }
        _ => "corral",
    }
}

fn summary_rows(
    rows: &mut Vec<(String, Value)>,
    name: &str,
    s: &Stat,
    advanced: bool,
    now: Instant,
) {
    rows.push((format!("avg_{name}"), Value::Double(s.avg())));
    rows.push((format!("min_{name}"), Value::Long(s.min())));
    rows.push((format!("max_{name}"), Value::Long(s.max())));
    rows.push((format!("cnt_{name}"), Value::Long(s.count as i64)));
    rows.push((format!("sum_{name}"), Value::Long(s.sum)));
    if advanced {
        let values = s.quantiles(&[0.5, 0.95, 0.99, 0.999], now, false);
        for (i, label) in ["p50", "p95", "p99", "p999"].into_iter().enumerate() {
            let v = values.as_ref().map_or(0.0, |v| v[i]).round() as i64;
            rows.push((format!("{label}_{name}"), Value::Long(v)));
        }
    }
}

/// A metric family as ZooKeeper's exporter registers it: the help text is the name.
pub(crate) fn family(
    name: &str,
    kind: prometheus::proto::MetricType,
    metrics: Vec<prometheus::proto::Metric>,
) -> prometheus::proto::MetricFamily {
    let mut f = prometheus::proto::MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(name.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn key_label(key: Option<&String>) -> Vec<prometheus::proto::LabelPair> {
    key.map(|k| {
        let mut l = prometheus::proto::LabelPair::default();
        l.set_name("key".to_string());
        l.set_value(k.clone());
        l
    })
    .into_iter()
    .collect()
}

fn counter(v: f64) -> prometheus::proto::Metric {
    let mut c = prometheus::proto::Counter::default();
    c.set_value(v);
    let mut m = prometheus::proto::Metric::default();
    m.set_counter(c);
    m
}

/// A gauge sample.
pub(crate) fn gauge(v: f64, key: Option<&String>) -> prometheus::proto::Metric {
    let mut g = prometheus::proto::Gauge::default();
    g.set_value(v);
    let mut m = prometheus::proto::Metric::from_label(key_label(key));
    m.set_gauge(g);
    m
}

fn summary(s: &Stat, qs: &[f64], now: Instant) -> prometheus::proto::Metric {
    let mut sum = prometheus::proto::Summary::default();
    sum.set_sample_count(s.count);
    sum.set_sample_sum(s.sum as f64);
    let values = s.quantiles(qs, now, true);
    sum.set_quantile(
        qs.iter()
            .enumerate()
            .map(|(i, q)| {
                let mut quantile = prometheus::proto::Quantile::default();
                quantile.set_quantile(*q);
                quantile.set_value(values.as_ref().map_or(f64::NAN, |v| v[i]));
                quantile
            })
            .collect(),
    );
    let mut m = prometheus::proto::Metric::default();
    m.set_summary(sum);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rows_of(m: &Metrics) -> BTreeMap<String, String> {
        m.rows()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect()
    }

    #[test]
    fn default_provider_prints_zookeepers_summary_keys_and_resets() {
        let mut m = Metrics::new(Provider::Default);
        m.observe(Summary::Fsynctime, 3);
        m.observe(Summary::Fsynctime, 4);
        m.observe(Summary::Readlatency, 10);
        m.add(Counter::CommitCount, 2);
        let rows = rows_of(&m);
        assert_eq!(rows["avg_fsynctime"], "3.5");
        assert_eq!(rows["min_fsynctime"], "3");
        assert_eq!(rows["max_fsynctime"], "4");
        assert_eq!(rows["cnt_fsynctime"], "2");
        assert_eq!(rows["sum_fsynctime"], "7");
        assert!(
            !rows.contains_key("p50_fsynctime"),
            "a basic summary has no percentiles"
        );
        assert_eq!(rows["p99_readlatency"], "10");
        assert_eq!(rows["commit_count"], "2");
        assert_eq!(rows["avg_snapshottime"], "0.0");
        m.reset();
        let rows = rows_of(&m);
        assert_eq!(rows["cnt_fsynctime"], "0");
        assert_eq!(rows["p99_readlatency"], "0");
        assert_eq!(rows["commit_count"], "0");
    }

    #[test]
    fn prometheus_provider_never_resets_and_exports_zookeepers_quantiles() {
        let mut m = Metrics::new(Provider::Prometheus);
        for v in 1..=100 {
            m.observe(Summary::Readlatency, v);
        }
        m.observe(Summary::Fsynctime, 7);
        m.reset();
        let fams = m.families();
        let read = fams.iter().find(|f| f.name() == "readlatency").unwrap();
        let s = read.get_metric()[0].get_summary();
        assert_eq!(s.sample_count(), 100);
        assert_eq!(s.sample_sum(), 5050.0);
        let qs: Vec<(f64, f64)> = s
            .get_quantile()
            .iter()
            .map(|q| (q.quantile(), q.value()))
            .collect();
        assert_eq!(qs.len(), 3);
        assert_eq!(qs[0], (0.5, 50.0));
        assert_eq!(qs[2], (0.99, 99.0));
        let fsync = fams.iter().find(|f| f.name() == "fsynctime").unwrap();
        let q = fsync.get_metric()[0].get_summary().get_quantile();
        assert_eq!(q.len(), 1, "a basic summary exports the median only");
        assert_eq!(q[0].value(), 7.0);
        let idle = fams.iter().find(|f| f.name() == "snapshottime").unwrap();
        assert!(idle.get_metric()[0].get_summary().get_quantile()[0]
            .value()
            .is_nan());
    }

    #[test]
    fn window_forgets_old_buckets() {
        let mut s = Stat::new();
        let t0 = Instant::now();
        s.add(1000, true, true, t0);
        let later = t0 + WINDOW + Duration::from_secs(1);
        s.add(1, true, true, later);
        assert_eq!(s.quantiles(&[0.99], later, true), Some(vec![1.0]));
        assert_eq!(s.count, 2);
    }

    #[test]
    fn java_doubles() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.5), "2.5");
        assert_eq!(java_double(f64::NAN), "NaN");
        assert_eq!(java_double(158117888.0), "1.58117888E8");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(0.0001), "1.0E-4");
    }
}
