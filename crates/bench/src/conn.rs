//! One ZooKeeper client session over TCP, spoken with corral-proto: the handshake, framed
//! requests written into one send buffer, frames read into one receive buffer, pings while idle,
//! and closeSession. It does no matching or timing of its own: callers queue requests, drive
//! I/O with [`Conn::io`] and take reply frames in arrival order with [`Conn::take_frame`].
//!
//! Frames (reference §2.3): a 4-byte big-endian length, then for a reply a `ReplyHeader`
//! (xid i32, zxid i64, err i32) and, when err is 0, the response record. Xid -1 is a watch
//! notification, -2 a ping reply; requests use xids from 1 up.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use corral_proto::jute::{Jute, WriteJute};
use corral_proto::records::{op, xid, ConnectRequest, ConnectResponse};
use corral_proto::request::Connect;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::sleep_until;

use crate::error::BenchError;
use crate::limits::{CLOSE_TIMEOUT, CONNECT_TIMEOUT, FRAME_BYTES_MAX, READ_CHUNK_BYTES};

/// Watch notifications kept while a caller waits for a reply; older ones are dropped.
const EVENTS_MAX: usize = 1024;

/// A reply or notification frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    /// The response record (empty when `err` is not 0).
    pub body: Bytes,
}

pub struct Conn {
    addr: String,
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    inbuf: BytesMut,
    out: Vec<u8>,
    out_pos: usize,
    session_id: i64,
    ping_interval: Duration,
    last_send: Instant,
    next_xid: i32,
    events: VecDeque<(Instant, Frame)>,
}

impl Conn {
    /// Connect and create a new session asking for `session_timeout_ms`.
    pub async fn connect(addr: &str, session_timeout_ms: u32) -> Result<Conn, BenchError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let io_err = |error| BenchError::Io {
            addr: addr.to_string(),
            error,
        };
        let stream = tokio::time::timeout_at(deadline.into(), TcpStream::connect(addr))
            .await
            .map_err(|_| BenchError::Timeout {
                what: format!("connecting to {addr}"),
            })?
            .map_err(io_err)?;
        stream.set_nodelay(true).map_err(io_err)?;
        let (rd, wr) = stream.into_split();
        let mut conn = Conn {
            addr: addr.to_string(),
            rd,
            wr,
            inbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
            out: Vec::with_capacity(READ_CHUNK_BYTES),
            out_pos: 0,
            session_id: 0,
            // No pings before the handshake is answered: the first wake-up is the deadline.
            ping_interval: CONNECT_TIMEOUT,
            last_send: Instant::now(),
            next_xid: 1,
            events: VecDeque::new(),
        };
        let mut body = Vec::with_capacity(45);
        Connect {
            req: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: session_timeout_ms as i32,
                session_id: 0,
                passwd: Some(vec![0; 16]),
            },
            read_only: Some(false),
        }
        .write(&mut body);
        conn.out.put_i32(body.len() as i32);
        conn.out.extend_from_slice(&body);
        // The ConnectResponse has no ReplyHeader: read one raw frame.
        let frame = loop {
            if let Some(f) = conn.take_raw()? {
                break f;
            }
            conn.io(deadline).await?;
        };
        let resp = ConnectResponse::from_bytes(&frame).map_err(|error| BenchError::Decode {
            addr: addr.to_string(),
            error,
        })?;
        if resp.session_id == 0 || resp.time_out <= 0 {
            return Err(BenchError::Refused {
                addr: addr.to_string(),
            });
        }
        conn.session_id = resp.session_id;
        // As ZooKeeper's ClientCnxn: ping after a third of the negotiated timeout without sending.
        conn.ping_interval =
            Duration::from_millis(resp.time_out as u64 / 3).max(Duration::from_millis(10));
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// Queue a request: `body` appends its record. Returns the xid to match the reply with.
    pub fn queue(&mut self, op_code: i32, body: impl FnOnce(&mut Vec<u8>)) -> i32 {
        let xid = self.next_xid;
        // Xids stay positive: after i32::MAX requests they start again from 1.
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        let at = self.out.len();
        self.out.put_i32(0);
        self.out.put_i32(xid);
        self.out.put_i32(op_code);
        body(&mut self.out);
        let len = (self.out.len() - at - 4) as i32;
        self.out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        self.last_send = Instant::now();
        xid
    }

    fn queue_ping(&mut self) {
        self.out.put_i32(8);
        self.out.put_i32(xid::PING);
        self.out.put_i32(op::PING);
        self.last_send = Instant::now();
    }

    /// Wait for one I/O event: bytes arrived, queued bytes went out, or the ping timer fired
    /// (then a ping is queued). Fails at `deadline`, on EOF and on socket errors.
    pub async fn io(&mut self, deadline: Instant) -> Result<(), BenchError> {
        if self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK_BYTES / 4 {
            self.inbuf.reserve(READ_CHUNK_BYTES);
        }
        let wake_at = deadline.min(self.last_send + self.ping_interval);
        let want_write = self.out_pos < self.out.len();
        let event = {
            let Conn {
                rd,
                wr,
                inbuf,
                out,
                out_pos,
                ..
            } = self;
            tokio::select! {
                r = rd.read_buf(inbuf) => Event::Read(r),
                r = wr.write(&out[*out_pos..]), if want_write => Event::Wrote(r),
                _ = sleep_until(wake_at.into()) => Event::Timer,
            }
        };
        match event {
            Event::Read(Ok(0)) => Err(BenchError::Closed {
                addr: self.addr.clone(),
            }),
            Event::Read(Ok(_)) => Ok(()),
            Event::Wrote(Ok(n)) => {
                self.out_pos += n;
                if self.out_pos == self.out.len() {
                    self.out.clear();
                    self.out_pos = 0;
                }
                Ok(())
            }
            Event::Read(Err(error)) | Event::Wrote(Err(error)) => Err(BenchError::Io {
                addr: self.addr.clone(),
                error,
            }),
            Event::Timer if Instant::now() >= deadline => Err(BenchError::Timeout {
                what: format!("session 0x{:x} on {}", self.session_id, self.addr),
            }),
            Event::Timer => {
                self.queue_ping();
                Ok(())
            }
        }
    }

    /// The next whole frame body received, if any.
    fn take_raw(&mut self) -> Result<Option<Bytes>, BenchError> {
        if self.inbuf.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([self.inbuf[0], self.inbuf[1], self.inbuf[2], self.inbuf[3]]);
        if len < 0 || len as usize > FRAME_BYTES_MAX {
            return Err(BenchError::FrameLength {
                addr: self.addr.clone(),
                len: i64::from(len),
            });
        }
        let len = len as usize;
        if self.inbuf.len() < 4 + len {
            self.inbuf.reserve(4 + len - self.inbuf.len());
            return Ok(None);
        }
        self.inbuf.advance(4);
        Ok(Some(self.inbuf.split_to(len).freeze()))
    }

    /// The next reply or notification received, if any; ping replies are consumed here.
    pub fn take_frame(&mut self) -> Result<Option<Frame>, BenchError> {
        while let Some(mut b) = self.take_raw()? {
            if b.len() < 16 {
                return Err(BenchError::FrameLength {
                    addr: self.addr.clone(),
                    len: b.len() as i64,
                });
            }
            let xid = b.get_i32();
            let zxid = b.get_i64();
            let err = b.get_i32();
            if xid == xid::PING {
                continue;
            }
            return Ok(Some(Frame {
                xid,
                zxid,
                err,
                body: b,
            }));
        }
        Ok(None)
    }

    /// Send one request and wait for its reply; notifications that arrive meanwhile are kept
    /// for [`Conn::next_event`].
    pub async fn call(
        &mut self,
        op_code: i32,
        body: impl FnOnce(&mut Vec<u8>),
        deadline: Instant,
    ) -> Result<Frame, BenchError> {
        let want = self.queue(op_code, body);
        loop {
            while let Some(f) = self.take_frame()? {
                if f.xid == want {
                    return Ok(f);
                }
                self.keep_event(f)?;
            }
            self.io(deadline).await?;
        }
    }

    /// The next watch notification and when it arrived.
    pub async fn next_event(&mut self, deadline: Instant) -> Result<(Instant, Frame), BenchError> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            while let Some(f) = self.take_frame()? {
                self.keep_event(f)?;
            }
            if self.events.is_empty() {
                self.io(deadline).await?;
            }
        }
    }

    fn keep_event(&mut self, f: Frame) -> Result<(), BenchError> {
        if f.xid != xid::NOTIFICATION {
            return Err(BenchError::UnexpectedXid {
                addr: self.addr.clone(),
                xid: f.xid,
            });
        }
        if self.events.len() == EVENTS_MAX {
            self.events.pop_front();
        }
        self.events.push_back((Instant::now(), f));
        Ok(())
    }

    /// closeSession, waiting a bounded time for its reply, then shut the socket down. Replies
    /// still in flight are discarded.
    pub async fn close(mut self) -> Result<(), BenchError> {
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let want = self.queue(op::CLOSE_SESSION, |_| {});
        let result = loop {
            match self.take_frame() {
                Ok(Some(f)) if f.xid == want => break Ok(()),
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            match self.io(deadline).await {
                Ok(()) => {}
                // The server closes the connection once the session is closed; that is success
                // when the reply arrived with the last bytes (checked above) or was not awaited.
                Err(BenchError::Closed { .. }) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = self.wr.shutdown().await;
        result
    }
}

enum Event {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
    Timer,
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    async fn read_frame(s: &mut TcpStream) -> Vec<u8> {
        let len = s.read_i32().await.unwrap();
        let mut body = vec![0; len as usize];
        s.read_exact(&mut body).await.unwrap();
        body
    }

    fn reply(xid: i32, err: i32, body: &[u8]) -> Vec<u8> {
        corral_proto::request::reply_frame(xid, 7, err, body)
    }

    /// Against a scripted server: the handshake, pings once idle for a third of the negotiated
    /// timeout (300 ms here), replies matched by xid with a notification in between, and
    /// closeSession.
    #[tokio::test]
    async fn handshake_ping_call_event_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let connect = Connect::read(&read_frame(&mut s).await).unwrap();
            assert_eq!(connect.req.time_out, 30_000);
            assert_eq!(connect.req.session_id, 0);
            let resp = ConnectResponse {
                protocol_version: 0,
                time_out: 300,
                session_id: 0x1234,
                passwd: Some(vec![0; 16]),
            };
            s.write_all(&corral_proto::request::connect_response_frame(
                &resp,
                Some(false),
            ))
            .await
            .unwrap();
            // Idle: the client pings after ~100 ms (bounded loosely for loaded machines).
            let started = Instant::now();
            let ping = read_frame(&mut s).await;
            assert_eq!(
                ping,
                [xid::PING.to_be_bytes(), op::PING.to_be_bytes()].concat()
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "no ping while idle"
            );
            s.write_all(&reply(xid::PING, 0, &[])).await.unwrap();
            // A getData (after more pings, as the client idles on): answer with a notification
            // first, then the reply.
            let req = loop {
                let f = read_frame(&mut s).await;
                if f[..4] != xid::PING.to_be_bytes() {
                    break f;
                }
                s.write_all(&reply(xid::PING, 0, &[])).await.unwrap();
            };
            assert_eq!(&req[4..8], &op::GET_DATA.to_be_bytes());
            let req_xid = i32::from_be_bytes(req[..4].try_into().unwrap());
            let event = corral_proto::records::WatcherEvent {
                r#type: 3,
                state: 3,
                path: "/w".into(),
            };
            s.write_all(&corral_proto::request::notification_frame(&event))
                .await
                .unwrap();
            s.write_all(&reply(req_xid, -101, &[])).await.unwrap();
            let close = read_frame(&mut s).await;
            assert_eq!(&close[4..8], &op::CLOSE_SESSION.to_be_bytes());
            let close_xid = i32::from_be_bytes(close[..4].try_into().unwrap());
            s.write_all(&reply(close_xid, 0, &[])).await.unwrap();
        });
        let mut conn = Conn::connect(&addr, 30_000).await.unwrap();
        assert_eq!(conn.session_id(), 0x1234);
        let deadline = Instant::now() + Duration::from_secs(5);
        // Nothing to do for 200 ms but ping.
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until {
            let _ = tokio::time::timeout_at(until.into(), conn.io(deadline)).await;
        }
        let r = conn
            .call(
                op::GET_DATA,
                |out| {
                    out.put_ustring(Some("/w"));
                    out.put_bool(true);
                },
                deadline,
            )
            .await
            .unwrap();
        assert_eq!((r.err, r.zxid), (-101, 7));
        let (_, event) = conn.next_event(deadline).await.unwrap();
        assert_eq!(event.xid, xid::NOTIFICATION);
        conn.close().await.unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn hostile_frame_length_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = read_frame(&mut s).await;
            s.write_all(&(-5i32).to_be_bytes()).await.unwrap();
            let _ = s.read_i32().await;
        });
        match Conn::connect(&addr, 30_000).await {
            Err(BenchError::FrameLength { len: -5, .. }) => {}
            other => panic!("{:?}", other.map(|c| c.session_id())),
        }
        server.abort();
    }
}
