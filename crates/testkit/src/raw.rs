//! A small blocking client for a ZooKeeper client port at the frame level: connect, send bytes or
//! a length-prefixed frame, and read one frame back with a cap on its length and a deadline.
//!
//! Every client frame is a big-endian i32 length, then that many bytes (reference §2.1). What is
//! inside a frame (ConnectRequest, RequestHeader and record, ReplyHeader and record) is the
//! caller's business: the tests encode it with corral-proto or by hand, so this module does not
//! depend on corral's own codec and can check it.
//!
//! Deadlines bound a whole operation, not each `read`: a server that trickles bytes still fails
//! the test in time. Reads and writes set the socket's timeouts to what is left.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The frame length cap most tests read with: 1 MiB, a little over ZooKeeper's default
/// `jute.maxbuffer` (0xfffff).
pub const FRAME_BYTES_MAX: usize = 1 << 20;

/// The time left until `deadline`; `TimedOut` once it has passed.
pub fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
    } else {
        Ok(left)
    }
}

/// Connects with `TCP_NODELAY` (every request is small and waits for its reply).
pub fn connect(addr: SocketAddr, deadline: Instant) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, remaining(deadline)?)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Writes all of `data`: a frame, or any bytes at all (a torn or malformed frame).
pub fn write_all_by(stream: &mut TcpStream, data: &[u8], deadline: Instant) -> io::Result<()> {
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    stream.write_all(data)
}

/// Sends `body` as one frame: its length, then the body, in one write.
pub fn send_frame(stream: &mut TcpStream, body: &[u8], deadline: Instant) -> io::Result<()> {
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(body);
    write_all_by(stream, &frame, deadline)
}

/// Fills `buf`. The server closing the connection first is `UnexpectedEof`.
pub fn read_exact_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {filled} of {} bytes", buf.len()),
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one length-prefixed frame and returns its body. A length outside
/// `0..=frame_bytes_max` is `InvalidData`, reported before anything is allocated for it.
pub fn read_frame(
    stream: &mut TcpStream,
    frame_bytes_max: usize,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    read_exact_by(stream, &mut len, deadline)?;
    let len = i32::from_be_bytes(len);
    let Some(len) = usize::try_from(len).ok().filter(|&n| n <= frame_bytes_max) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("implausible frame length {len}"),
        ));
    };
    let mut body = vec![0u8; len];
    read_exact_by(stream, &mut body, deadline)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;

    /// A frame written by `send_frame` reads back whole; a length over the cap or a negative
    /// length is refused before its body is read; a close mid-frame is `UnexpectedEof`.
    #[test]
    fn frames_round_trip_and_bad_lengths_are_refused() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut client = connect(addr, deadline).unwrap();
        let (mut server, _) = listener.accept().unwrap();

        send_frame(&mut client, b"hello", deadline).unwrap();
        assert_eq!(read_frame(&mut server, 5, deadline).unwrap(), b"hello");

        send_frame(&mut client, b"too long", deadline).unwrap();
        let e = read_frame(&mut server, 7, deadline).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let mut rest = [0u8; 8];
        read_exact_by(&mut server, &mut rest, deadline).unwrap();

        write_all_by(&mut client, &(-1i32).to_be_bytes(), deadline).unwrap();
        let e = read_frame(&mut server, FRAME_BYTES_MAX, deadline).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");

        write_all_by(&mut client, &[0, 0, 0, 9, 1, 2], deadline).unwrap();
        drop(client);
        let e = read_frame(&mut server, FRAME_BYTES_MAX, deadline).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }
}
