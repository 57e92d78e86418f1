//! One client connection: the reader (frames decoded and handed to the node task in order,
//! four-letter words answered) and the writer for what the node task could not write straight
//! to the socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_proto::jute::{Jute, Reader};
use corral_proto::records::{op, RequestHeader};
use corral_proto::request::{Connect, Request};
use corral_proto::DecodeError;
use corral_tree::ConnId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::fourlw::FOUR_LETTER_WORDS;
use crate::limits::SESSIONLESS_TIMEOUT;
use crate::wire::{ClientSock, Event, Throttle, WriterMsg};

/// Writes what the core could not write straight to a client socket, in order, until `Close`
/// or a write error.
async fn client_write_loop(sock: Arc<ClientSock>, mut rx: mpsc::UnboundedReceiver<WriterMsg>) {
    let Some(wr) = sock.wr.as_ref() else { return };
    while let Some(m) = rx.recv().await {
        let WriterMsg::Frame(f) = m else { break };
        let mut off = 0;
        while off < f.len() {
            match wr.try_write(&f[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if wr.writable().await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        sock.queued.fetch_sub(1, Ordering::AcqRel);
        sock.unsent.fetch_sub(f.len(), Ordering::AcqRel);
    }
}

/// The writer of a TLS connection: every frame goes through here (the node task cannot write
/// to a TLS stream), flushed once nothing more is waiting; a close ends the TLS session
/// cleanly (close_notify).
async fn stream_write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    sock: Arc<ClientSock>,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
) {
    while let Some(m) = rx.recv().await {
        let WriterMsg::Frame(f) = m else { break };
        if wr.write_all(&f).await.is_err() {
            return;
        }
        sock.queued.fetch_sub(1, Ordering::AcqRel);
        sock.unsent.fetch_sub(f.len(), Ordering::AcqRel);
        if rx.is_empty() && wr.flush().await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// A client connection as accepted: plaintext, or TLS after its handshake.
pub(crate) enum ClientStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Where a connection's output goes.
enum Output {
    /// A plaintext socket the node task may write to directly.
    Direct(OwnedWriteHalf),
    /// A TLS stream's write half, owned by the writer task.
    Stream(WriteHalf<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// What every client connection's reader shares.
#[derive(Clone)]
pub(crate) struct Readers {
    pub ev: mpsc::Sender<Event>,
    /// `jute.maxbuffer`: the largest frame read.
    pub max_frame: usize,
    pub whitelist: crate::config::FourLetterWhitelist,
    /// `globalOutstandingLimit`.
    pub throttle: Arc<Throttle>,
}

/// One client connection: the reader runs here, the writer in its own task.
pub(crate) async fn connection(
    conn: ConnId,
    stream: ClientStream,
    peer: SocketAddr,
    readers: Readers,
    x509: Option<String>,
) {
    match stream {
        ClientStream::Plain(sock) => {
            let (rd, wr) = sock.into_split();
            let out = Output::Direct(wr);
            serve(conn, rd, out, peer, readers, x509).await
        }
        ClientStream::Tls(tls) => {
            let (rd, wr) = tokio::io::split(*tls);
            let out = Output::Stream(wr);
            serve(conn, rd, out, peer, readers, x509).await
        }
    }
}

async fn serve<R: AsyncRead + Unpin>(
    conn: ConnId,
    rd: R,
    out: Output,
    peer: SocketAddr,
    readers: Readers,
    x509: Option<String>,
) {
    let ev = readers.ev.clone();
    // Pipelined requests arrive many to a read.
    let mut rd = BufReader::with_capacity(8 * 1024, rd);
    // First four bytes: a four-letter word or the length of the ConnectRequest.
    let mut head = [0u8; 4];
    match tokio::time::timeout(SESSIONLESS_TIMEOUT, rd.read_exact(&mut head)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    if let Some(word) = FOUR_LETTER_WORDS.iter().find(|w| w.as_bytes() == head) {
        let text = if readers.whitelist.allows(word) {
            // stmk carries the new trace mask, a big-endian i64, as ZooKeeper reads it.
            let mut arg = None;
            if *word == "stmk" {
                let mut mask = [0u8; 8];
                match tokio::time::timeout(SESSIONLESS_TIMEOUT, rd.read_exact(&mut mask)).await {
                    Ok(Ok(_)) => arg = Some(i64::from_be_bytes(mask)),
                    _ => return,
                }
            }
            let (tx, rx) = oneshot::channel();
            if ev
                .send(Event::FourLetter {
                    word: word.to_string(),
                    arg,
                    peer,
                    reply: tx,
                })
                .await
                .is_err()
            {
                return;
            }
            rx.await.unwrap_or_default()
        } else {
            format!("{word} is not executed because it is not in the whitelist.\n")
        };
        match out {
            Output::Direct(mut wr) => {
                let _ = wr.write_all(text.as_bytes()).await;
                let _ = wr.shutdown().await;
            }
            Output::Stream(mut wr) => {
                let _ = wr.write_all(text.as_bytes()).await;
                let _ = wr.shutdown().await;
            }
        }
        return;
    }
    let (tx, rx) = mpsc::unbounded_channel::<WriterMsg>();
    let (direct, stream) = match out {
        Output::Direct(wr) => (Some(wr), None),
        Output::Stream(wr) => (None, Some(wr)),
    };
    let sock = Arc::new(ClientSock {
        wr: direct,
        queued: AtomicUsize::new(0),
        unsent: AtomicUsize::new(0),
        outstanding: AtomicUsize::new(0),
        cut: tokio::sync::Notify::new(),
    });
    if ev
        .send(Event::Open {
            conn,
            peer,
            tx,
            sock: sock.clone(),
            x509,
        })
        .await
        .is_err()
    {
        return;
    }
    let sock_for_cut = sock.clone();
    let mut writer = match stream {
        None => tokio::spawn(client_write_loop(sock, rx)),
        Some(wr) => tokio::spawn(stream_write_loop(wr, sock, rx)),
    };
    // The connection ends when the client goes away, when its input is bad, or when the core
    // closes it (the writer then stops after flushing what was queued before the close).
    let cut = sock_for_cut.clone();
    let reason = tokio::select! {
        r = read_frames(conn, &mut rd, head, &readers, &sock_for_cut, peer) => Some(r),
        _ = &mut writer => None,
        _ = cut.cut.notified() => {
            // It does not read: waiting for the writer would wait for ever.
            writer.abort();
            Some(Err("the client does not read its replies (too many bytes unsent)".to_string()))
        }
    };
    match &reason {
        Some(Ok(())) => debug!("connection {conn} from {peer} closed by client"),
        Some(Err(why)) => warn!("closing connection {conn} from {peer}: {why}"),
        None => debug!("connection {conn} from {peer} closed by server"),
    }
    let by_client = matches!(reason, Some(Ok(())));
    let _ = ev.send(Event::Closed { conn, by_client }).await;
    if reason.is_some() && !writer.is_finished() {
        // Let the writer finish what the core queued (e.g. an error reply) unless it is stuck.
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
}

async fn read_frames<R: AsyncRead + Unpin>(
    conn: ConnId,
    rd: &mut R,
    mut head: [u8; 4],
    readers: &Readers,
    sock: &ClientSock,
    peer: SocketAddr,
) -> Result<(), String> {
    let (ev, max_frame) = (&readers.ev, readers.max_frame);
    let mut first = true;
    let mut buf = Vec::new();
    loop {
        if !first {
            readers.throttle.wait_for_room(sock).await;
            match rd.read_exact(&mut head).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
        let len = i32::from_be_bytes(head);
        if len < 0 || len as usize > max_frame {
            return Err(format!(
                "packet length {len} is out of range (jute.maxbuffer is {max_frame})"
            ));
        }
        buf.resize(len as usize, 0);
        rd.read_exact(&mut buf)
            .await
            .map_err(|e| format!("read error: {e}"))?;
        if first {
            first = false;
            let connect =
                Connect::read(&buf).map_err(|e| format!("malformed ConnectRequest: {e}"))?;
            debug!(
                "connection {conn} from {peer}: connect session 0x{:x}",
                connect.req.session_id
            );
            let at = Instant::now();
            ev.send(Event::Connect { conn, connect, at })
                .await
                .map_err(|_| "server stopping".to_string())?;
            continue;
        }
        let at = Instant::now();
        let mut r = Reader::with_max_len(&buf, max_frame);
        let h =
            RequestHeader::read(&mut r).map_err(|e| format!("malformed request header: {e}"))?;
        // Counted before the node task can answer it (which counts it off again).
        if h.xid > 0 {
            readers.throttle.read_one(sock);
        }
        match Request::read(h.r#type, &mut r) {
            Ok(req) => {
                ev.send(Event::Request {
                    conn,
                    xid: h.xid,
                    req,
                    at,
                    len: buf.len(),
                })
                .await
                .map_err(|_| "server stopping".to_string())?;
            }
            Err(DecodeError::UnknownOpCode(_)) => {
                let _ = ev.send(Event::Unimplemented { conn, xid: h.xid }).await;
                return Err(format!("unknown request type {}", h.r#type));
            }
            // Auth and SASL packets are handled before ZooKeeper's pipeline: a bad one closes
            // the connection. Anything else is answered with MarshallingError.
            Err(e) if matches!(h.r#type, op::AUTH | op::SASL) => {
                return Err(format!("malformed request (type {}): {e}", h.r#type))
            }
            Err(_) => {
                ev.send(Event::Malformed {
                    conn,
                    xid: h.xid,
                    op_type: h.r#type,
                })
                .await
                .map_err(|_| "server stopping".to_string())?;
            }
        }
    }
}
