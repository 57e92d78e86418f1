//! The one global history every node's applied txns must be a prefix of. It grows when a node
//! applies a committed txn beyond it (or a leader starts serving with a longer history); a
//! node whose history disagrees with it at any position fails the run. Each position also
//! remembers the tree digest the first node to reach it had, so later nodes at the same zxid
//! must have the same digest.

use std::collections::BTreeMap;

use crate::mirror::GhostEntry;

#[derive(Debug, Clone)]
pub struct ChainEntry {
    pub txn: GhostEntry,
    pub digest: Option<u64>,
}

#[derive(Default)]
pub struct Chain {
    pub entries: Vec<ChainEntry>,
    index: BTreeMap<i64, usize>,
}

impl Chain {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, zxid: i64) -> Option<&ChainEntry> {
        self.index.get(&zxid).map(|i| &self.entries[*i])
    }

    pub fn last_zxid(&self) -> i64 {
        self.entries.last().map_or(0, |e| e.txn.zxid)
    }

    /// Check `ghost[from..]` against the chain, extending it. Returns the new verified length.
    pub fn verify(&mut self, ghost: &[GhostEntry], from: usize) -> Result<usize, String> {
        for (i, g) in ghost.iter().enumerate().skip(from) {
            match self.entries.get(i) {
                Some(c) if c.txn == *g => {}
                Some(c) => {
                    return Err(format!(
                        "applied #{i} is 0x{:x} (session 0x{:x} cxid {} type {}), the chain has \
                         0x{:x} (session 0x{:x} cxid {} type {})",
                        g.zxid,
                        g.session,
                        g.cxid,
                        g.ty,
                        c.txn.zxid,
                        c.txn.session,
                        c.txn.cxid,
                        c.txn.ty
                    ))
                }
                None => {
                    let last = self.last_zxid();
                    if g.zxid <= last {
                        return Err(format!(
                            "chain would go from 0x{last:x} to 0x{:x}: zxids must rise",
                            g.zxid
                        ));
                    }
                    self.index.insert(g.zxid, self.entries.len());
                    self.entries.push(ChainEntry {
                        txn: *g,
                        digest: None,
                    });
                }
            }
        }
        Ok(ghost.len())
    }

    /// Check `ghost[from..]` against the chain where the chain reaches, without extending it
    /// (a history not known to be committed, e.g. a SNAP from a leader whose epoch may never
    /// be established). Returns how much of it is now verified.
    pub fn agrees(&self, ghost: &[GhostEntry], from: usize) -> Result<usize, String> {
        let upto = ghost.len().min(self.entries.len());
        for (i, g) in ghost.iter().enumerate().take(upto).skip(from) {
            let c = &self.entries[i].txn;
            if c != g {
                return Err(format!(
                    "applied #{i} is 0x{:x} (session 0x{:x} cxid {} type {}), the chain has \
                     0x{:x} (session 0x{:x} cxid {} type {})",
                    g.zxid, g.session, g.cxid, g.ty, c.zxid, c.session, c.cxid, c.ty
                ));
            }
        }
        Ok(upto.max(from))
    }

    /// A node whose whole history is on the chain has `digest` at position `len - 1`.
    pub fn check_digest(&mut self, len: usize, digest: u64) -> Result<(), String> {
        if len == 0 {
            return Ok(());
        }
        let e = &mut self.entries[len - 1];
        match e.digest {
            None => {
                e.digest = Some(digest);
                Ok(())
            }
            Some(d) if d == digest => Ok(()),
            Some(d) => Err(format!(
                "tree digest at 0x{:x} is 0x{digest:x}, another node had 0x{d:x}",
                e.txn.zxid
            )),
        }
    }
}
