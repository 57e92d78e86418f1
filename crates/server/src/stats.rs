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
    pub bytes_received: u64,
    pub latency: Latency,
    pub connections_rejected: u64,
    pub large_requests_rejected: u64,
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
    /// Arrival times of requests not yet answered, oldest first.
    pub in_flight: std::collections::VecDeque<Instant>,
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
