//! The checker: static checks (zxid uniqueness, real-time order, per-session order, sync), a
//! zxid-ordered replay through `model::Tree` with a bounded DFS that places unknown writes, and
//! the watch check for the chosen placement. Owns no I/O and no clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::history::{AddWatchMode, Call, EventKind, History, Op, Received, Res, Ret, SystemWhat};
use crate::limits::{SEARCH_STEPS_MAX, UNKNOWN_WRITES_MAX};
use crate::model::{parent, Tree, Trigger};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub ops: usize,
    /// Completed (known) writes, failed ones included.
    pub writes: usize,
    /// Completed reads.
    pub reads: usize,
    /// Watch events in the session streams.
    pub events: usize,
    pub unknown_applied: usize,
    pub unknown_dropped: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// Two writes (or a write and a system write) replied with the same zxid.
    DuplicateZxid,
    /// Write A completed before write B was invoked, yet zxid(A) >= zxid(B).
    RealTimeOrder,
    /// Replaying writes in zxid order gives a different result than the client saw.
    WriteResult,
    /// A read's result differs from the state at its zxid.
    ReadResult,
    /// A session's replies went back in time or broke FIFO order.
    SessionOrder,
    /// A sync replied with a zxid older than a write that completed before it was invoked.
    SyncStale,
    /// A read after a sync in the same session is older than what the sync guaranteed.
    ReadAfterSyncStale,
    /// A watch event the client should have received before a newer reply never came.
    WatchMissing,
    /// A watch event came, but only after a reply with a zxid >= the triggering write's.
    WatchLate,
    /// A one-shot registration delivered the same event twice.
    WatchDuplicate,
    /// A watch event came in a different order than the writes that triggered them.
    WatchOrder,
    /// A watch event no registration and write explains.
    WatchSpurious,
    /// `committed_zxids` disagrees with the writes.
    CommittedZxid,
    /// The server deleted a node its reaper may not delete (not an empty container that once
    /// had a child, nor an empty TTL node).
    SystemWrite,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    /// Indices into `History::ops` involved, most relevant first.
    pub ops: Vec<usize>,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(Summary),
    Violation(Violation),
    /// The search bound was hit: neither pass nor fail.
    Inconclusive {
        reason: String,
    },
    /// The history itself is malformed or uses something the checker does not model
    /// (containers, TTLs, Check outside multi, nested multi).
    Invalid {
        reason: String,
    },
}

fn hex(z: i64) -> String {
    format!("{z:#x}")
}

fn describe(i: usize, op: &Op) -> String {
    let c = match &op.call {
        Call::Create { path, .. } => format!("create {path}"),
        Call::SetData { path, version, .. } => format!("setData {path} v{version}"),
        Call::Delete { path, version } => format!("delete {path} v{version}"),
        Call::SetAcl { path, version, .. } => format!("setACL {path} v{version}"),
        Call::GetAcl { path } => format!("getACL {path}"),
        Call::Check { path, .. } => format!("check {path}"),
        Call::Multi(v) => format!("multi({} ops)", v.len()),
        Call::GetData { path, .. } => format!("getData {path}"),
        Call::Exists { path, .. } => format!("exists {path}"),
        Call::GetChildren { path, .. } => format!("getChildren {path}"),
        Call::Sync { path } => format!("sync {path}"),
        Call::CloseSession => "closeSession".to_string(),
        Call::AddWatch { path, .. } => format!("addWatch {path}"),
    };
    match op.zxid() {
        Some(z) => format!(
            "op #{i} ({c}, session {}, zxid {})",
            hex(op.session),
            hex(z)
        ),
        None => format!("op #{i} ({c}, session {}, unknown)", hex(op.session)),
    }
}

fn violation(kind: ViolationKind, ops: Vec<usize>, message: String) -> Violation {
    Violation { kind, ops, message }
}

/// Check `history` against ZooKeeper's guarantees. See the crate docs for what is checked.
pub fn check(history: &History) -> Outcome {
    if let Err(reason) = validate(history) {
        return Outcome::Invalid { reason };
    }
    let mut ctx = Ctx::new(history);
    if let Err(v) = ctx.static_checks() {
        return Outcome::Violation(v);
    }
    if let Some(v) = ctx.window_violation.take() {
        return Outcome::Violation(v);
    }
    ctx.search()
}

fn validate(h: &History) -> Result<(), String> {
    fn call_ok(c: &Call, in_multi: bool) -> Result<(), String> {
        let world_only = |acl: &[crate::Acl]| {
            if acl.iter().all(|a| a.scheme == "world" && a.id == "anyone") {
                Ok(())
            } else {
                Err("unsupported: ACL entries other than world:anyone".to_string())
            }
        };
        match c {
            Call::Create { acl, .. } | Call::SetAcl { acl, .. } if world_only(acl).is_err() => {
                world_only(acl)
            }
            Call::Check { .. } if !in_multi => Err("malformed: Check outside multi".into()),
            Call::Multi(v) if in_multi => {
                let _ = v;
                Err("malformed: nested multi".into())
            }
            Call::Multi(v) => v.iter().try_for_each(|s| call_ok(s, true)),
            Call::GetData { .. }
            | Call::Exists { .. }
            | Call::GetChildren { .. }
            | Call::Sync { .. }
            | Call::CloseSession
            | Call::AddWatch { .. }
            | Call::GetAcl { .. }
            | Call::SetAcl { .. }
                if in_multi =>
            {
                Err("unsupported: reads, setACL, sync and closeSession inside multi".into())
            }
            _ => Ok(()),
        }
    }
    for (i, op) in h.ops.iter().enumerate() {
        call_ok(&op.call, false).map_err(|e| format!("op #{i}: {e}"))?;
        match (&op.ret, op.complete) {
            (Ret::Unknown, None) => {}
            (Ret::Done { .. }, Some(c)) if c >= op.invoke => {}
            _ => {
                return Err(format!(
                    "malformed: op #{i}: complete must be Some (>= invoke) iff Done"
                ))
            }
        }
    }
    let mut seen = vec![false; h.ops.len()];
    for s in &h.sessions {
        for r in &s.stream {
            if let Received::Reply(i) = r {
                let op = h
                    .ops
                    .get(*i)
                    .ok_or(format!("malformed: stream reply #{i} out of range"))?;
                if op.session != s.id || op.ret == Ret::Unknown || seen[*i] {
                    return Err(format!(
                        "malformed: stream of session {} has reply #{i} of another session, of an unknown op, or twice",
                        hex(s.id)
                    ));
                }
                seen[*i] = true;
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    // Field order gives the sort: zxid, then writes before reads.
    Write(usize),
    System(usize),
    Slot,
    Read(usize),
}

struct Unknown {
    op: usize,
    /// Placed zxid must be > lo and <= hi.
    lo: i64,
    hi: i64,
}

struct Ctx<'a> {
    h: &'a History,
    /// Per session, completed-or-not ops in the order the client sent them.
    session_ops: BTreeMap<i64, Vec<usize>>,
    /// Completed known writes sorted by completion time, with the running max zxid (and op).
    writes_by_complete: Vec<(u64, i64, usize)>,
    prefix_max: Vec<(i64, usize)>,
    events: Vec<(i64, Ev)>,
    unknowns: Vec<Unknown>,
    /// A lost write the servers committed outside its window.
    window_violation: Option<Violation>,
}

impl<'a> Ctx<'a> {
    fn new(h: &'a History) -> Ctx<'a> {
        let mut session_ops: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, op) in h.ops.iter().enumerate() {
            session_ops.entry(op.session).or_default().push(i);
        }
        for v in session_ops.values_mut() {
            v.sort_by_key(|&i| (h.ops[i].invoke, i));
        }
        // Where a stream exists, it fixes the order of completed ops.
        for s in &h.sessions {
            let replies: Vec<usize> = s
                .stream
                .iter()
                .filter_map(|r| match r {
                    Received::Reply(i) => Some(*i),
                    _ => None,
                })
                .collect();
            if let Some(v) = session_ops.get_mut(&s.id) {
                let unknown: Vec<usize> = v
                    .iter()
                    .copied()
                    .filter(|&i| h.ops[i].ret == Ret::Unknown)
                    .collect();
                let mut merged = replies.clone();
                // Unknown ops go by invoke time among the replied ones.
                for u in unknown {
                    let at = merged
                        .iter()
                        .position(|&j| (h.ops[j].invoke, j) > (h.ops[u].invoke, u))
                        .unwrap_or(merged.len());
                    merged.insert(at, u);
                }
                for &i in v.iter() {
                    if !merged.contains(&i) {
                        merged.push(i);
                    }
                }
                *v = merged;
            }
        }
        let mut writes_by_complete: Vec<(u64, i64, usize)> = h
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.call.is_write())
            .filter_map(|(i, op)| Some((op.complete?, op.zxid()?, i)))
            .collect();
        writes_by_complete.sort();
        let mut prefix_max = Vec::with_capacity(writes_by_complete.len());
        let mut best = (i64::MIN, usize::MAX);
        for &(_, z, i) in &writes_by_complete {
            if z > best.0 {
                best = (z, i);
            }
            prefix_max.push(best);
        }
        let mut events = Vec::new();
        for (i, op) in h.ops.iter().enumerate() {
            if let Some(z) = op.zxid() {
                if op.call.is_write() {
                    events.push((z, Ev::Write(i)));
                } else if op.call.is_read() {
                    events.push((z, Ev::Read(i)));
                }
            }
        }
        for (i, s) in h.system_writes.iter().enumerate() {
            events.push((s.zxid, Ev::System(i)));
        }
        if let Some(c) = &h.committed_zxids {
            let used: BTreeSet<i64> = events
                .iter()
                .filter(|(_, e)| !matches!(e, Ev::Read(_)))
                .map(|(z, _)| *z)
                .collect();
            for &z in c {
                if !used.contains(&z) {
                    events.push((z, Ev::Slot));
                }
            }
        }
        events.sort();
        events.dedup();
        let mut ctx = Ctx {
            h,
            session_ops,
            writes_by_complete,
            prefix_max,
            events,
            unknowns: Vec::new(),
            window_violation: None,
        };
        match ctx.unknown_windows() {
            Ok(u) => ctx.unknowns = u,
            Err(v) => ctx.window_violation = Some(v),
        }
        ctx
    }

    /// Max zxid (and op) of known writes completed strictly before `t`.
    fn max_write_before(&self, t: u64) -> Option<(i64, usize)> {
        let n = self.writes_by_complete.partition_point(|&(c, _, _)| c < t);
        if n == 0 {
            None
        } else {
            Some(self.prefix_max[n - 1])
        }
    }

    fn unknown_windows(&self) -> Result<Vec<Unknown>, Violation> {
        let mut out = Vec::new();
        for ops in self.session_ops.values() {
            for (k, &i) in ops.iter().enumerate() {
                let op = &self.h.ops[i];
                if op.ret != Ret::Unknown || !op.call.is_write() {
                    continue;
                }
                let mut lo = self.max_write_before(op.invoke).map_or(0, |(z, _)| z);
                for &j in &ops[..k] {
                    if let Some(z) = self.h.ops[j].zxid() {
                        lo = lo.max(z);
                    }
                }
                // Its reply was lost with its connection, so the session's later ops went out on
                // a new one. A later write or sync bounds it (the leader prepared it before the
                // session moved, or it failed with SessionMoved); a later read does not: it may
                // be served by a member that has not applied it yet.
                let mut hi = i64::MAX;
                for &j in &ops[k + 1..] {
                    let later = &self.h.ops[j];
                    if let Some(z) = later.zxid() {
                        if later.call.is_write() {
                            hi = hi.min(z - 1);
                        } else if matches!(later.call, Call::Sync { .. }) {
                            hi = hi.min(z);
                        }
                    }
                }
                let pinned = self.h.lost_write_zxids.iter().find(|(j, _)| *j == i);
                if pinned.is_none() && self.h.lost_writes_complete {
                    continue;
                }
                if let Some(&(_, z)) = pinned {
                    if !(lo < z && z <= hi) {
                        return Err(violation(
                            ViolationKind::RealTimeOrder,
                            vec![i],
                            format!(
                                "{}: its reply was lost, the servers committed it at {}, outside \
                                 ({}, {}] that real time and its session's order allow",
                                describe(i, op),
                                hex(z),
                                hex(lo),
                                hex(hi)
                            ),
                        ));
                    }
                    lo = z - 1;
                    hi = z;
                }
                out.push(Unknown { op: i, lo, hi });
            }
        }
        out.sort_by_key(|u| (self.h.ops[u.op].invoke, u.op));
        Ok(out)
    }

    fn static_checks(&self) -> Result<(), Violation> {
        let h = self.h;
        // 1. Unique write zxids.
        let mut by_zxid: HashMap<i64, String> = HashMap::new();
        let mut first_op: HashMap<i64, usize> = HashMap::new();
        for (i, op) in h.ops.iter().enumerate() {
            let (Some(z), true) = (op.zxid(), op.call.is_write()) else {
                continue;
            };
            if let Some(prev) = by_zxid.insert(z, describe(i, op)) {
                let mut ops = vec![i];
                ops.extend(first_op.get(&z));
                return Err(violation(
                    ViolationKind::DuplicateZxid,
                    ops,
                    format!(
                        "{} and {prev} both committed at zxid {}",
                        describe(i, op),
                        hex(z)
                    ),
                ));
            }
            first_op.insert(z, i);
        }
        for s in &h.system_writes {
            if let Some(prev) = by_zxid.insert(s.zxid, format!("system write {:?}", s.what)) {
                return Err(violation(
                    ViolationKind::DuplicateZxid,
                    first_op.get(&s.zxid).into_iter().copied().collect(),
                    format!(
                        "system write {:?} and {prev} both at zxid {}",
                        s.what,
                        hex(s.zxid)
                    ),
                ));
            }
        }
        if let Some(c) = &h.committed_zxids {
            let set: BTreeSet<i64> = c.iter().copied().collect();
            for (z, what) in &by_zxid {
                if !set.contains(z) {
                    return Err(violation(
                        ViolationKind::CommittedZxid,
                        first_op.get(z).into_iter().copied().collect(),
                        format!(
                            "{what} replied zxid {} which is not in committed_zxids",
                            hex(*z)
                        ),
                    ));
                }
            }
        }
        // 2. Real time between known writes.
        for (i, op) in h.ops.iter().enumerate() {
            let (Some(z), true) = (op.zxid(), op.call.is_write()) else {
                continue;
            };
            if let Some((m, a)) = self.max_write_before(op.invoke) {
                if m >= z {
                    return Err(violation(
                        ViolationKind::RealTimeOrder,
                        vec![i, a],
                        format!(
                            "{} completed at {} ms, before {} was invoked at {} ms, but its zxid is not smaller",
                            describe(a, &h.ops[a]),
                            h.ops[a].complete.unwrap_or(0),
                            describe(i, op),
                            op.invoke
                        ),
                    ));
                }
            }
        }
        // 3. Sync, then reads after it in the same session.
        for (s, ops) in &self.session_ops {
            for (k, &i) in ops.iter().enumerate() {
                let op = &h.ops[i];
                let (Call::Sync { .. }, Some(z)) = (&op.call, op.zxid()) else {
                    continue;
                };
                let Some((m, a)) = self.max_write_before(op.invoke) else {
                    continue;
                };
                if z < m {
                    return Err(violation(
                        ViolationKind::SyncStale,
                        vec![i, a],
                        format!(
                            "{} replied zxid {} but {} completed before the sync was invoked",
                            describe(i, op),
                            hex(z),
                            describe(a, &h.ops[a])
                        ),
                    ));
                }
                for &j in &ops[k + 1..] {
                    let r = &h.ops[j];
                    if let (true, Some(rz)) = (r.call.is_read(), r.zxid()) {
                        if rz < m {
                            return Err(violation(
                                ViolationKind::ReadAfterSyncStale,
                                vec![j, i, a],
                                format!(
                                    "session {}: {} follows {} but read state {} older than {} which completed before the sync",
                                    hex(*s),
                                    describe(j, r),
                                    describe(i, op),
                                    hex(rz),
                                    describe(a, &h.ops[a])
                                ),
                            ));
                        }
                    }
                }
            }
        }
        // 4. Per-session order: FIFO replies, zxids never go back.
        for (s, ops) in &self.session_ops {
            let mut last: Option<(i64, usize)> = None;
            for &i in ops {
                let op = &h.ops[i];
                let Some(z) = op.zxid() else { continue };
                if let Some((lz, li)) = last {
                    let back = z < lz;
                    let fifo = op.invoke < h.ops[li].invoke;
                    if back || fifo {
                        return Err(violation(
                            ViolationKind::SessionOrder,
                            vec![i, li],
                            format!(
                                "session {}: {} (invoked {} ms) was answered after {} (invoked {} ms){}",
                                hex(*s),
                                describe(i, op),
                                op.invoke,
                                describe(li, &h.ops[li]),
                                h.ops[li].invoke,
                                if back { ": zxid went back in time" } else { ": replies out of FIFO order" }
                            ),
                        ));
                    }
                }
                last = Some((z, i));
            }
        }
        Ok(())
    }
}

/// A search choice: `None` = place nothing more at this boundary.
type Choice = Option<usize>;

struct Frame {
    pos: usize,
    cur: i64,
    mark: usize,
    placements: usize,
    triggers: usize,
    options: Vec<Choice>,
    next: usize,
}

/// One txn's watch effects, in zxid order.
struct TxnTriggers {
    zxid: i64,
    triggers: Vec<Trigger>,
    closes: Option<i64>,
}

impl<'a> Ctx<'a> {
    fn search(&self) -> Outcome {
        let h = self.h;
        if self.unknowns.len() > UNKNOWN_WRITES_MAX {
            return Outcome::Inconclusive {
                reason: format!(
                    "{} unknown writes exceed UNKNOWN_WRITES_MAX {}",
                    self.unknowns.len(),
                    UNKNOWN_WRITES_MAX
                ),
            };
        }
        let committed_mode = h.committed_zxids.is_some();
        let mut tree = Tree::new(&h.initial);
        let mut pos = 0usize;
        let mut cur = 0i64;
        let mut boundary_done = false;
        let mut placed: Vec<Option<i64>> = vec![None; self.unknowns.len()];
        let mut placements: Vec<usize> = Vec::new();
        let mut trig: Vec<TxnTriggers> = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut deepest: Option<(usize, Violation)> = None;
        let mut steps = 0u64;
        loop {
            steps += 1;
            if steps > SEARCH_STEPS_MAX {
                return Outcome::Inconclusive {
                    reason: format!(
                        "search over {} unknown writes hit SEARCH_STEPS_MAX {}; deepest failure so far: {}",
                        self.unknowns.len(),
                        SEARCH_STEPS_MAX,
                        deepest.map_or("none".into(), |(_, v)| v.to_string())
                    ),
                };
            }
            let failure: Option<Violation>;
            if !boundary_done {
                match self.options(pos, cur, &placed, committed_mode) {
                    Err(v) => failure = Some(v),
                    Ok(opts) => {
                        if opts.len() > 1 {
                            stack.push(Frame {
                                pos,
                                cur,
                                mark: tree.mark(),
                                placements: placements.len(),
                                triggers: trig.len(),
                                options: opts.clone(),
                                next: 1,
                            });
                        } else if stack.is_empty() {
                            tree.commit();
                        }
                        self.take(
                            opts[0],
                            pos,
                            &mut cur,
                            &mut boundary_done,
                            &mut tree,
                            &mut placed,
                            &mut placements,
                            &mut trig,
                        );
                        continue;
                    }
                }
            } else if pos == self.events.len() {
                match self.watch_check(&trig, &placed) {
                    Ok(events) => {
                        let applied = placed.iter().filter(|p| p.is_some()).count();
                        return Outcome::Ok(Summary {
                            ops: h.ops.len(),
                            writes: h
                                .ops
                                .iter()
                                .filter(|o| o.call.is_write() && o.zxid().is_some())
                                .count(),
                            reads: h
                                .ops
                                .iter()
                                .filter(|o| o.call.is_read() && o.zxid().is_some())
                                .count(),
                            events,
                            unknown_applied: applied,
                            unknown_dropped: self.unknowns.len() - applied,
                        });
                    }
                    Err(v) => failure = Some(v),
                }
            } else {
                match self.replay(pos, &mut tree, &mut trig) {
                    Ok(z) => {
                        cur = cur.max(z);
                        pos += 1;
                        boundary_done = false;
                        continue;
                    }
                    Err(v) => failure = Some(v),
                }
            }
            let v = failure.expect("every path above either continues or fails");
            let depth = if boundary_done && pos == self.events.len() {
                pos + 1
            } else {
                pos
            };
            if deepest.as_ref().is_none_or(|(d, _)| depth > *d) {
                deepest = Some((depth, v));
            }
            // Backtrack to the newest choice with options left.
            loop {
                let Some(f) = stack.last_mut() else {
                    return Outcome::Violation(deepest.expect("just set").1);
                };
                if f.next >= f.options.len() {
                    stack.pop();
                    continue;
                }
                let choice = f.options[f.next];
                f.next += 1;
                tree.rollback(f.mark);
                for &u in &placements[f.placements..] {
                    placed[u] = None;
                }
                placements.truncate(f.placements);
                trig.truncate(f.triggers);
                pos = f.pos;
                cur = f.cur;
                boundary_done = false;
                self.take(
                    choice,
                    pos,
                    &mut cur,
                    &mut boundary_done,
                    &mut tree,
                    &mut placed,
                    &mut placements,
                    &mut trig,
                );
                break;
            }
        }
    }

    /// The choices at the boundary before event `pos`.
    fn options(
        &self,
        pos: usize,
        cur: i64,
        placed: &[Option<i64>],
        committed_mode: bool,
    ) -> Result<Vec<Choice>, Violation> {
        let ev = self.events.get(pos);
        if committed_mode {
            let Some(&(z, Ev::Slot)) = ev else {
                return Ok(vec![None]);
            };
            if cur >= z {
                return Ok(vec![None]); // already filled
            }
            let opts: Vec<Choice> = (0..self.unknowns.len())
                .filter(|&u| {
                    placed[u].is_none() && self.unknowns[u].lo < z && z <= self.unknowns[u].hi
                })
                .map(Some)
                .collect();
            if opts.is_empty() {
                return Err(violation(
                    ViolationKind::CommittedZxid,
                    vec![],
                    format!("zxid {} was committed but no known, unknown or system write can explain it", hex(z)),
                ));
            }
            return Ok(opts);
        }
        let upper = match ev {
            None => i64::MAX,
            Some(&(z, Ev::Read(_))) => z,
            Some(&(z, _)) => z - 1,
        };
        let mut opts = vec![None];
        for (u, w) in self.unknowns.iter().enumerate() {
            let z = (cur + 1).max(w.lo + 1);
            if placed[u].is_none() && z <= upper && z <= w.hi {
                opts.push(Some(u));
            }
        }
        Ok(opts)
    }

    #[allow(clippy::too_many_arguments)]
    fn take(
        &self,
        choice: Choice,
        pos: usize,
        cur: &mut i64,
        boundary_done: &mut bool,
        tree: &mut Tree,
        placed: &mut [Option<i64>],
        placements: &mut Vec<usize>,
        trig: &mut Vec<TxnTriggers>,
    ) {
        let Some(u) = choice else {
            *boundary_done = true;
            return;
        };
        let w = &self.unknowns[u];
        let z = match self.events.get(pos) {
            Some(&(z, Ev::Slot)) => z,
            _ => (*cur + 1).max(w.lo + 1),
        };
        let op = &self.h.ops[w.op];
        let (_, t) = tree.apply(&op.call, op.session, z);
        let closes = matches!(op.call, Call::CloseSession).then_some(op.session);
        trig.push(TxnTriggers {
            zxid: z,
            triggers: t,
            closes,
        });
        placed[u] = Some(z);
        placements.push(u);
        *cur = z;
        if matches!(self.events.get(pos), Some((_, Ev::Slot))) {
            *boundary_done = true;
        }
    }

    /// Replay event `pos`; returns its zxid.
    fn replay(
        &self,
        pos: usize,
        tree: &mut Tree,
        trig: &mut Vec<TxnTriggers>,
    ) -> Result<i64, Violation> {
        let (z, ev) = self.events[pos];
        match ev {
            Ev::Slot => Ok(z),
            Ev::System(k) => {
                let t = match &self.h.system_writes[k].what {
                    SystemWhat::SessionClosed { session } => {
                        let t = tree.close_session(*session, z);
                        trig.push(TxnTriggers {
                            zxid: z,
                            triggers: t,
                            closes: Some(*session),
                        });
                        return Ok(z);
                    }
                    SystemWhat::Deleted { path } => tree.system_delete(path, z).map_err(|m| {
                        violation(
                            ViolationKind::SystemWrite,
                            Vec::new(),
                            format!("system write at zxid {}: {m}", hex(z)),
                        )
                    })?,
                };
                trig.push(TxnTriggers {
                    zxid: z,
                    triggers: t,
                    closes: None,
                });
                Ok(z)
            }
            Ev::Write(i) => {
                let op = &self.h.ops[i];
                let Ret::Done { result, .. } = &op.ret else {
                    unreachable!("events hold completed ops")
                };
                if session_moved(result) {
                    // The server owning the session decided (the client had resumed it through
                    // another server since): an error txn, nothing applied, nothing triggered.
                    return Ok(z);
                }
                let (expected, t) = tree.apply(&op.call, op.session, z);
                if !res_matches(&expected, result) {
                    return Err(violation(
                        ViolationKind::WriteResult,
                        vec![i],
                        format!(
                            "{}: replaying writes in zxid order gives {expected:?}, client saw {result:?}",
                            describe(i, op)
                        ),
                    ));
                }
                let closes = matches!(op.call, Call::CloseSession).then_some(op.session);
                trig.push(TxnTriggers {
                    zxid: z,
                    triggers: t,
                    closes,
                });
                Ok(z)
            }
            Ev::Read(i) => {
                let op = &self.h.ops[i];
                let expected = tree.read(&op.call);
                let Ret::Done { result, .. } = &op.ret else {
                    unreachable!("events hold completed ops")
                };
                if !res_matches(&expected, result) {
                    return Err(violation(
                        ViolationKind::ReadResult,
                        vec![i],
                        format!(
                            "{}: the state after zxid {} gives {expected:?}, client saw {result:?}",
                            describe(i, op),
                            hex(z)
                        ),
                    ));
                }
                Ok(z)
            }
        }
    }
}

/// Does the observed result equal the model's, ignoring timestamps, children order and stats the
/// client did not ask for?
/// SessionMoved (-118), for a single op or as a multi's first error: which server owns a
/// session is outside the model (ZooKeeper's `SessionTracker.checkSession(id, owner)`), so such
/// a write is accepted as one that changed nothing.
fn session_moved(r: &Res) -> bool {
    const SESSION_MOVED: i32 = -118;
    match r {
        Res::Err(SESSION_MOVED) => true,
        Res::Multi(items) => items
            .iter()
            .find(|x| !matches!(x, Res::Err(0)))
            .is_some_and(|x| *x == Res::Err(SESSION_MOVED)),
        _ => false,
    }
}

pub fn res_matches(expected: &Res, observed: &Res) -> bool {
    match (expected, observed) {
        (Res::Created { path: a, stat: sa }, Res::Created { path: b, stat: sb }) => {
            a == b
                && match (sa, sb) {
                    (_, None) => true,
                    (Some(x), Some(y)) => x.same_as(y),
                    (None, Some(_)) => false,
                }
        }
        (Res::Stat(a), Res::Stat(b)) => a.same_as(b),
        (Res::Data { data: a, stat: sa }, Res::Data { data: b, stat: sb }) => {
            a == b && sa.same_as(sb)
        }
        (Res::Acl { acl: a, stat: sa }, Res::Acl { acl: b, stat: sb }) => a == b && sa.same_as(sb),
        (Res::Exists(a), Res::Exists(b)) => match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => x.same_as(y),
            _ => false,
        },
        (Res::Children(a), Res::Children(b)) => {
            let mut a = a.clone();
            let mut b = b.clone();
            a.sort();
            b.sort();
            a == b
        }
        (Res::Multi(a), Res::Multi(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| res_matches(x, y))
        }
        (a, b) => a == b,
    }
}

#[derive(Default)]
struct SessionWatches {
    data: BTreeMap<String, usize>,
    child: BTreeMap<String, usize>,
    persistent: BTreeMap<String, usize>,
    recursive: BTreeMap<String, usize>,
}

struct Expected {
    zxid: i64,
    kind: EventKind,
    path: String,
    /// The op whose registration fires.
    reg: usize,
    /// From the txn that closed the session itself: may or may not arrive.
    optional: bool,
}

impl SessionWatches {
    /// ZooKeeper's dataWatches.triggerWatch for one session: one event at most.
    fn data_call(&mut self, path: &str) -> Option<usize> {
        let one = self.data.remove(path);
        let pers = self.persistent.get(path).copied();
        let mut rec = None;
        let mut p = Some(path);
        while let Some(q) = p {
            if let Some(&r) = self.recursive.get(q) {
                rec = Some(r);
                break;
            }
            p = parent(q);
        }
        one.or(pers).or(rec)
    }

    /// childWatches.triggerWatch: recursive watches are not in the child manager.
    fn child_call(&mut self, path: &str) -> Option<usize> {
        let one = self.child.remove(path);
        one.or(self.persistent.get(path).copied())
    }
}

impl<'a> Ctx<'a> {
    /// Expected events per session for this placement, then each stream matched against them.
    /// Returns the number of events seen.
    fn watch_check(
        &self,
        trig: &[TxnTriggers],
        placed: &[Option<i64>],
    ) -> Result<usize, Violation> {
        let h = self.h;
        let _ = placed;
        if h.watches_checked_elsewhere {
            return Ok(0);
        }
        let mut regs: Vec<(i64, usize)> = Vec::new();
        for (i, op) in h.ops.iter().enumerate() {
            let Ret::Done { zxid, result } = &op.ret else {
                continue;
            };
            let registers = matches!(
                (&op.call, result),
                (Call::GetData { watch: true, .. }, Res::Data { .. })
                    | (Call::Exists { watch: true, .. }, Res::Exists(_))
                    | (Call::GetChildren { watch: true, .. }, Res::Children(_))
                    | (Call::AddWatch { .. }, Res::WatchAdded)
            );
            if registers {
                regs.push((*zxid, i));
            }
        }
        regs.sort();
        let mut state: HashMap<i64, SessionWatches> = HashMap::new();
        let mut closed: HashMap<i64, i64> = HashMap::new();
        let mut expected: HashMap<i64, Vec<Expected>> = HashMap::new();
        let mut r = 0;
        for t in trig {
            while r < regs.len() && regs[r].0 < t.zxid {
                let i = regs[r].1;
                let op = &h.ops[i];
                r += 1;
                if closed.contains_key(&op.session) {
                    continue;
                }
                let w = state.entry(op.session).or_default();
                match &op.call {
                    Call::GetData { path, .. } | Call::Exists { path, .. } => {
                        w.data.insert(path.clone(), i)
                    }
                    Call::GetChildren { path, .. } => w.child.insert(path.clone(), i),
                    Call::AddWatch {
                        path,
                        mode: AddWatchMode::Persistent,
                    } => w.persistent.insert(path.clone(), i),
                    Call::AddWatch {
                        path,
                        mode: AddWatchMode::PersistentRecursive,
                    } => w.recursive.insert(path.clone(), i),
                    _ => None,
                };
            }
            for (s, w) in state.iter_mut() {
                let optional = t.closes == Some(*s);
                let out = expected.entry(*s).or_default();
                let mut push = |kind, path: &str, reg| {
                    out.push(Expected {
                        zxid: t.zxid,
                        kind,
                        path: path.to_string(),
                        reg,
                        optional,
                    })
                };
                for tr in &t.triggers {
                    match tr {
                        Trigger::Created(p) => {
                            if let Some(reg) = w.data_call(p) {
                                push(EventKind::NodeCreated, p, reg);
                            }
                            let par = parent(p).unwrap_or("/");
                            if let Some(reg) = w.child_call(par) {
                                push(EventKind::NodeChildrenChanged, par, reg);
                            }
                        }
                        Trigger::Deleted(p) => {
                            let d = w.data_call(p);
                            let c = w.child_call(p);
                            if let Some(reg) = d.or(c) {
                                push(EventKind::NodeDeleted, p, reg);
                            }
                            let par = parent(p).unwrap_or("/");
                            if let Some(reg) = w.child_call(par) {
                                push(EventKind::NodeChildrenChanged, par, reg);
                            }
                        }
                        Trigger::Changed(p) => {
                            if let Some(reg) = w.data_call(p) {
                                push(EventKind::NodeDataChanged, p, reg);
                            }
                        }
                    }
                }
            }
            if let Some(s) = t.closes {
                state.remove(&s);
                closed.insert(s, t.zxid);
            }
        }
        let mut events = 0;
        for s in &h.sessions {
            let exp = expected.remove(&s.id).unwrap_or_default();
            events += self.match_stream(s.id, &s.stream, &exp)?;
        }
        Ok(events)
    }

    fn match_stream(
        &self,
        session: i64,
        stream: &[Received],
        exp: &[Expected],
    ) -> Result<usize, Violation> {
        let h = self.h;
        let mut matched = vec![false; exp.len()];
        let mut next = 0usize;
        let mut reconnect_pending = false;
        let mut events = 0;
        for (at, item) in stream.iter().enumerate() {
            match item {
                Received::Reconnected => reconnect_pending = true,
                Received::Reply(i) => {
                    let Some(z) = h.ops[*i].zxid() else { continue };
                    if reconnect_pending {
                        // SetWatches on reconnect may coalesce or drop what fired while the
                        // client was away; forgive what is older than the first reply after it.
                        for j in next..exp.len() {
                            if exp[j].zxid <= z {
                                matched[j] = true;
                            }
                        }
                        reconnect_pending = false;
                    }
                    while next < exp.len() && exp[next].zxid <= z {
                        let e = &exp[next];
                        if !matched[next] && !e.optional {
                            let late = stream[at..].iter().any(
                                |r| matches!(r, Received::Event { kind, path } if *kind == e.kind && *path == e.path),
                            );
                            let kind = if late {
                                ViolationKind::WatchLate
                            } else {
                                ViolationKind::WatchMissing
                            };
                            return Err(violation(
                                kind,
                                vec![*i, e.reg],
                                format!(
                                    "session {}: watch set by {} should fire {:?} {} for the write at zxid {}, but {} was received {} it",
                                    hex(session),
                                    describe(e.reg, &h.ops[e.reg]),
                                    e.kind,
                                    e.path,
                                    hex(e.zxid),
                                    describe(*i, &h.ops[*i]),
                                    if late { "before" } else { "without" }
                                ),
                            ));
                        }
                        next += 1;
                    }
                }
                Received::Event { kind, path } => {
                    events += 1;
                    if reconnect_pending {
                        if let Some(j) =
                            (next..exp.len()).find(|&j| !matched[j] && exp[j].path == *path)
                        {
                            for k in next..=j {
                                if exp[k].path == *path {
                                    matched[k] = true;
                                }
                            }
                            continue;
                        }
                    }
                    let required = (next..exp.len())
                        .find(|&j| !matched[j] && !exp[j].optional)
                        .map(|j| exp[j].zxid);
                    let hit = (next..exp.len()).find(|&j| {
                        !matched[j]
                            && required.is_none_or(|w| exp[j].zxid <= w)
                            && exp[j].kind == *kind
                            && exp[j].path == *path
                    });
                    if let Some(j) = hit {
                        matched[j] = true;
                        while next < exp.len() && matched[next] {
                            next += 1;
                        }
                        continue;
                    }
                    let same = |j: &usize| exp[*j].kind == *kind && exp[*j].path == *path;
                    let (vk, what) = if let Some(j) =
                        (next..exp.len()).find(|j| !matched[*j] && same(j))
                    {
                        (ViolationKind::WatchOrder, format!("it belongs to the write at zxid {} but earlier events are still owed", hex(exp[j].zxid)))
                    } else if (0..exp.len()).any(|j| matched[j] && same(&j)) {
                        (
                            ViolationKind::WatchDuplicate,
                            "it was already delivered for its registration".to_string(),
                        )
                    } else {
                        (
                            ViolationKind::WatchSpurious,
                            "no watch registration and write explain it".to_string(),
                        )
                    };
                    return Err(violation(
                        vk,
                        vec![],
                        format!(
                            "session {}: event {kind:?} {path} at stream position {at}: {what}",
                            hex(session)
                        ),
                    ));
                }
            }
        }
        Ok(events)
    }
}
