//! What the socket tasks and the node task hand each other: events in (arrival order), frames
//! out. Kept apart so the client side (`client.rs`), the quorum side (`quorum.rs`) and the node
//! task (`node_task.rs`) depend on this and not on each other.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use corral_proto::quorum::QuorumPacket;
use corral_proto::request::{Connect, Request};
use corral_tree::ConnId;
use tokio::sync::{mpsc, oneshot};

pub(crate) enum WriterMsg {
    Frame(Vec<u8>),
    /// A frame for a learner, with when it was queued (the leader's per-learner queue
    /// figures); only learner links carry these.
    Queued(Vec<u8>, Instant),
    Close,
}

/// A learner link's queue, as ZooKeeper's LearnerHandler reports it: frames queued and not yet
/// taken by the writer, and per frame taken (the frames left behind it, its ms in the queue),
/// kept until the node task takes them.
#[derive(Debug, Default)]
pub(crate) struct LearnerQueue {
    pub queued: AtomicUsize,
    pub taken: std::sync::Mutex<Vec<(usize, u64)>>,
}

/// Samples a learner queue keeps between takes.
const LEARNER_QUEUE_SAMPLES_KEPT: usize = 65_536;

impl LearnerQueue {
    /// The writer took a frame queued at `at`.
    pub(crate) fn took(&self, at: Instant) {
        let left = self.queued.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        let ms = at.elapsed().as_millis() as u64;
        let mut t = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() < LEARNER_QUEUE_SAMPLES_KEPT {
            t.push((left, ms));
        }
    }

    /// The samples since the last call.
    pub(crate) fn take(&self) -> Vec<(usize, u64)> {
        std::mem::take(&mut *self.taken.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The write half of a client socket, shared by the node task (which writes a batch's replies
/// straight to it when nothing is queued before them, saving a hand-over to another task per
/// reply) and the connection's writer task (which writes what the socket did not take at once).
pub(crate) struct ClientSock {
    /// A plaintext socket the node task writes straight to; `None` for TLS, where every byte
    /// goes through the writer task (it owns the TLS stream's write half).
    pub wr: Option<tokio::net::tcp::OwnedWriteHalf>,
    /// Buffers handed to the writer task and not yet fully written by it.
    pub queued: AtomicUsize,
    /// Bytes handed to the writer task and not yet written.
    pub unsent: AtomicUsize,
    /// Told when the connection is to be cut off at once (it does not read its replies).
    pub cut: tokio::sync::Notify,
    /// Requests read (with a positive xid) and not yet answered, for `globalOutstandingLimit`.
    pub outstanding: AtomicUsize,
}

/// What the AdminServer asks of the node task for a backup command.
#[derive(Debug)]
pub(crate) enum BackupAsk {
    /// May the caller (its `Authorization` header, its IP) run a backup command?
    Check {
        auth: Option<String>,
        ip: String,
    },
    Snapshot,
    Restore {
        blob: Vec<u8>,
    },
}

/// `globalOutstandingLimit`, as ZooKeeper applies it: while more requests are in process than
/// the limit, a connection with requests of its own still unanswered reads no more (its
/// client's writes back up in TCP); connections with none outstanding go on.
#[derive(Debug)]
pub(crate) struct Throttle {
    /// Requests (positive xids) read and not yet answered, over every connection.
    pub in_process: AtomicUsize,
    /// The limit (a follower's share of it on followers, as ZooKeeper divides it).
    pub limit: AtomicUsize,
    /// ZooKeeper's request throttler (`zookeeper.request_throttle_max_requests`; 0 is off):
    /// with this many requests in process, no connection reads another.
    pub max_requests: usize,
    /// `zookeeper.request_throttle_stall_time`: how long a held reader waits before it looks
    /// again (it is also woken by each reply).
    pub stall: std::time::Duration,
    /// `zk_request_throttle_wait_count`: requests held back before they were read.
    pub waits: std::sync::atomic::AtomicU64,
    /// Told when a reply goes out.
    pub released: tokio::sync::Notify,
}

impl Throttle {
    pub(crate) fn new(limit: usize) -> Throttle {
        Throttle {
            in_process: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            max_requests: 0,
            stall: std::time::Duration::from_millis(100),
            waits: std::sync::atomic::AtomicU64::new(0),
            released: tokio::sync::Notify::new(),
        }
    }

    /// ZooKeeper's `shouldThrottle` (globalOutstandingLimit), and its request throttler.
    fn holds(&self, own: usize) -> bool {
        let in_process = self.in_process.load(Ordering::Acquire);
        (self.max_requests > 0 && in_process >= self.max_requests)
            || (own > 0 && in_process > self.limit.load(Ordering::Relaxed))
    }

    /// Waits until `sock` may read its next request; counts one wait per request held.
    pub(crate) async fn wait_for_room(&self, sock: &ClientSock) {
        // Every request passes here: only a held one registers for the wake-up.
        if !self.holds(sock.outstanding.load(Ordering::Acquire)) {
            return;
        }
        let mut held = false;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if !self.holds(sock.outstanding.load(Ordering::Acquire)) {
                return;
            }
            if !held {
                held = true;
                self.waits.fetch_add(1, Ordering::Relaxed);
            }
            let _ = tokio::time::timeout(self.stall, released).await;
        }
    }

    /// A request was read on `sock`.
    pub(crate) fn read_one(&self, sock: &ClientSock) {
        sock.outstanding.fetch_add(1, Ordering::AcqRel);
        self.in_process.fetch_add(1, Ordering::AcqRel);
    }

    /// `n` of `sock`'s requests were answered (or dropped with its connection).
    pub(crate) fn answered(&self, sock: &ClientSock, n: usize) {
        let mut taken = 0;
        let _ = sock
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                taken = o.min(n);
                Some(o - taken)
            });
        if taken > 0 {
            let _ = self
                .in_process
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| {
                    Some(i.saturating_sub(taken))
                });
            self.released.notify_waiters();
        }
    }
}

/// The node task's handle on a client connection's output.
pub(crate) struct ClientTx {
    pub tx: mpsc::UnboundedSender<WriterMsg>,
    pub sock: Arc<ClientSock>,
    /// This batch's frames, written together when the batch is flushed.
    pub outbox: Vec<u8>,
    /// The most bytes the client may leave unread (`limits::UNSENT_BYTES_MIN` or more).
    pub unsent_limit: usize,
}

impl ClientTx {
    /// Write the outbox: straight to the socket while it takes bytes and nothing is queued
    /// before them, the rest through the writer task (in order: once something is queued, all
    /// later bytes are queued behind it). `Err(unsent bytes)`: the client has left more than
    /// its limit unread; nothing more is queued and the connection is cut off.
    pub fn flush(&mut self) -> Result<(), usize> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let mut off = 0;
        if let (Some(wr), 0) = (&self.sock.wr, self.sock.queued.load(Ordering::Acquire)) {
            while off < self.outbox.len() {
                match wr.try_write(&self.outbox[off..]) {
                    Ok(0) => break,
                    Ok(n) => off += n,
                    // WouldBlock: the writer waits for the socket; any other error: the
                    // writer meets it too and ends the connection.
                    Err(_) => break,
                }
            }
        }
        if off == self.outbox.len() {
            self.outbox.clear();
            return Ok(());
        }
        let unsent = self.sock.unsent.load(Ordering::Acquire) + self.outbox.len() - off;
        if unsent > self.unsent_limit {
            self.outbox.clear();
            self.sock.cut.notify_one();
            return Err(unsent);
        }
        let rest = if off == 0 {
            std::mem::take(&mut self.outbox)
        } else {
            let rest = self.outbox[off..].to_vec();
            self.outbox.clear();
            rest
        };
        self.sock.queued.fetch_add(1, Ordering::AcqRel);
        self.sock.unsent.fetch_add(rest.len(), Ordering::AcqRel);
        let _ = self.tx.send(WriterMsg::Frame(rest));
        Ok(())
    }
}

/// Events for the node task, in arrival order.
pub(crate) enum Event {
    /// Election and quorum connections of an ensemble member.
    Quorum(QEvent),
    Open {
        conn: ConnId,
        peer: SocketAddr,
        tx: mpsc::UnboundedSender<WriterMsg>,
        sock: Arc<ClientSock>,
        /// A TLS client certificate's subject (RFC 2253).
        x509: Option<String>,
    },
    Connect {
        conn: ConnId,
        connect: Connect,
        /// When it was read.
        at: Instant,
    },
    Request {
        conn: ConnId,
        xid: i32,
        req: Request,
        at: Instant,
        len: usize,
    },
    Unimplemented {
        conn: ConnId,
        xid: i32,
    },
    Malformed {
        conn: ConnId,
        xid: i32,
        op_type: i32,
    },
    Closed {
        conn: ConnId,
        /// The client ended the stream (rather than the server closing the connection).
        by_client: bool,
    },
    FourLetter {
        word: String,
        /// `stmk`'s argument: the 8-byte mask after the word.
        arg: Option<i64>,
        peer: SocketAddr,
        reply: oneshot::Sender<String>,
    },
    /// An AdminServer command (a primary name) with its query arguments.
    Admin {
        command: &'static str,
        args: std::collections::HashMap<String, String>,
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// A background storage job the node asked for finished.
    StorageDone(corral_node::Event),
    /// A value for one of the server's summaries, measured off the node task.
    Observe(crate::metrics::Summary, i64),
    /// The AdminServer's `snapshot` / `restore` (ZooKeeper 3.9).
    Backup {
        what: BackupAsk,
        reply: oneshot::Sender<crate::admin::Backup>,
    },
    /// A Prometheus scrape: the metrics in the text exposition format.
    Prometheus {
        reply: oneshot::Sender<String>,
    },
}

/// Quorum-side events from the connection tasks.
pub(crate) enum QEvent {
    ElectionUp {
        sid: i64,
        id: u64,
        tx: mpsc::UnboundedSender<WriterMsg>,
    },
    Election {
        from: i64,
        payload: Vec<u8>,
    },
    ElectionDown {
        sid: i64,
        id: u64,
    },
    /// A smaller sid connected to us; the rule says we dial back (§4.2).
    DialBack {
        sid: i64,
    },
    LearnerUp {
        conn: u64,
        tx: mpsc::UnboundedSender<WriterMsg>,
        /// The learner's address.
        peer: SocketAddr,
        /// Its link's queue figures, shared with the writer.
        queue: Arc<LearnerQueue>,
    },
    LearnerPacket {
        conn: u64,
        p: QuorumPacket,
    },
    LearnerDown {
        conn: u64,
    },
    LeaderUp {
        gen: u64,
        tx: mpsc::UnboundedSender<WriterMsg>,
    },
    LeaderPacket {
        gen: u64,
        p: QuorumPacket,
    },
    LeaderSnapshot {
        gen: u64,
        zxid: i64,
        blob: Vec<u8>,
    },
    LeaderDown {
        gen: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock() -> ClientSock {
        ClientSock {
            wr: None,
            queued: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            cut: tokio::sync::Notify::new(),
            outstanding: AtomicUsize::new(0),
        }
    }

    #[tokio::test]
    async fn over_the_limit_only_connections_with_requests_outstanding_wait() {
        let t = Arc::new(Throttle::new(2));
        let (busy, idle) = (Arc::new(sock()), sock());
        for _ in 0..3 {
            t.read_one(&busy);
        }
        // Over the limit: the busy connection waits, one with nothing outstanding reads on.
        tokio::time::timeout(std::time::Duration::from_millis(50), t.wait_for_room(&idle))
            .await
            .expect("a connection with nothing outstanding is not held");
        let waiter = {
            let (t, busy) = (t.clone(), busy.clone());
            tokio::spawn(async move { t.wait_for_room(&busy).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "3 in process over a limit of 2 holds the busy one"
        );
        // One reply: 2 in process, no longer over the limit.
        t.answered(&busy, 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("released by the reply")
            .unwrap();
        // A closed connection gives back all it had.
        t.answered(&busy, usize::MAX);
        assert_eq!(t.in_process.load(Ordering::Acquire), 0);
        assert_eq!(busy.outstanding.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn the_request_throttler_holds_every_connection_at_its_limit() {
        let t = Arc::new(Throttle {
            max_requests: 1,
            stall: std::time::Duration::from_secs(60),
            ..Throttle::new(1000)
        });
        let (busy, fresh) = (sock(), Arc::new(sock()));
        t.read_one(&busy);
        // Unlike globalOutstandingLimit, a connection with nothing outstanding waits too.
        let waiter = {
            let (t, fresh) = (t.clone(), fresh.clone());
            tokio::spawn(async move { t.wait_for_room(&fresh).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        assert_eq!(t.waits.load(Ordering::Relaxed), 1, "one request held");
        t.answered(&busy, 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("released by the reply")
            .unwrap();
    }
}
