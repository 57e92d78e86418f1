//! A TCP proxy for the quorum and election links between ensemble members, so a test can cut a
//! member off the others (a network partition) without root: no network namespaces, iptables or
//! `tc`, just listeners in the test process.
//!
//! Every directed pair of members (i → j) gets its own listeners, one for j's quorum port and
//! one for j's election port, and member i's zoo.cfg names those listeners as j's addresses. A
//! connection i opens to "j" therefore lands here first; knowing both ends, the proxy can refuse
//! or blackhole exactly the links that touch a cut member. It forwards bytes unchanged and never
//! looks at them. Plain threads and blocking sockets: a handful of links, all on 127.0.0.1.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How a member is cut off by [`Ensemble::cut`](crate::Ensemble::cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Its links are closed at once and new ones are accepted and closed at once, as when the
    /// peer's host is up but refuses (a crashed process behind a live kernel).
    Reset,
    /// Its links stay open but carry nothing in either direction, and new ones are accepted and
    /// then ignored, as when packets are dropped on the way: the peers only notice through
    /// their timeouts (`syncLimit`, the election's). Data sent meanwhile is lost, so healing
    /// closes these links; the members reconnect.
    Silent,
}

/// One proxied connection: `client` is the side the dialling member opened to us, `server`
/// the side we opened to the real port (none for a link accepted while cut silently).
struct Link {
    from: u64,
    to: u64,
    client: TcpStream,
    server: Option<TcpStream>,
    silent: AtomicBool,
    closed: AtomicBool,
}

impl Link {
    fn touches(&self, sid: u64) -> bool {
        self.from == sid || self.to == sid
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        if let Some(s) = &self.server {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    cuts: Mutex<HashMap<u64, Cut>>,
    links: Mutex<Vec<Arc<Link>>>,
}

impl Shared {
    fn cut_of(&self, from: u64, to: u64) -> Option<Cut> {
        let cuts = self.cuts.lock().expect("proxy lock");
        cuts.get(&from).or_else(|| cuts.get(&to)).copied()
    }

    fn register(&self, link: Arc<Link>) {
        let mut links = self.links.lock().expect("proxy lock");
        links.retain(|l| !l.closed.load(Ordering::SeqCst));
        links.push(link);
    }
}

/// The proxy's listeners and links. Dropping it closes everything.
#[derive(Default)]
pub(crate) struct LinkProxy {
    shared: Arc<Shared>,
    ports: Vec<u16>,
}

impl LinkProxy {
    /// Listens on a free loopback port for connections from member `from` to member `to` and
    /// forwards them to `127.0.0.1:target`. Returns the port to write into `from`'s zoo.cfg.
    pub(crate) fn listen(&mut self, from: u64, to: u64, target: u16) -> io::Result<u16> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::clone(&self.shared);
        thread::Builder::new()
            .name(format!("proxy-{from}-{to}-{target}"))
            .spawn(move || accept_loop(listener, from, to, target, shared))?;
        self.ports.push(port);
        Ok(port)
    }

    /// Cuts member `sid` off: every link from or to it, now and until [`heal`](Self::heal).
    pub(crate) fn cut(&self, sid: u64, how: Cut) {
        self.shared
            .cuts
            .lock()
            .expect("proxy lock")
            .insert(sid, how);
        for link in self.shared.links.lock().expect("proxy lock").iter() {
            if link.touches(sid) {
                match how {
                    Cut::Reset => link.close(),
                    Cut::Silent => link.silent.store(true, Ordering::SeqCst),
                }
            }
        }
    }

    /// Undoes [`cut`](Self::cut): new links are forwarded again, and links that were kept open
    /// silently are closed (bytes were lost on them), so the members dial afresh.
    pub(crate) fn heal(&self, sid: u64) {
        self.shared.cuts.lock().expect("proxy lock").remove(&sid);
        for link in self.shared.links.lock().expect("proxy lock").iter() {
            if link.touches(sid) && link.silent.load(Ordering::SeqCst) {
                link.close();
            }
        }
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for link in self.shared.links.lock().expect("proxy lock").drain(..) {
            link.close();
        }
        // Wake the accept loops so they see `stop` and return.
        for port in &self.ports {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        }
    }
}

fn accept_loop(listener: TcpListener, from: u64, to: u64, target: u16, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = stream else { continue };
        let _ = client.set_nodelay(true);
        match shared.cut_of(from, to) {
            Some(Cut::Reset) => drop(client),
            Some(Cut::Silent) => {
                let Ok(reader) = client.try_clone() else {
                    continue;
                };
                let link = Arc::new(Link {
                    from,
                    to,
                    client,
                    server: None,
                    silent: AtomicBool::new(true),
                    closed: AtomicBool::new(false),
                });
                shared.register(Arc::clone(&link));
                let _ = thread::Builder::new()
                    .name(format!("proxy-drain-{from}-{to}"))
                    .spawn(move || pump(reader, None, link));
            }
            None => {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, target));
                let Ok(server) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
                    continue; // the member is down: the dialler sees its connection close
                };
                let _ = server.set_nodelay(true);
                let clones = (
                    client.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                    server.try_clone(),
                );
                let (Ok(c_read), Ok(c_write), Ok(s_read), Ok(s_write)) = clones else {
                    continue;
                };
                let link = Arc::new(Link {
                    from,
                    to,
                    client,
                    server: Some(server),
                    silent: AtomicBool::new(false),
                    closed: AtomicBool::new(false),
                });
                shared.register(Arc::clone(&link));
                let up = Arc::clone(&link);
                let _ = thread::Builder::new()
                    .name(format!("proxy-up-{from}-{to}"))
                    .spawn(move || pump(c_read, Some(s_write), up));
                let _ = thread::Builder::new()
                    .name(format!("proxy-down-{from}-{to}"))
                    .spawn(move || pump(s_read, Some(c_write), link));
            }
        }
    }
}

/// Copies `src` to `dst` until either side closes, discarding the bytes while the link is
/// silent; then closes the whole link, unless it is silent: a silent link shows nothing to the
/// other side, not even a close (until it is healed).
fn pump(mut src: TcpStream, mut dst: Option<TcpStream>, link: Arc<Link>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if link.silent.load(Ordering::SeqCst) {
            continue;
        }
        let Some(dst) = dst.as_mut() else { continue };
        if dst.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if !link.silent.load(Ordering::SeqCst) {
        link.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An echo server on a free port; returns the port.
    fn echo() -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn dial(port: u16) -> TcpStream {
        let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s
    }

    /// Sends `msg` and returns what comes back within the read timeout: `Ok(None)` on EOF,
    /// `Err` on a timeout or reset.
    fn round_trip(s: &mut TcpStream, msg: &[u8]) -> io::Result<Option<Vec<u8>>> {
        s.write_all(msg)?;
        let mut buf = vec![0u8; msg.len()];
        let mut got = 0;
        while got < msg.len() {
            match s.read(&mut buf[got..])? {
                0 => return Ok(None),
                n => got += n,
            }
        }
        Ok(Some(buf))
    }

    #[test]
    fn forwards_cuts_and_heals() {
        let target = echo();
        let mut proxy = LinkProxy::default();
        let port = proxy.listen(1, 2, target).unwrap();
        let mut a = dial(port);
        assert_eq!(round_trip(&mut a, b"hello").unwrap().unwrap(), b"hello");

        // Silent: the open link carries nothing and shows no close; new links are ignored.
        proxy.cut(2, Cut::Silent);
        assert!(round_trip(&mut a, b"lost").is_err(), "silent link answered");
        let mut b = dial(port);
        assert!(
            round_trip(&mut b, b"lost").is_err(),
            "new link answered while silent"
        );
        // Healing closes the silent links; new ones work again.
        proxy.heal(2);
        let mut buf = [0u8; 16];
        let started = Instant::now();
        assert!(matches!(a.read(&mut buf), Ok(0) | Err(_)));
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "closed, not timed out"
        );
        let mut c = dial(port);
        assert_eq!(round_trip(&mut c, b"again").unwrap().unwrap(), b"again");

        // Reset: links close at once, new ones are closed on accept.
        proxy.cut(1, Cut::Reset);
        assert!(!matches!(round_trip(&mut c, b"x"), Ok(Some(_))));
        let mut d = dial(port);
        assert!(!matches!(round_trip(&mut d, b"x"), Ok(Some(_))));
        proxy.heal(1);
        let mut e = dial(port);
        assert_eq!(round_trip(&mut e, b"back").unwrap().unwrap(), b"back");
    }
}
