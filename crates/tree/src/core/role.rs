//! How the core takes part in an ensemble: serving or not, standalone, leader or learner, and
//! the state it replaces when a learner loads a leader's tree.

use super::{Core, Now, Pending, Role};
use crate::session::SessionTable;
use crate::tree::DataTree;
use crate::watch::ConnId;

impl Core {
    /// Ensemble: the peer started or stopped serving clients. While not serving, every
    /// connection that sends a ConnectRequest or a request is closed (ZooKeeper closes client
    /// connections until it has synced with a leader), and on stopping, requests waiting for
    /// the ensemble are abandoned: the peer drops what it gets while not serving.
    pub fn set_serving(&mut self, on: bool) {
        self.serving = on;
        if !on {
            self.abandon_pending();
            // Every client connection is closed (ZooKeeper closes them when a server leaves
            // the broadcast phase); a request already read from one of them must not be
            // served when this node serves again, possibly under a new leader that does not
            // yet know the session has moved on (sim seed 12794: a request held through a
            // long pause was applied after the session's later writes).
            let mut open: Vec<ConnId> = (self.conns.iter())
                .filter(|(_, c)| !c.closing)
                .map(|(id, _)| *id)
                .collect();
            open.sort_unstable();
            for c in open {
                self.close(c);
            }
        }
    }

    pub fn serving(&self) -> bool {
        self.serving
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The ZAB peer changed role. Requests still waiting for a leader that is gone will never
    /// be answered by it: their connections are closed so clients retry (ZooKeeper closes
    /// every client connection when a server leaves the broadcast phase).
    pub fn set_role(&mut self, now: Now, role: Role) {
        if role == self.role {
            return;
        }
        self.role = role;
        self.owners.clear();
        self.abandon_pending();
        if role == Role::Leader {
            // A new leader gives every session a full timeout from now, as ZooKeeper's
            // fresh session tracker does.
            self.sessions.renew_all(now.mono_ms);
        }
    }

    /// Forget every request waiting for the ensemble and close the connections that sent them
    /// (the peer drops them when it stops serving; clients retry).
    pub fn abandon_pending(&mut self) {
        self.outstanding.clear();
        self.syncs.clear();
        self.revalidating.clear();
        self.touched.clear();
        let conns: Vec<ConnId> = self
            .pending
            .values()
            .flatten()
            .map(|p| match p {
                Pending::Connect { conn, .. }
                | Pending::Write { conn, .. }
                | Pending::Read { conn, .. }
                | Pending::Sync { conn, .. } => *conn,
            })
            .collect();
        self.pending.clear();
        for c in conns {
            self.close(c);
        }
    }

    /// Replace the tree (a learner loaded a SNAP or truncated its log).
    pub fn replace_state(&mut self, now: Now, tree: DataTree, sessions: &[(i64, i32)]) {
        self.tree = tree;
        let mut table = SessionTable::new(self.cfg.server_id, self.cfg.tick_ms, now.mono_ms);
        for &(id, timeout) in sessions {
            table.add(id, timeout.max(0) as u32, now.mono_ms);
        }
        self.sessions = table;
        self.owners.clear();
        self.outstanding.clear();
        self.ttl_touched_ms.clear();
        self.ttl_base_ms = now.mono_ms;
    }

    /// Ensemble: show the config string in `/zookeeper/config`.
    pub fn set_config_node(&mut self, data: Vec<u8>, config_version: i64, wall_ms: i64) {
        self.tree.set_config_node(data, config_version, wall_ms);
    }
}
