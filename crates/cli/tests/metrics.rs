//! The Prometheus provider checked by a real Prometheus server (Debian's `prometheus`): it
//! scrapes corral's `/metrics` with the scrape config ZooKeeper's monitoring guide gives, and
//! the expressions of the guide's alert rules return corral's series; corral's own `corral_`
//! metrics are there beside ZooKeeper's.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Kills the Prometheus server this test started, by its pid, however the test ends.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The instant-query result of `expr`: (labels, value) per series.
fn query(port: u16, expr: &str) -> Vec<(serde_json::Value, String)> {
    let (status, body) =
        corral_testkit::http_get(port, &format!("/api/v1/query?query={}", encode(expr)));
    assert_eq!(status, 200, "{expr}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{expr}: {body}"))
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn prometheus_scrapes_zookeepers_metrics_and_alert_expressions_work() {
    let test = "prometheus_scrapes_zookeepers_metrics_and_alert_expressions_work";
    if !corral_testkit::require_tool(test, PROMETHEUS, "prometheus") {
        return;
    }
    let metrics_port = corral_testkit::free_port();
    let port_line = format!("metricsProvider.httpPort={metrics_port}");
    let cfg = [
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        "metricsProvider.httpHost=127.0.0.1",
        port_line.as_str(),
    ];
    let mut corral =
        corral_testkit::start_corral(Path::new(env!("CARGO_BIN_EXE_corral")), &cfg, &[])
            .expect("start corral");
    // What a scrape sees directly: ZooKeeper's names, types and quantiles.
    let (status, text) = corral_testkit::http_get(metrics_port, "/metrics");
    assert_eq!(status, 200);
    for line in [
        "# TYPE znode_count gauge",
        "# TYPE commit_count counter",
        "# TYPE fsynctime summary",
        "# TYPE readlatency summary",
        "# HELP readlatency readlatency",
        "# TYPE process_resident_memory_bytes gauge",
        // corral's own, beside ZooKeeper's.
        "# TYPE corral_fsync_ms summary",
        "# TYPE corral_fsync_batch_txns summary",
        "# TYPE corral_request_latency_ms summary",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert!(text.contains("readlatency{quantile=\"0.99\"}"), "{text}");
    assert!(text.contains("fsynctime{quantile=\"0.5\"}"), "{text}");
    // The readiness probe's session was closed: a closeSession request, timed by operation.
    assert!(
        text.contains("corral_request_latency_ms{op=\"closeSession\",quantile=\"0.99\"}"),
        "{text}"
    );
    assert!(
        !text.contains("fsynctime{quantile=\"0.9\"}"),
        "a basic summary has the median only"
    );
    assert_eq!(corral_testkit::http_get(metrics_port, "/other").0, 404);

    // A real Prometheus with the guide's scrape config (a shorter interval).
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("zk.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: test-zk\n    \
             static_configs:\n    - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let web = corral_testkit::free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", cfg_path.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let _prometheus = Started(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = TcpStream::connect(("127.0.0.1", web))
            .ok()
            .map(|_| query(web, "up{job=\"test-zk\"}"));
        if let Some(series) = up {
            if series.iter().any(|(_, v)| v == "1") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped corral: {}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // rate() and increase() need two scrapes.
    std::thread::sleep(Duration::from_millis(2500));
    // The expressions of the alert rules in ZooKeeper's monitoring guide, and a quantile.
    for expr in [
        "znode_count > 0",
        "num_alive_connections >= 0",
        "approximate_data_size / 1024 / 1024 >= 0",
        "watch_count >= 0",
        "increase(election_time_count[5m]) >= 0",
        "open_file_descriptor_count > 0",
        "rate(fsynctime_sum[1m]) >= 0",
        "rate(snapshottime_sum[5m]) >= 0",
        "avg_latency >= 0",
        "readlatency_count >= 0",
        "process_resident_memory_bytes > 0",
        "corral_fsync_ms_count > 0",
    ] {
        let series = query(web, expr);
        assert_eq!(series.len(), 1, "{expr}: {series:?}");
        assert_eq!(series[0].0["job"], "test-zk", "{expr}: {series:?}");
    }
    // The dashboard docs/grafana/zookeeper-corral.json gives: every panel's query is valid
    // PromQL and finds corral's series (the leader's panels, on this standalone server, only
    // need to be valid).
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/grafana/zookeeper-corral.json"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 20, "{} panels", panels.len());
    for p in panels {
        let title = p["title"].as_str().unwrap_or("");
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            let series = query(web, expr);
            if !title.starts_with("Leader:") {
                assert!(!series.is_empty(), "panel {title:?}: {expr} finds nothing");
            }
        }
    }
    let znodes = query(web, "znode_count");
    assert_eq!(
        znodes[0].1, "5",
        "the root (twice), /zookeeper, its quota and config nodes"
    );
    corral.stop();
}
