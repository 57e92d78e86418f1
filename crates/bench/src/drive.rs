//! The pipelined driver: one session keeps up to `window` requests in flight, claims request
//! numbers ("tickets") from a run-wide [`Budget`], matches each reply to its request by xid, and
//! records the latency from queueing the request to reading its reply.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Buf;
use corral_proto::records::{op, xid};

use crate::conn::{Conn, Frame};
use crate::error::BenchError;
use crate::recorder::Recorder;
use crate::workload::{Job, Rng, Step, Workload};

/// How many requests a run may still issue: up to `count`, and none after `end`.
#[derive(Debug)]
pub struct Budget {
    next: AtomicU64,
    count: Option<u64>,
    end: Option<Instant>,
}

impl Budget {
    pub fn new(count: Option<u64>, end: Option<Instant>) -> Budget {
        assert!(
            count.is_some() || end.is_some(),
            "an unbounded budget would never stop"
        );
        Budget {
            next: AtomicU64::new(0),
            count,
            end,
        }
    }

    /// The next ticket, or `None` once the budget is spent.
    pub fn claim(&self, now: Instant) -> Option<u64> {
        if self.end.is_some_and(|end| now >= end) {
            return None;
        }
        let t = self.next.fetch_add(1, Ordering::Relaxed);
        match self.count {
            Some(c) if t >= c => None,
            _ => Some(t),
        }
    }

    /// Tickets handed out so far (each one was sent).
    pub fn issued(&self) -> u64 {
        let n = self.next.load(Ordering::Relaxed);
        match self.count {
            Some(c) => n.min(c),
            // Claims refused after `end` do not advance the counter.
            None => n,
        }
    }
}

/// Completed requests and errors of a whole run, for the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub errors: AtomicU64,
}

struct InFlight {
    xid: i32,
    sent: Instant,
    step: Step,
}

/// What the sessions of one pass share: the job, its bounds and the progress counters.
#[derive(Debug)]
pub struct Plan {
    pub workload: Workload,
    pub job: Job,
    /// Requests in flight per session.
    pub window: u32,
    pub budget: Budget,
    pub progress: Progress,
    /// No session waits past this.
    pub deadline: Instant,
}

/// Run the plan's job on one session until the budget is spent and every reply is in. A lost
/// connection or the deadline ends the session with an error; the caller counts its unanswered
/// requests as failed.
pub async fn drive(
    conn: &mut Conn,
    plan: &Plan,
    seed: u64,
    rec: &mut Recorder,
) -> Result<(), DriveError> {
    let Plan {
        workload,
        job,
        window,
        budget,
        progress,
        deadline,
    } = plan;
    let (job, deadline) = (*job, *deadline);
    let mut rng = Rng::new(seed);
    let window = (*window).max(1) as usize;
    let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(window);
    let mut nth = 0u64;
    let mut spent = false;
    loop {
        while !spent && inflight.len() < window {
            let now = Instant::now();
            let Some(ticket) = budget.claim(now) else {
                spent = true;
                break;
            };
            let step = workload.step(job, ticket, nth, &mut rng);
            nth += 1;
            let xid = conn.queue(step.op_code(), |out| workload.write_body(step, out));
            inflight.push_back(InFlight {
                xid,
                sent: now,
                step,
            });
        }
        if spent && inflight.is_empty() {
            return Ok(());
        }
        if let Err(e) = conn.io(deadline).await {
            return Err(DriveError {
                unanswered: inflight.len() as u64,
                error: e,
            });
        }
        let now = Instant::now();
        loop {
            let frame = match conn.take_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    return Err(DriveError {
                        unanswered: inflight.len() as u64,
                        error: e,
                    })
                }
            };
            if frame.xid == xid::NOTIFICATION {
                continue;
            }
            // Replies come in request order, so this is the front; anything else is a server
            // bug worth stopping for.
            let at = inflight.iter().position(|r| r.xid == frame.xid);
            let Some(req) = at.and_then(|i| inflight.remove(i)) else {
                return Err(DriveError {
                    unanswered: inflight.len() as u64,
                    error: BenchError::UnexpectedXid {
                        addr: conn.addr().to_string(),
                        xid: frame.xid,
                    },
                });
            };
            let err = reply_error(req.step, &frame);
            rec.record(now - req.sent, req.step.is_read(), err);
            progress.done.fetch_add(1, Ordering::Relaxed);
            if err != 0 {
                progress.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A session that stopped early: why, and how many of its requests got no reply.
#[derive(Debug)]
pub struct DriveError {
    pub unanswered: u64,
    pub error: BenchError,
}

/// The error code of a reply: the header's, or for a multi the first failed op's (a failed
/// multi may carry its errors only in the per-op results).
fn reply_error(step: Step, frame: &Frame) -> i32 {
    if frame.err != 0 || !matches!(step, Step::Multi(_)) {
        return frame.err;
    }
    multi_error(&frame.body)
}

/// Scan a MultiResponse (per op: MultiHeader type/done/err, then the op's result record) for
/// the first error; a body that cannot be read is a marshalling error (-5).
pub fn multi_error(body: &[u8]) -> i32 {
    const MARSHALLING: i32 = -5;
    const STAT_BYTES: usize = 68;
    let mut b = body;
    // Each op takes at least a 9-byte header, so this loop ends within the body.
    while b.remaining() >= 9 {
        let r#type = b.get_i32();
        let done = b.get_u8() != 0;
        let err = b.get_i32();
        if done {
            return 0;
        }
        let skip = match r#type {
            -1 => return if err != 0 { err } else { MARSHALLING },
            op::CREATE => {
                if b.remaining() < 4 {
                    return MARSHALLING;
                }
                b.get_i32().max(0) as usize
            }
            op::CREATE2 => {
                if b.remaining() < 4 {
                    return MARSHALLING;
                }
                b.get_i32().max(0) as usize + STAT_BYTES
            }
            op::SET_DATA => STAT_BYTES,
            op::DELETE | op::CHECK => 0,
            _ => return MARSHALLING,
        };
        if b.remaining() < skip {
            return MARSHALLING;
        }
        b.advance(skip);
    }
    MARSHALLING
}

#[cfg(test)]
mod tests {
    use corral_proto::records::Stat;
    use corral_proto::request::{write_multi_response, MultiResult};

    use super::*;

    #[test]
    fn multi_error_reads_what_servers_write() {
        let mut ok = Vec::new();
        write_multi_response(
            &[
                MultiResult::Create("/b/m-1".into()),
                MultiResult::SetData(Stat::default()),
                MultiResult::Delete,
            ],
            &mut ok,
        );
        assert_eq!(multi_error(&ok), 0);
        let mut failed = Vec::new();
        write_multi_response(
            &[
                MultiResult::Error(-110),
                MultiResult::Error(-2),
                MultiResult::Error(-2),
            ],
            &mut failed,
        );
        assert_eq!(multi_error(&failed), -110);
        assert_eq!(multi_error(&ok[..ok.len() - 3]), -5, "truncated");
        assert_eq!(multi_error(&[]), -5);
    }

    #[test]
    fn budget_by_count_and_by_time() {
        let now = Instant::now();
        let b = Budget::new(Some(3), None);
        let got: Vec<_> = (0..5).map(|_| b.claim(now)).collect();
        assert_eq!(got, vec![Some(0), Some(1), Some(2), None, None]);
        assert_eq!(b.issued(), 3);
        let b = Budget::new(None, Some(now + std::time::Duration::from_secs(60)));
        assert_eq!(b.claim(now), Some(0));
        assert_eq!(b.claim(now + std::time::Duration::from_secs(61)), None);
        assert_eq!(b.issued(), 1);
    }
}
