//! Watch fan-out: `N` watcher sessions each set a data watch on one node (getData with
//! watch=true), then one writer session sets the node. Per round the latency recorded for each
//! watcher is the time from the writer reading its setData reply to that watcher reading its
//! NodeDataChanged notification. A server may deliver a notification before the writer's reply
//! (both leave when the txn is applied); such a sample counts as 0 and is reported apart. As
//! that makes the measure small on one server, each notification is also timed from the moment
//! the write was sent (`from_write`), which is what an application waiting on a watch sees.

use std::sync::atomic::Ordering;
use std::time::Instant;

use corral_proto::jute::WriteJute;
use corral_proto::records::{event_type, op};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::conn::Conn;
use crate::drive::{Budget, Progress};
use crate::error::BenchError;
use crate::recorder::Recorder;

/// ZooKeeper's ConnectionLoss, the code counted for a watcher or writer lost mid-round.
pub const CONNECTION_LOSS: i32 = -4;

/// What a watch run measured.
#[derive(Debug, Clone, Default)]
pub struct WatchOutcome {
    pub writes: u64,
    /// Notifications read before the writer had read its reply.
    pub notified_before_reply: u64,
    /// Each notification timed from sending the write.
    pub from_write: Recorder,
}

enum Msg {
    Armed,
    Notified(Instant),
    Failed(BenchError),
}

/// Run rounds until the budget is spent; each claim of the budget is one round (one write).
/// Returns the connections that are still usable, for closing.
#[allow(clippy::too_many_arguments)]
pub async fn fan_out(
    writer: Conn,
    watchers: Vec<Conn>,
    path: &str,
    value: &[u8],
    budget: &Budget,
    progress: &Progress,
    deadline: Instant,
    rec: &mut Recorder,
) -> (WatchOutcome, Vec<Conn>, Result<(), BenchError>) {
    let n = watchers.len();
    let (tx, mut rx) = mpsc::channel::<Msg>(2 * n.max(1));
    let mut go = Vec::with_capacity(n);
    let mut tasks = JoinSet::new();
    for conn in watchers {
        let (go_tx, go_rx) = mpsc::channel::<()>(1);
        go.push(go_tx);
        tasks.spawn(watcher(conn, path.to_string(), go_rx, tx.clone(), deadline));
    }
    drop(tx);
    let mut writer = Some(writer);
    let mut outcome = WatchOutcome::default();
    let result = rounds(
        &mut writer,
        &go,
        &mut rx,
        path,
        value,
        budget,
        progress,
        deadline,
        rec,
        &mut outcome,
    )
    .await;
    // Closing the go channels ends the watchers that wait for a round; the others end at the
    // deadline at the latest.
    drop(go);
    drop(rx);
    let mut conns: Vec<Conn> = writer.into_iter().collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Some(conn)) = joined {
            conns.push(conn);
        }
    }
    (outcome, conns, result)
}

#[allow(clippy::too_many_arguments)]
async fn rounds(
    writer: &mut Option<Conn>,
    go: &[mpsc::Sender<()>],
    rx: &mut mpsc::Receiver<Msg>,
    path: &str,
    value: &[u8],
    budget: &Budget,
    progress: &Progress,
    deadline: Instant,
    rec: &mut Recorder,
    outcome: &mut WatchOutcome,
) -> Result<(), BenchError> {
    let n = go.len() as u64;
    while budget.claim(Instant::now()).is_some() {
        for g in go {
            g.send(()).await.map_err(|_| lost("watcher"))?;
        }
        for _ in 0..n {
            match recv(rx, deadline).await? {
                Msg::Armed => {}
                Msg::Notified(_) => return Err(lost("watcher notified before the write")),
                Msg::Failed(e) => {
                    rec.record_error(CONNECTION_LOSS);
                    return Err(e);
                }
            }
        }
        let conn = writer.as_mut().ok_or_else(|| lost("writer"))?;
        let sent = Instant::now();
        let reply = conn
            .call(
                op::SET_DATA,
                |out| {
                    out.put_ustring(Some(path));
                    out.put_buffer(Some(value));
                    out.put_i32(-1);
                },
                deadline,
            )
            .await;
        let replied = Instant::now();
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                writer.take();
                rec.record_error(CONNECTION_LOSS);
                return Err(e);
            }
        };
        if reply.err != 0 {
            rec.record_error(reply.err);
            return Err(BenchError::Server {
                what: format!("setData {path}"),
                code: reply.err,
            });
        }
        outcome.writes += 1;
        for _ in 0..n {
            match recv(rx, deadline).await? {
                Msg::Notified(at) => {
                    if at < replied {
                        outcome.notified_before_reply += 1;
                    }
                    rec.record(at.saturating_duration_since(replied), true, 0);
                    outcome
                        .from_write
                        .record(at.saturating_duration_since(sent), true, 0);
                    progress.done.fetch_add(1, Ordering::Relaxed);
                }
                Msg::Armed => return Err(lost("watcher armed twice")),
                Msg::Failed(e) => {
                    rec.record_error(CONNECTION_LOSS);
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

async fn recv(rx: &mut mpsc::Receiver<Msg>, deadline: Instant) -> Result<Msg, BenchError> {
    match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(lost("watchers")),
        Err(_) => Err(BenchError::Timeout {
            what: "watch round".into(),
        }),
    }
}

fn lost(who: &str) -> BenchError {
    BenchError::Closed {
        addr: format!("{who} session"),
    }
}

/// One watcher: per round, set the watch, say so, and report when the notification arrives.
/// Returns its connection when the rounds are over, or `None` after a failure.
async fn watcher(
    mut conn: Conn,
    path: String,
    mut go: mpsc::Receiver<()>,
    tx: mpsc::Sender<Msg>,
    deadline: Instant,
) -> Option<Conn> {
    while go.recv().await.is_some() {
        match arm_and_wait(&mut conn, &path, &tx, deadline).await {
            Ok(at) => {
                if tx.send(Msg::Notified(at)).await.is_err() {
                    return Some(conn);
                }
            }
            Err(e) => {
                let _ = tx.send(Msg::Failed(e)).await;
                return None;
            }
        }
    }
    Some(conn)
}

async fn arm_and_wait(
    conn: &mut Conn,
    path: &str,
    tx: &mpsc::Sender<Msg>,
    deadline: Instant,
) -> Result<Instant, BenchError> {
    let reply = conn
        .call(
            op::GET_DATA,
            |out| {
                out.put_ustring(Some(path));
                out.put_bool(true);
            },
            deadline,
        )
        .await?;
    if reply.err != 0 {
        return Err(BenchError::Server {
            what: format!("getData {path} with a watch"),
            code: reply.err,
        });
    }
    tx.send(Msg::Armed).await.map_err(|_| lost("coordinator"))?;
    let (at, event) = conn.next_event(deadline).await?;
    // WatcherEvent: type i32, state i32, path ustring.
    let r#type = event
        .body
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if r#type != Some(event_type::NODE_DATA_CHANGED) {
        return Err(BenchError::Server {
            what: format!("watch on {path}: unexpected event type {type:?}"),
            code: 0,
        });
    }
    Ok(at)
}
