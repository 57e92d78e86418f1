//! Server and per-connection counters shown by the four-letter words (`srvr`, `stat`, `cons`,
//! `mntr`) and reset by `srst` / `crst`.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Latency {
    pub min_ms: u64,
    pub max_ms: u64,
    pub total_ms: u64,
    pub count: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            min_ms: u64::MAX,
            max_ms: 0,
            total_ms: 0,
            count: 0,
        }
    }
}

impl Latency {
    pub fn add(&mut self, ms: u64) {
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
        self.total_ms += ms;
        self.count += 1;
    }

    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min_ms
        }
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency: Latency,
    /// Sizes of the replies and notifications sent (ZooKeeper's `BufferStats`: -1 until one).
    pub response_sizes: Option<ResponseSizes>,
}

#[derive(Debug, Clone, Copy)]
pub struct ResponseSizes {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

impl ServerStats {
    /// A reply or notification of `bytes` (without the length prefix) was sent.
    pub fn add_response(&mut self, bytes: i64) {
        self.response_sizes = Some(match self.response_sizes {
            None => ResponseSizes {
                last: bytes,
                min: bytes,
                max: bytes,
            },
            Some(r) => ResponseSizes {
                last: bytes,
                min: r.min.min(bytes),
                max: r.max.max(bytes),
            },
        });
    }

    /// last, min, max, as `mntr` and the AdminServer show them.
    pub fn response_size_figures(&self) -> (i64, i64, i64) {
        self.response_sizes
            .map_or((-1, -1, -1), |r| (r.last, r.min, r.max))
    }
}

/// A request waiting for its reply.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub at: Instant,
    /// Turned into a txn (ZooKeeper's update latency) rather than read.
    pub write: bool,
    /// A read ZooKeeper counts in `read_per_namespace`: its path and kind.
    pub read: Option<(String, ReadKind)>,
    /// The operation's name (`corral_request_latency_ms`' `op` label).
    pub op: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    Data,
    Exists,
    Children,
    Children2,
}

#[derive(Debug, Clone)]
pub struct ConnStats {
    pub peer: std::net::SocketAddr,
    pub established: Instant,
    pub established_wall_ms: i64,
    pub received: u64,
    pub sent: u64,
    pub latency: Latency,
    pub last_latency_ms: u64,
    pub last_response_wall_ms: i64,
    /// Requests not yet answered, oldest first.
    pub in_flight: std::collections::VecDeque<InFlight>,
    /// Whether the connect response went out (the first frame on a connection).
    pub greeted: bool,
    /// Reply buffers waiting to be written (`cons`' `queued`), as of the last look.
    pub queued: usize,
    /// When a connect asking for a new session arrived: creating it is a txn, timed as one.
    pub session_asked: Option<Instant>,
}

impl ConnStats {
    pub fn new(peer: std::net::SocketAddr, wall_ms: i64) -> ConnStats {
        ConnStats {
            peer,
            established: Instant::now(),
            established_wall_ms: wall_ms,
            received: 0,
            sent: 0,
            latency: Latency::default(),
            last_latency_ms: 0,
            last_response_wall_ms: 0,
            in_flight: Default::default(),
            greeted: false,
            queued: 0,
            session_asked: None,
        }
    }

    pub fn reset(&mut self) {
        self.received = 0;
        self.sent = 0;
        self.latency = Latency::default();
        self.last_latency_ms = 0;
        self.last_response_wall_ms = 0;
    }
}
