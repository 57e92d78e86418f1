//! Watch registry: which connection watches which path, in which mode, and who is told what
//! when a txn changes the tree. Modelled on ZooKeeper 3.8.0's `WatchManager` (one instance for
//! data watches, one for child watches; the server keeps both). Plain data, no I/O.

use std::collections::{BTreeSet, HashMap, HashSet};

use corral_proto::records::event_type;

/// A connection, as the watch registry and the core know it.
pub type ConnId = u64;

/// How a watch was registered on a (connection, path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// One-shot: removed when it fires.
    Standard,
    Persistent,
    PersistentRecursive,
}

/// A path ZooKeeper's parent walk cannot handle (no '/' where one is needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAbsolute;

/// One registry (data or child watches).
#[derive(Debug, Default)]
pub struct WatchManager {
    table: HashMap<String, HashMap<ConnId, WatchMode>>,
    by_conn: HashMap<ConnId, HashSet<String>>,
    /// Number of recursive registrations; when zero, triggers need not walk up the parents.
    recursive: usize,
}

impl WatchManager {
    /// Register (or re-register, the latest mode wins as in 3.8.0) a watch.
    pub fn add(&mut self, path: &str, conn: ConnId, mode: WatchMode) {
        let entry = self.table.entry(path.to_string()).or_default();
        if let Some(old) = entry.insert(conn, mode) {
            if old == WatchMode::PersistentRecursive {
                self.recursive -= 1;
            }
        }
        if mode == WatchMode::PersistentRecursive {
            self.recursive += 1;
        }
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_string());
    }

    /// Remove one connection's watch on `path`; false when it had none.
    pub fn remove(&mut self, path: &str, conn: ConnId) -> bool {
        let Some(paths) = self.by_conn.get_mut(&conn) else {
            return false;
        };
        if !paths.remove(path) {
            return false;
        }
        if paths.is_empty() {
            self.by_conn.remove(&conn);
        }
        self.remove_from_table(path, conn)
    }

    fn remove_from_table(&mut self, path: &str, conn: ConnId) -> bool {
        let Some(set) = self.table.get_mut(path) else {
            return false;
        };
        let Some(mode) = set.remove(&conn) else {
            return false;
        };
        if mode == WatchMode::PersistentRecursive {
            self.recursive -= 1;
        }
        if set.is_empty() {
            self.table.remove(path);
        }
        true
    }

    /// 3.8.0's `containsWatcher`: true when *any* connection watches exactly `path` (ZooKeeper
    /// does not look at which connection), or when this connection's own watch there is
    /// recursive. `Err` where ZooKeeper's parent walk fails on a path that is not absolute (it
    /// then answers MarshallingError): always for a non-empty path without '/', and for paths
    /// like "a/b" when recursive watches exist.
    pub fn contains(&self, path: &str, conn: ConnId) -> Result<bool, NotAbsolute> {
        if path.is_empty() {
            return Ok(false);
        }
        let step = |p: &str| -> Result<String, NotAbsolute> {
            if p == "/" {
                return Ok(String::new());
            }
            let i = p.rfind('/').ok_or(NotAbsolute)?;
            Ok(if i == 0 {
                "/".to_string()
            } else {
                p[..i].to_string()
            })
        };
        let mut next = step(path)?;
        if self
            .table
            .get(path)
            .is_some_and(|s| !s.is_empty() || s.contains_key(&conn))
        {
            return Ok(true);
        }
        if self.recursive > 0 {
            while !next.is_empty() {
                next = step(&next)?;
            }
        }
        Ok(false)
    }

    /// Forget every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        if let Some(paths) = self.by_conn.remove(&conn) {
            for p in paths {
                self.remove_from_table(&p, conn);
            }
        }
    }

    /// Fire `event` for `path`. Returns every connection that matched (used to suppress the
    /// duplicate NodeDeleted from the child registry); the caller notifies those not in
    /// `suppress`. One-shot watches that matched are removed.
    pub fn trigger(&mut self, path: &str, event: i32) -> BTreeSet<ConnId> {
        let mut matched = BTreeSet::new();
        let mut at_parent = false;
        let mut cur: Option<&str> = Some(path);
        while let Some(p) = cur {
            if let Some(set) = self.table.get_mut(p) {
                let mut fired_once = Vec::new();
                for (&conn, &mode) in set.iter() {
                    match mode {
                        WatchMode::PersistentRecursive
                            if event != event_type::NODE_CHILDREN_CHANGED =>
                        {
                            matched.insert(conn);
                        }
                        WatchMode::Persistent if !at_parent => {
                            matched.insert(conn);
                        }
                        WatchMode::Standard if !at_parent => {
                            matched.insert(conn);
                            fired_once.push(conn);
                        }
                        _ => {}
                    }
                }
                for conn in fired_once {
                    set.remove(&conn);
                    if let Some(paths) = self.by_conn.get_mut(&conn) {
                        paths.remove(p);
                        if paths.is_empty() {
                            self.by_conn.remove(&conn);
                        }
                    }
                }
                if set.is_empty() {
                    self.table.remove(p);
                }
            }
            if self.recursive == 0 || p == "/" {
                break;
            }
            at_parent = true;
            cur = crate::path::parent(p);
        }
        matched
    }

    /// Number of distinct watched paths.
    pub fn path_count(&self) -> usize {
        self.table.len()
    }

    /// Total number of (connection, path) registrations.
    pub fn watch_count(&self) -> usize {
        self.table.values().map(|s| s.len()).sum()
    }

    /// Number of connections with at least one watch.
    pub fn conn_count(&self) -> usize {
        self.by_conn.len()
    }

    /// Paths watched by each connection (for `wchc`).
    pub fn by_conn(&self) -> impl Iterator<Item = (ConnId, &HashSet<String>)> {
        self.by_conn.iter().map(|(c, p)| (*c, p))
    }

    /// Connections watching each path (for `wchp`).
    pub fn by_path(&self) -> impl Iterator<Item = (&String, Vec<ConnId>)> {
        self.table
            .iter()
            .map(|(p, s)| (p, s.keys().copied().collect()))
    }

    /// Paths this connection watches (for SetWatches bookkeeping and tests).
    pub fn paths_of(&self, conn: ConnId) -> Vec<String> {
        self.by_conn
            .get(&conn)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_proto::records::event_type::*;

    // One-shot watches fire once; persistent ones keep firing.
    #[test]
    fn one_shot_and_persistent() {
        let mut w = WatchManager::default();
        w.add("/a", 1, WatchMode::Standard);
        w.add("/a", 2, WatchMode::Persistent);
        assert_eq!(
            w.trigger("/a", NODE_DATA_CHANGED)
                .into_iter()
                .collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            w.trigger("/a", NODE_DATA_CHANGED)
                .into_iter()
                .collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(w.watch_count(), 1);
    }

    // Recursive watches see descendants, except NodeChildrenChanged; plain watches on a parent
    // do not see a child's events.
    #[test]
    fn recursive_scope() {
        let mut w = WatchManager::default();
        w.add("/a", 1, WatchMode::PersistentRecursive);
        w.add("/a", 2, WatchMode::Standard);
        assert_eq!(
            w.trigger("/a/b/c", NODE_CREATED)
                .into_iter()
                .collect::<Vec<_>>(),
            [1]
        );
        assert!(w.trigger("/a", NODE_CHILDREN_CHANGED).into_iter().eq([2]));
        assert!(w.trigger("/a", NODE_DATA_CHANGED).into_iter().eq([1]));
        w.remove_conn(1);
        assert!(w.trigger("/a/b", NODE_CREATED).is_empty());
        assert_eq!(w.watch_count(), 0);
    }

    // The latest registration's mode wins (3.8.0 WatcherModeManager).
    #[test]
    fn latest_mode_wins() {
        let mut w = WatchManager::default();
        w.add("/a", 1, WatchMode::Persistent);
        w.add("/a", 1, WatchMode::Standard);
        assert_eq!(w.trigger("/a", NODE_DATA_CHANGED).len(), 1);
        assert!(w.trigger("/a", NODE_DATA_CHANGED).is_empty());
        assert!(!w.remove("/a", 1));
    }
}
