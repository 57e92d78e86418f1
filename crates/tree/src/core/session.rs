//! Session lifetimes: touches (and the learner's report of them to the leader), revalidation on
//! the leader, expiry and the container and TTL reaper on each tick.

use super::{Core, Now, Role, Work};
use crate::tree::NodeKind;

impl Core {
    /// Learner: sessions touched since the last call, for the PING reply (§4.8).
    pub fn take_touches(&mut self) -> Vec<(i64, i32)> {
        let mut v: Vec<_> = self.touched.drain().collect();
        v.sort_unstable();
        v
    }

    /// Leader: sessions a learner reported alive.
    pub fn touch_sessions(&mut self, now: Now, touches: &[(i64, i32)]) {
        for &(id, _) in touches {
            self.sessions.touch(id, now.mono_ms);
        }
    }

    /// Leader: REVALIDATE from a learner (`owner`: its connection; `None`: our own client);
    /// true when the session is alive (it is touched, and now owned by that learner).
    pub fn check_session(
        &mut self,
        now: Now,
        session: i64,
        timeout: i32,
        owner: Option<u64>,
    ) -> bool {
        let alive = self.sessions.get(session).is_some_and(|s| !s.closing);
        if alive {
            self.sessions.set_timeout(session, timeout.max(0) as u32);
            self.sessions.touch(session, now.mono_ms);
            self.owners.insert(session, owner);
        }
        alive
    }

    /// Sessions with their timeouts (for a SNAP to a learner, or a snapshot).
    pub fn session_list(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<_> = self
            .sessions
            .iter()
            .map(|s| (s.id, s.timeout_ms as i32))
            .collect();
        v.sort_unstable();
        v
    }

    /// Extend a session's life; a learner also remembers it for the next PING to the leader.
    pub(super) fn touch(&mut self, session: i64, now: Now) -> bool {
        if !self.sessions.touch(session, now.mono_ms) {
            return false;
        }
        if self.role == Role::Learner {
            let timeout = self
                .sessions
                .get(session)
                .map_or(0, |s| s.timeout_ms as i32);
            self.touched.insert(session, timeout);
        }
        true
    }

    /// Time passes: expire sessions, reap containers and TTL nodes. Only a standalone server
    /// or the leader does either (followers learn of them as txns).
    pub fn handle_tick(&mut self, now: Now) {
        if self.role == Role::Learner {
            return;
        }
        for id in self.sessions.expire(now.mono_ms) {
            self.tally.sessions_expired += 1;
            tracing::info!("expiring session 0x{id:x}");
            self.submit(now, id, 0, Work::CloseSession, None);
            if let Some(conn) = self.session_conn.remove(&id) {
                self.close(conn);
            }
        }
        if now.mono_ms >= self.last_container_check_ms + self.cfg.container_check_interval_ms {
            self.last_container_check_ms = now.mono_ms;
            self.reap_containers(now);
        }
    }

    /// Candidates of `ContainerManager` (§3.5). A node with a prepared, not yet applied change
    /// is left for the next check: the reaper judges the applied node, and the change (a new
    /// child, a setData on a TTL node) may make it no candidate at all.
    fn reap_containers(&mut self, now: Now) {
        let mut candidates = Vec::new();
        for p in self.tree.containers() {
            let n = self.tree.get(p).expect("indexed nodes exist");
            if n.num_children() != 0 || self.outstanding.touches(p) {
                continue;
            }
            let never_used = self.cfg.container_max_never_used_interval_ms;
            if n.stat().cversion > 0
                || (never_used != 0 && now.wall_ms - n.stat().mtime > never_used as i64)
            {
                candidates.push(p.clone());
            }
        }
        if self.cfg.extended_types {
            for p in self.tree.ttls() {
                let n = self.tree.get(p).expect("indexed nodes exist");
                let NodeKind::Ttl(ttl) = n.kind() else {
                    continue;
                };
                if n.num_children() != 0 || ttl == 0 || self.outstanding.touches(p) {
                    continue;
                }
                // ZooKeeper's rule reads only the wall clock against the mtime the leader of
                // the day wrote; the monotonic time since this member applied the last change
                // must agree, so clock jumps and skew between members never reap early.
                let seen = self
                    .ttl_touched_ms
                    .get(p)
                    .copied()
                    .unwrap_or(self.ttl_base_ms);
                let idle_mono = now.mono_ms.saturating_sub(seen);
                if now.wall_ms - n.stat().mtime > ttl && idle_mono > ttl as u64 {
                    candidates.push(p.clone());
                }
            }
        }
        let per_check = (self.cfg.container_max_per_minute as u64
            * self.cfg.container_check_interval_ms.max(1)
            / 60_000)
            .max(1) as usize;
        for p in candidates.into_iter().take(per_check) {
            tracing::debug!("reaping {p}");
            self.submit(now, 0, 0, Work::DeleteContainer(p), None);
        }
    }
}
