//! Watch checking. Every committed txn on the chain is turned into the events ZooKeeper's data
//! tree fires for it (`Triggers`); each client keeps the watches it set, as the Java client's
//! watch manager keeps them (`Watches`), and checks every notification and every reply against
//! them:
//!
//! * every trigger a watch of the connection matches is notified exactly once, in zxid order
//!   (events of one txn in any order), and nothing else is notified;
//! * the notification comes before any reply that shows the newer state (a reply whose header
//!   zxid is at or after the trigger);
//! * after a reconnect to any member, the SetWatches the client sends fires exactly what
//!   ZooKeeper's rules (reference §2.7) say the state at the new member's zxid calls for,
//!   before the SetWatches reply; the watches then carry on from that zxid.
//!
//! What ZooKeeper itself does not promise is not checked: a persistent watch misses the events
//! between the last zxid the client saw and the new member's zxid, and an exists watch whose
//! node was created and deleted again while the client was away stays unfired.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use corral_proto::records::{event_type, SetWatches2};
use corral_proto::txn::TxnBody;

use crate::chain::Chain;

/// An event ZooKeeper's data tree fires: (event type, path).
pub type Event = (i32, String);

/// The nodes every tree starts with.
const INITIAL: [&str; 4] = ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"];

/// The parent of an absolute path ("/" for "/" and top-level nodes).
fn parent(p: &str) -> &str {
    corral_tree::path::parent(p).unwrap_or("/")
}

/// The events of every txn on the chain, derived from the txns alone (with a model of which
/// session owns which ephemeral, for closeSession).
#[derive(Default)]
pub struct Triggers {
    /// Chain entries turned into events so far.
    done: usize,
    pub by_zxid: BTreeMap<i64, Vec<Event>>,
    per_path: HashMap<String, Vec<(i64, i32)>>,
    owners: BTreeMap<String, i64>,
}

impl Triggers {
    /// Turn the chain entries not yet seen into events; `bodies` holds every txn any node
    /// logged or applied, by (zxid, fingerprint).
    pub fn advance(
        &mut self,
        chain: &Chain,
        bodies: &HashMap<(i64, u64), TxnBody>,
    ) -> Result<(), String> {
        while self.done < chain.len() {
            let e = &chain.entries[self.done].txn;
            let body = bodies
                .get(&(e.zxid, e.fp))
                .ok_or_else(|| format!("chain entry 0x{:x} has no known txn body", e.zxid))?;
            let mut out = Vec::new();
            if !e.noop {
                self.events_of(e.session, body, &mut out);
            }
            for (ty, p) in &out {
                self.per_path
                    .entry(p.clone())
                    .or_default()
                    .push((e.zxid, *ty));
            }
            if !out.is_empty() {
                self.by_zxid.insert(e.zxid, out);
            }
            self.done += 1;
        }
        Ok(())
    }

    fn events_of(&mut self, session: i64, body: &TxnBody, out: &mut Vec<Event>) {
        let created = |p: &str, out: &mut Vec<Event>| {
            out.push((event_type::NODE_CREATED, p.to_string()));
            out.push((event_type::NODE_CHILDREN_CHANGED, parent(p).to_string()));
        };
        let deleted = |p: &str, out: &mut Vec<Event>| {
            out.push((event_type::NODE_DELETED, p.to_string()));
            out.push((event_type::NODE_CHILDREN_CHANGED, parent(p).to_string()));
        };
        match body {
            TxnBody::Create(c) => {
                if c.ephemeral {
                    self.owners.insert(c.path.clone(), session);
                }
                created(&c.path, out);
            }
            TxnBody::CreateContainer(c) => created(&c.path, out),
            TxnBody::CreateTtl(c) => created(&c.path, out),
            TxnBody::Delete(d) | TxnBody::DeleteContainer(d) => {
                self.owners.remove(&d.path);
                deleted(&d.path, out);
            }
            TxnBody::SetData(s) | TxnBody::Reconfig(s) => {
                out.push((event_type::NODE_DATA_CHANGED, s.path.clone()))
            }
            TxnBody::Multi(subs) => {
                for s in subs {
                    self.events_of(session, s, out);
                }
            }
            TxnBody::CloseSession(_) => {
                let gone: Vec<String> = (self.owners.iter())
                    .filter(|(_, o)| **o == session)
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in gone {
                    self.owners.remove(&p);
                    deleted(&p, out);
                }
            }
            TxnBody::SetAcl(_)
            | TxnBody::Check(_)
            | TxnBody::CreateSession(_)
            | TxnBody::Error(_) => {}
        }
    }

    /// Whether `p` exists once the txn at `zxid` is applied.
    fn exists_at(&self, p: &str, zxid: i64) -> bool {
        let last = self.per_path.get(p).and_then(|v| {
            v.iter()
                .rev()
                .find(|(z, t)| {
                    *z <= zxid && (*t == event_type::NODE_CREATED || *t == event_type::NODE_DELETED)
                })
                .map(|(_, t)| *t)
        });
        match last {
            Some(t) => t == event_type::NODE_CREATED,
            None => INITIAL.contains(&p),
        }
    }

    /// Whether an event of one of `types` happened to `p` in `(after, upto]`.
    fn changed(&self, p: &str, types: &[i32], after: i64, upto: i64) -> bool {
        self.per_path.get(p).is_some_and(|v| {
            v.iter()
                .any(|(z, t)| *z > after && *z <= upto && types.contains(t))
        })
    }
}

/// A SetWatches sent on a new connection, waiting for its reply.
struct Resending {
    rel: i64,
    /// Notifications received before the reply: what the SetWatches fired.
    fired: Vec<Event>,
}

/// How the server holds a watch (ZooKeeper 3.8.0 keeps one mode per connection and path in
/// each of its two tables, the latest registration's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Standard,
    Persistent,
    Recursive,
}

/// One of the server's two watch tables, for this client's connection.
#[derive(Debug, Default)]
struct Table(BTreeMap<String, Mode>);

impl Table {
    /// WatchManager.triggerWatch for one connection: the path's own watch in any mode
    /// (recursive ones not for child changes), an ancestor's only when recursive; a standard
    /// watch that matched is used up.
    fn trigger(&mut self, ty: i32, p: &str) -> bool {
        let mut hit = false;
        let mut q = p;
        loop {
            match self.0.get(q) {
                Some(Mode::Recursive) if ty != event_type::NODE_CHILDREN_CHANGED => hit = true,
                Some(Mode::Persistent) if q == p => hit = true,
                Some(Mode::Standard) if q == p => {
                    self.0.remove(q);
                    hit = true;
                }
                _ => {}
            }
            if q == "/" {
                return hit;
            }
            q = parent(q);
        }
    }
}

/// One client's watches: the lists the client keeps (as the Java client's watch manager
/// keeps them, lost with the session, resent with SetWatches after a reconnect), the server's
/// tables for the current connection, and what that connection was notified of.
#[derive(Default)]
pub struct Watches {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    recursive: BTreeSet<String>,
    data_table: Table,
    child_table: Table,
    /// Every trigger at or before this zxid is accounted for on this connection; `None`
    /// before the connection's first reply.
    cursor: Option<i64>,
    /// Notifications still due for the txn at `cursor`.
    due: Vec<Event>,
    resending: Option<Resending>,
    /// Notifications checked (for the report).
    pub notified: usize,
}

fn show(events: &[Event]) -> String {
    let names: Vec<String> = events
        .iter()
        .map(|(t, p)| {
            let t = match *t {
                event_type::NODE_CREATED => "NodeCreated",
                event_type::NODE_DELETED => "NodeDeleted",
                event_type::NODE_DATA_CHANGED => "NodeDataChanged",
                event_type::NODE_CHILDREN_CHANGED => "NodeChildrenChanged",
                _ => "?",
            };
            format!("{t} {p}")
        })
        .collect();
    format!("[{}]", names.join(", "))
}

/// What kind of watch a successful read or addWatch sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// getData, or exists on a node that exists.
    Data,
    /// exists on a missing node.
    Exist,
    /// getChildren.
    Child,
    Persistent,
    Recursive,
}

impl Watches {
    /// The watches held, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "lists: data {:?}, exist {:?}, child {:?}, persistent {:?}, recursive {:?}; \
             server tables: data {:?}, child {:?}",
            self.data,
            self.exist,
            self.child,
            self.persistent,
            self.recursive,
            self.data_table.0,
            self.child_table.0
        )
    }

    /// Whether the session holds a persistent or recursive watch on `p`.
    pub fn holds_persistent(&self, p: &str) -> bool {
        self.persistent.contains(p) || self.recursive.contains(p)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    /// The session is gone (closed or expired): so are its watches.
    pub fn clear(&mut self) {
        *self = Watches {
            notified: self.notified,
            ..Watches::default()
        };
    }

    /// A read with a watch or an addWatch succeeded: the client lists it, the server holds it.
    pub fn set(&mut self, kind: Set, path: &str) {
        let p = path.to_string();
        let (list, data, child) = match kind {
            Set::Data => (&mut self.data, Some(Mode::Standard), None),
            Set::Exist => (&mut self.exist, Some(Mode::Standard), None),
            Set::Child => (&mut self.child, None, Some(Mode::Standard)),
            Set::Persistent => (
                &mut self.persistent,
                Some(Mode::Persistent),
                Some(Mode::Persistent),
            ),
            Set::Recursive => (
                &mut self.recursive,
                Some(Mode::Recursive),
                Some(Mode::Recursive),
            ),
        };
        list.insert(p.clone());
        if let Some(m) = data {
            self.data_table.0.insert(p.clone(), m);
        }
        if let Some(m) = child {
            self.child_table.0.insert(p, m);
        }
    }

    /// Whether this connection is notified of `(ty, p)` (the data tree's triggerWatch calls
    /// for the event; one notification however many watches match).
    fn matches(&mut self, ty: i32, p: &str) -> bool {
        match ty {
            event_type::NODE_CHILDREN_CHANGED => self.child_table.trigger(ty, p),
            event_type::NODE_DELETED => {
                let d = self.data_table.trigger(ty, p);
                self.child_table.trigger(ty, p) || d
            }
            _ => self.data_table.trigger(ty, p),
        }
    }

    /// The client got `(ty, p)`: its one-shot lists drop what the event used up (as the Java
    /// client's watch manager does).
    fn delivered(&mut self, ty: i32, p: &str) {
        if ty != event_type::NODE_CHILDREN_CHANGED {
            self.data.remove(p);
            self.exist.remove(p);
        }
        if ty == event_type::NODE_CHILDREN_CHANGED || ty == event_type::NODE_DELETED {
            self.child.remove(p);
        }
    }

    /// The notifications due for the txn at `zxid`.
    fn due_at(&mut self, t: &Triggers, zxid: i64) -> Vec<Event> {
        let Some(events) = t.by_zxid.get(&zxid) else {
            return Vec::new();
        };
        (events.iter())
            .filter(|(ty, p)| self.matches(*ty, p))
            .cloned()
            .collect()
    }

    /// The connection is gone; the client keeps its lists, the server's tables go with it.
    pub fn connection_lost(&mut self) {
        self.cursor = None;
        self.due.clear();
        self.resending = None;
        self.data_table = Table::default();
        self.child_table = Table::default();
    }

    /// A new connection of a resumed session: the SetWatches to send (none without watches),
    /// relative to the last zxid the client saw.
    pub fn resend(&mut self, rel: i64) -> Option<SetWatches2> {
        if self.is_empty() {
            return None;
        }
        self.resending = Some(Resending {
            rel,
            fired: Vec::new(),
        });
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect();
        Some(SetWatches2 {
            relative_zxid: rel,
            data_watches: list(&self.data),
            exist_watches: list(&self.exist),
            child_watches: list(&self.child),
            persistent_watches: list(&self.persistent),
            persistent_recursive_watches: list(&self.recursive),
        })
    }

    /// A notification arrived.
    pub fn notified(&mut self, t: &Triggers, ev: Event) -> Result<(), String> {
        self.notified += 1;
        if let Some(r) = &mut self.resending {
            r.fired.push(ev);
            return Ok(());
        }
        let Some(mut cursor) = self.cursor else {
            return Err(format!(
                "{} on a connection with no watches set yet",
                show(&[ev])
            ));
        };
        while self.due.is_empty() {
            let Some(next) = t.by_zxid.range(cursor + 1..).next().map(|(z, _)| *z) else {
                return Err(format!(
                    "{} matches no trigger after 0x{cursor:x} (spurious or duplicate)",
                    show(&[ev])
                ));
            };
            cursor = next;
            self.cursor = Some(next);
            self.due = self.due_at(t, next);
        }
        match self.due.iter().position(|d| *d == ev) {
            Some(i) => {
                self.due.swap_remove(i);
                self.delivered(ev.0, &ev.1);
                Ok(())
            }
            None => Err(format!(
                "{} arrived while {} of the txn 0x{cursor:x} are due first",
                show(&[ev]),
                show(&self.due)
            )),
        }
    }

    /// A reply with header zxid `zxid` arrived (not the SetWatches reply, not a ping): every
    /// notification of a txn at or before it must have come first.
    pub fn replied(&mut self, t: &Triggers, zxid: i64) -> Result<(), String> {
        let Some(cursor) = self.cursor else {
            self.cursor = Some(zxid);
            return Ok(());
        };
        if !self.due.is_empty() && cursor <= zxid {
            return Err(format!(
                "reply at 0x{zxid:x} before {} of the txn 0x{cursor:x}",
                show(&self.due)
            ));
        }
        if zxid <= cursor {
            return Ok(());
        }
        let zxids: Vec<i64> = t
            .by_zxid
            .range(cursor + 1..=zxid)
            .map(|(z, _)| *z)
            .collect();
        for z in zxids {
            let due = self.due_at(t, z);
            if !due.is_empty() {
                return Err(format!(
                    "reply at 0x{zxid:x} before {} of the txn 0x{z:x}",
                    show(&due)
                ));
            }
        }
        self.cursor = Some(zxid);
        Ok(())
    }

    /// The SetWatches reply, at the new member's zxid `at`: what fired before it must be what
    /// ZooKeeper's rules call for (reference §2.7); the server holds the rest, and the
    /// watches carry on from `at`.
    pub fn resent(&mut self, t: &Triggers, err: i32, at: i64) -> Result<(), String> {
        let Some(r) = self.resending.take() else {
            return Err("a SetWatches reply with no SetWatches sent".into());
        };
        if err != 0 {
            return Err(format!("SetWatches failed with {err}"));
        }
        let rel = r.rel;
        let (dt, ct) = (&mut self.data_table.0, &mut self.child_table.0);
        let mut want = Vec::new();
        for p in &self.data {
            if !t.exists_at(p, at) {
                want.push((event_type::NODE_DELETED, p.clone()));
            } else if t.changed(
                p,
                &[event_type::NODE_CREATED, event_type::NODE_DATA_CHANGED],
                rel,
                at,
            ) {
                want.push((event_type::NODE_DATA_CHANGED, p.clone()));
            } else {
                dt.insert(p.clone(), Mode::Standard);
            }
        }
        for p in &self.exist {
            if t.exists_at(p, at) {
                want.push((event_type::NODE_CREATED, p.clone()));
            } else {
                dt.insert(p.clone(), Mode::Standard);
            }
        }
        for p in &self.child {
            if !t.exists_at(p, at) {
                want.push((event_type::NODE_DELETED, p.clone()));
            } else if t.changed(
                p,
                // pzxid starts at the creating zxid: a node created again since is newer too.
                &[event_type::NODE_CREATED, event_type::NODE_CHILDREN_CHANGED],
                rel,
                at,
            ) {
                want.push((event_type::NODE_CHILDREN_CHANGED, p.clone()));
            } else {
                ct.insert(p.clone(), Mode::Standard);
            }
        }
        for p in &self.persistent {
            dt.insert(p.clone(), Mode::Persistent);
            ct.insert(p.clone(), Mode::Persistent);
        }
        for p in &self.recursive {
            dt.insert(p.clone(), Mode::Recursive);
            ct.insert(p.clone(), Mode::Recursive);
        }
        let mut got = r.fired;
        want.sort();
        got.sort();
        if want != got {
            return Err(format!(
                "SetWatches from 0x{rel:x} answered at 0x{at:x}: fired {}, ZooKeeper's rules call for {}",
                show(&got),
                show(&want)
            ));
        }
        for (ty, p) in got {
            self.delivered(ty, &p);
        }
        self.cursor = Some(at);
        self.due.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triggers(events: &[(i64, i32, &str)]) -> Triggers {
        let mut t = Triggers::default();
        for (z, ty, p) in events {
            t.by_zxid.entry(*z).or_default().push((*ty, p.to_string()));
            t.per_path.entry(p.to_string()).or_default().push((*z, *ty));
        }
        t
    }

    const C: i32 = event_type::NODE_CREATED;
    const D: i32 = event_type::NODE_DELETED;
    const M: i32 = event_type::NODE_DATA_CHANGED;
    const K: i32 = event_type::NODE_CHILDREN_CHANGED;

    fn ev(ty: i32, p: &str) -> Event {
        (ty, p.to_string())
    }

    // A one-shot data watch is notified once, before the reply that shows the change; a second
    // notification for the same trigger is refused.
    #[test]
    fn one_shot_fires_once_before_newer_data() {
        let t = triggers(&[(5, M, "/a"), (6, M, "/a")]);
        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Data, "/a");
        w.notified(&t, ev(M, "/a")).unwrap();
        w.replied(&t, 6).unwrap();
        assert!(w.notified(&t, ev(M, "/a")).is_err(), "a duplicate");
    }

    // A delete is notified once to a connection with a data and a child watch on the node,
    // but a SetWatches after a reconnect fires each list's watch.
    #[test]
    fn delete_notified_once_per_connection() {
        let t = triggers(&[(3, C, "/b"), (9, D, "/b")]);
        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Data, "/b");
        w.set(Set::Child, "/b");
        w.notified(&t, ev(D, "/b")).unwrap();
        assert!(w.notified(&t, ev(D, "/b")).is_err());
        assert!(w.is_empty());

        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Data, "/b");
        w.set(Set::Child, "/b");
        w.connection_lost();
        w.resend(4).unwrap();
        w.notified(&t, ev(D, "/b")).unwrap();
        w.notified(&t, ev(D, "/b")).unwrap();
        w.resent(&t, 0, 9).unwrap();
    }

    // A reply at or after the trigger with the notification still missing fails.
    #[test]
    fn reply_before_notification_fails() {
        let t = triggers(&[(5, M, "/a")]);
        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Data, "/a");
        let e = w.replied(&t, 5).unwrap_err();
        assert!(e.contains("before [NodeDataChanged /a]"), "{e}");
    }

    // Notifications in the wrong zxid order fail; events of one txn may come in any order.
    #[test]
    fn zxid_order() {
        let t = triggers(&[(5, C, "/a/x"), (5, K, "/a"), (7, M, "/a/x")]);
        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Persistent, "/a");
        w.set(Set::Recursive, "/");
        w.notified(&t, ev(C, "/a/x")).unwrap();
        w.notified(&t, ev(K, "/a")).unwrap();
        w.notified(&t, ev(M, "/a/x")).unwrap();

        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Recursive, "/a");
        assert!(w.notified(&t, ev(M, "/a/x")).is_err(), "7 before 5");
    }

    // The server keeps one mode per path and table, the latest registration's (3.8.0): a
    // getData watch over a recursive one leaves only the one-shot in the data table.
    #[test]
    fn latest_mode_wins() {
        let t = triggers(&[(5, M, "/a/x"), (6, M, "/a"), (7, M, "/a/x")]);
        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Recursive, "/a");
        w.set(Set::Data, "/a");
        w.replied(&t, 5).unwrap();
        w.notified(&t, ev(M, "/a")).unwrap();
        w.replied(&t, 7).unwrap();
    }

    // A recursive watch is never told of child changes; a persistent one is, every time.
    #[test]
    fn recursive_and_persistent() {
        let t = triggers(&[(5, K, "/a"), (6, K, "/a")]);
        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Recursive, "/");
        assert!(w.notified(&t, ev(K, "/a")).is_err());
        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Persistent, "/a");
        w.notified(&t, ev(K, "/a")).unwrap();
        w.notified(&t, ev(K, "/a")).unwrap();
        w.replied(&t, 6).unwrap();
    }

    // After a reconnect, SetWatches must fire what the state at the new member calls for
    // (deleted, changed since rel, created) and nothing else.
    #[test]
    fn resend_fires_by_state() {
        let t = triggers(&[(3, C, "/a"), (5, M, "/a"), (6, C, "/b"), (7, K, "/c")]);
        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Data, "/a");
        w.set(Set::Exist, "/b");
        w.set(Set::Child, "/zookeeper");
        w.connection_lost();
        let s = w.resend(4).unwrap();
        assert_eq!(s.exist_watches, ["/b"]);
        w.notified(&t, ev(C, "/b")).unwrap();
        let e = w.resent(&t, 0, 7).unwrap_err();
        assert!(e.contains("[NodeCreated /b, NodeDataChanged /a]"), "{e}");

        let mut w = Watches::default();
        w.replied(&t, 4).unwrap();
        w.set(Set::Data, "/a");
        w.set(Set::Exist, "/b");
        w.connection_lost();
        w.resend(4).unwrap();
        w.notified(&t, ev(C, "/b")).unwrap();
        w.notified(&t, ev(M, "/a")).unwrap();
        w.resent(&t, 0, 7).unwrap();
        assert!(w.is_empty());
    }
}
