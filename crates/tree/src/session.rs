//! The session table: ids, passwords, negotiated timeouts and expiry buckets, as ZooKeeper's
//! `SessionTrackerImpl` keeps them (reference §3.7). Time is always passed in, in milliseconds
//! of a monotonic clock chosen by the caller.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Password seed constant of `ZooKeeperServer.generatePasswd`.
const PASSWORD_SEED_XOR: i64 = 0xB341_5C00;

/// The 16-byte password of a session, derived like ZooKeeper derives it (a Java
/// `Random(sessionId ^ 0xB3415C00).nextBytes(16)`), so any server computes the same value.
pub fn session_password(session_id: i64) -> [u8; 16] {
    const MULT: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut state = ((session_id ^ PASSWORD_SEED_XOR) as u64 ^ MULT) & MASK;
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(4) {
        state = (state.wrapping_mul(MULT).wrapping_add(0xB)) & MASK;
        let v = (state >> 16) as u32;
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// First session id of a server: server id in the top byte, the low 40 bits of the clock's ms
/// in the next five, zero in the last two (`SessionTrackerImpl.initializeNextSessionId`).
pub fn initial_session_id(server_id: u8, now_ms: u64) -> i64 {
    let base = ((now_ms << 24) >> 8) as i64;
    base | ((server_id as i64) << 56)
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: u32,
    pub expire_at_ms: u64,
    /// Set once a closeSession is under way; such sessions accept no new ephemerals.
    pub closing: bool,
}

#[derive(Debug)]
pub struct SessionTable {
    tick_ms: u64,
    next_id: i64,
    sessions: HashMap<i64, Session>,
    buckets: BTreeMap<u64, HashSet<i64>>,
}

impl SessionTable {
    pub fn new(server_id: u8, tick_ms: u32, now_ms: u64) -> SessionTable {
        SessionTable {
            tick_ms: tick_ms.max(1) as u64,
            next_id: initial_session_id(server_id, now_ms),
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    fn bucket_for(&self, t: u64) -> u64 {
        (t / self.tick_ms + 1) * self.tick_ms
    }

    /// Allocate a new session id (the caller then commits a createSession txn).
    pub fn next_session_id(&mut self) -> i64 {
        let mut id = self.next_id;
        if id == i64::MIN {
            id += 1;
        }
        self.next_id = id.wrapping_add(1);
        id
    }

    /// Record a session (from a createSession txn) with its timeout.
    pub fn add(&mut self, id: i64, timeout_ms: u32, now_ms: u64) {
        self.remove(id);
        let expire = self.bucket_for(now_ms + timeout_ms as u64);
        self.sessions.insert(
            id,
            Session {
                id,
                timeout_ms,
                expire_at_ms: expire,
                closing: false,
            },
        );
        self.buckets.entry(expire).or_default().insert(id);
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn contains(&self, id: i64) -> bool {
        self.sessions.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// Extend a session's life; false when the session is unknown or closing.
    pub fn touch(&mut self, id: i64, now_ms: u64) -> bool {
        let Some(s) = self.sessions.get(&id) else {
            return false;
        };
        if s.closing {
            return false;
        }
        let expire = self.bucket_for(now_ms + s.timeout_ms as u64);
        let old = s.expire_at_ms;
        if expire <= old {
            return true;
        }
        if let Some(b) = self.buckets.get_mut(&old) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&old);
            }
        }
        self.buckets.entry(expire).or_default().insert(id);
        self.sessions
            .get_mut(&id)
            .expect("checked above")
            .expire_at_ms = expire;
        true
    }

    /// Give every session a full timeout from `now_ms` (a new leader's tracker).
    pub fn renew_all(&mut self, now_ms: u64) {
        let all: Vec<(i64, u32, bool)> = self
            .sessions
            .values()
            .map(|s| (s.id, s.timeout_ms, s.closing))
            .collect();
        for (id, timeout, closing) in all {
            self.add(id, timeout, now_ms);
            if closing {
                self.set_closing(id);
            }
        }
    }

    /// Change the timeout on resume (the request is re-negotiated).
    pub fn set_timeout(&mut self, id: i64, timeout_ms: u32) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.timeout_ms = timeout_ms;
        }
    }

    pub fn set_closing(&mut self, id: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    pub fn remove(&mut self, id: i64) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        if let Some(b) = self.buckets.get_mut(&s.expire_at_ms) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&s.expire_at_ms);
            }
        }
        Some(s)
    }

    /// Sessions whose expiry time has passed, marked closing; the caller submits their
    /// closeSession txns.
    pub fn expire(&mut self, now_ms: u64) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some((&t, _)) = self.buckets.first_key_value() {
            if t > now_ms {
                break;
            }
            let ids = self.buckets.remove(&t).expect("key just seen");
            let mut ids: Vec<i64> = ids.into_iter().collect();
            ids.sort_unstable();
            for id in ids {
                if let Some(s) = self.sessions.get_mut(&id) {
                    if !s.closing {
                        s.closing = true;
                        out.push(id);
                    }
                }
            }
        }
        out
    }

    /// When the next session may expire (for the caller's timer).
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // Passwords equal the verified Java Random output (reference §3.7, §7).
    #[test]
    fn password_matches_zookeeper() {
        assert_eq!(
            hex(&session_password(0x10000598c4a0000)),
            "a4c3ed7361d6c6592239b1451228c4a2"
        );
        assert_eq!(
            hex(&session_password(0x10000598c4a0001)),
            "b7e4e7730122a69e177c1871e6b0d86f"
        );
    }

    // Ids carry the server id in the top byte and zero low 16 bits, then count up.
    #[test]
    fn id_layout() {
        let mut t = SessionTable::new(1, 2000, 0x598c4a);
        assert_eq!(t.next_session_id(), 0x10000598c4a0000);
        assert_eq!(t.next_session_id(), 0x10000598c4a0001);
    }

    // Expiry is bucketed to the next tick boundary after now+timeout; touching postpones it.
    #[test]
    fn expiry_buckets() {
        let mut t = SessionTable::new(1, 2000, 0);
        t.add(7, 4000, 1000);
        assert_eq!(t.get(7).unwrap().expire_at_ms, 6000);
        assert!(t.expire(5999).is_empty());
        assert!(t.touch(7, 3000));
        assert!(t.expire(6000).is_empty());
        assert_eq!(t.expire(8000), vec![7]);
        assert!(!t.touch(7, 8000), "a closing session cannot be revived");
    }
}
