//! ZooKeeper's Prometheus provider (`metricsProvider.className=…PrometheusMetricsProvider`):
//! `GET /metrics` on `metricsProvider.httpHost:httpPort` (0.0.0.0:7000 by default) in the
//! Prometheus text format, with ZooKeeper 3.8's metric names, types and help texts (the help
//! is the name, as ZooKeeper's exporter registers them), so its documented scrape config,
//! alert rules and the community dashboards work unchanged. With `exportJvmInfo` (on by
//! default) the standard `process_*` metrics stand in for the JVM's. The text is rendered by
//! the `prometheus` crate's encoder from what the node task holds.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::core::Collector;
use prometheus::proto::{MetricFamily, MetricType};
use prometheus::Encoder;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::fourlw::{self, View};
use crate::metrics::{family, gauge, java_double, Value};
use crate::wire::Event;

/// Every family the endpoint exports: ZooKeeper's gauges (computed now), counters and
/// summaries, and the process metrics when asked for.
fn families(st: &View<'_>) -> Vec<MetricFamily> {
    let mut out: Vec<MetricFamily> = fourlw::gauges(st)
        .into_iter()
        .filter_map(|(name, v)| {
            let v = match v {
                Value::Long(n) => n as f64,
                Value::Double(f) => f,
                // ZooKeeper's gauges are numbers; the text ones are mntr's alone.
                Value::Text(_) => return None,
            };
            Some(family(&name, MetricType::GAUGE, vec![gauge(v, None)]))
        })
        .collect();
    out.extend(quota_gauges(st));
    out.extend(st.metrics.families());
    if st.cfg.metrics_export_process_info {
        static PROCESS: OnceLock<prometheus::process_collector::ProcessCollector> = OnceLock::new();
        out.extend(
            PROCESS
                .get_or_init(prometheus::process_collector::ProcessCollector::for_self)
                .collect(),
        );
    }
    out
}

/// ZooKeeper's quota gauge sets, one family each, labelled by namespace.
fn quota_gauges(st: &View<'_>) -> Vec<MetricFamily> {
    let mut by_set: std::collections::BTreeMap<&str, Vec<prometheus::proto::Metric>> =
        Default::default();
    for (set, ns, v) in fourlw::quota_gauges(st) {
        by_set
            .entry(set)
            .or_default()
            .push(gauge(v as f64, Some(&ns)));
    }
    by_set
        .into_iter()
        .map(|(name, m)| family(name, MetricType::GAUGE, m))
        .collect()
}

/// The text exposition format (version 0.0.4), as a scrape gets it.
pub(crate) fn render(st: &mut View<'_>) -> String {
    let mut buf = Vec::new();
    if let Err(e) = prometheus::TextEncoder::new().encode(&families(st), &mut buf) {
        warn!("cannot render the Prometheus metrics: {e}");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// What `mntr` lists with the Prometheus provider: each sample by its name and labels, as
/// ZooKeeper's Prometheus provider dumps them (`fsynctime{quantile="0.5"}`, `fsynctime_count`).
pub(crate) fn samples(st: &View<'_>) -> Vec<(String, Value)> {
    let mut rows = Vec::new();
    for f in families(st) {
        let name = f.name().to_string();
        for m in f.get_metric() {
            let labels: Vec<String> = m
                .get_label()
                .iter()
                .map(|l| format!("{}=\"{}\"", l.name(), l.value()))
                .collect();
            let with = |extra: Option<String>| {
                let all: Vec<String> = labels.iter().cloned().chain(extra).collect();
                if all.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", all.join(","))
                }
            };
            match f.get_field_type() {
                MetricType::COUNTER => rows.push((
                    format!("{name}{}", with(None)),
                    Value::Double(m.get_counter().get_value()),
                )),
                MetricType::GAUGE => rows.push((
                    format!("{name}{}", with(None)),
                    Value::Double(m.get_gauge().get_value()),
                )),
                MetricType::SUMMARY => {
                    let s = m.get_summary();
                    for q in s.get_quantile() {
                        let label = Some(format!("quantile=\"{}\"", java_double(q.quantile())));
                        rows.push((format!("{name}{}", with(label)), Value::Double(q.value())));
                    }
                    rows.push((
                        format!("{name}_count{}", with(None)),
                        Value::Double(s.sample_count() as f64),
                    ));
                    rows.push((
                        format!("{name}_sum{}", with(None)),
                        Value::Double(s.sample_sum()),
                    ));
                }
                _ => {}
            }
        }
    }
    rows
}

/// Binds the endpoint. ZooKeeper stops start-up when its provider cannot start.
pub(crate) async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind((host, port)).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot start the Prometheus endpoint on {host}:{port} (metricsProvider.httpPort): {e}"),
        )
    })?;
    info!(
        "Prometheus metrics on http://{}/metrics (metricsProvider.httpHost/httpPort)",
        l.local_addr()
            .map_or_else(|_| format!("{host}:{port}"), |a| a.to_string())
    );
    Ok(l)
}

/// Serves `/metrics` (GET and POST, as the Prometheus Java client's servlet does) until the
/// task is dropped.
pub(crate) async fn serve(listener: TcpListener, ev: mpsc::Sender<Event>) {
    let router = Router::new()
        .route("/metrics", get(scrape).post(scrape).fallback(not_allowed))
        .fallback(not_found)
        .with_state(ev);
    if let Err(e) = axum::serve(listener, router).await {
        warn!("Prometheus endpoint stopped: {e}");
    }
}

async fn scrape(State(ev): State<mpsc::Sender<Event>>) -> Response {
    let (reply, rx) = oneshot::channel();
    if ev.send(Event::Prometheus { reply }).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match rx.await {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}
