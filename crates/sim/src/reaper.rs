//! The reaper's deletes against simulated time. The linearizability checker knows which nodes
//! the reaper may take (empty containers that had a child, empty TTL nodes) but not when: that
//! needs clocks. Here every committed deleteContainer of a TTL node must come at least its TTL
//! after the node last changed (created or setData), in true simulated time, whatever the
//! nodes' wall clocks did (skew between members, jumps of up to minutes).
//!
//! Bounds used: a txn's `first_seen` time is no later than any member applied it and no
//! earlier than its leader prepared it. So if the reaper's leader waited the TTL after it
//! applied the last change, `first_seen(delete) - first_seen(change) >= ttl`.

use std::collections::HashMap;

use corral_proto::txn::TxnBody;

use crate::chain::Chain;

/// What the reaper did in one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub ttl_nodes: usize,
    pub containers: usize,
}

#[derive(Default)]
struct Tracked {
    /// TTL in ms, for TTL nodes.
    ttl: Option<i64>,
    /// `first_seen` of the txn that last created the node or set its data.
    changed_ms: u64,
}

/// Walk the committed chain; fail on a TTL node reaped before its time.
pub fn check(
    chain: &Chain,
    bodies: &HashMap<(i64, u64), TxnBody>,
    first_seen: &HashMap<(i64, u64), u64>,
) -> Result<Reaped, String> {
    let mut nodes: HashMap<String, Tracked> = HashMap::new();
    let mut reaped = Reaped::default();
    for e in &chain.entries {
        let t = &e.txn;
        if t.noop {
            continue;
        }
        let key = (t.zxid, t.fp);
        let (Some(body), Some(&at)) = (bodies.get(&key), first_seen.get(&key)) else {
            return Err(format!("chain entry 0x{:x} has no known txn", t.zxid));
        };
        let mut subs = vec![body];
        if let TxnBody::Multi(v) = body {
            subs = v.iter().collect();
        }
        for b in subs {
            match b {
                TxnBody::Create(c) => {
                    nodes.insert(
                        c.path.clone(),
                        Tracked {
                            ttl: None,
                            changed_ms: at,
                        },
                    );
                }
                TxnBody::CreateContainer(c) => {
                    nodes.insert(
                        c.path.clone(),
                        Tracked {
                            ttl: None,
                            changed_ms: at,
                        },
                    );
                }
                TxnBody::CreateTtl(c) => {
                    let tracked = Tracked {
                        ttl: Some(c.ttl),
                        changed_ms: at,
                    };
                    nodes.insert(c.path.clone(), tracked);
                }
                TxnBody::SetData(s) => {
                    if let Some(n) = nodes.get_mut(&s.path) {
                        n.changed_ms = at;
                    }
                }
                TxnBody::Delete(d) => {
                    nodes.remove(&d.path);
                }
                TxnBody::DeleteContainer(d) => {
                    let n = nodes.remove(&d.path);
                    match n.and_then(|n| n.ttl.map(|ttl| (ttl, n.changed_ms))) {
                        Some((ttl, changed)) => {
                            let idle = at.saturating_sub(changed);
                            if (idle as i64) < ttl {
                                return Err(format!(
                                    "TTL node {} (ttl {ttl} ms) reaped at 0x{:x} only {idle} ms \
                                     after it last changed",
                                    d.path, t.zxid
                                ));
                            }
                            reaped.ttl_nodes += 1;
                        }
                        None => reaped.containers += 1,
                    }
                }
                _ => {}
            }
        }
    }
    Ok(reaped)
}
