//! Hand-made histories: each bad one stands for a real bug and must be rejected with the right
//! violation kind; the good ones (incl. unknown writes) must pass.

mod common;

use common::*;
use corral_lincheck::*;

use ViolationKind as K;

#[test]
fn good_history_passes() {
    // Proves the baseline: create, set, read at the right zxid, child list, watch delivered.
    let mut b = B::with_a();
    b.op(
        S2,
        11,
        12,
        get("/a", true),
        1,
        data("1", st(1, 1, 1, 0, 0, 0, 1, 0)),
    );
    b.op(
        S1,
        13,
        20,
        set("/a", "22", 0),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 2, 0)),
    );
    b.ev(S2, EventKind::NodeDataChanged, "/a");
    b.op(
        S2,
        21,
        22,
        Call::GetChildren {
            path: "/".into(),
            watch: false,
        },
        2,
        Res::Children(vec!["a".into()]),
    );
    let s = expect_ok(check(&b.h));
    assert_eq!((s.writes, s.reads, s.events), (2, 2, 1));
}

#[test]
fn stale_read_rejected() {
    // Bug: a follower answers from an older tree than the zxid it puts in the reply header.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.op(
        S2,
        21,
        22,
        get("/a", false),
        2,
        data("1", st(1, 1, 1, 0, 0, 0, 1, 0)),
    );
    expect(check(&b.h), K::ReadResult);
}

#[test]
fn read_going_back_in_time_rejected() {
    // Bug: after reconnecting to a lagging server the session is served an older state.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.op(
        S2,
        21,
        22,
        get("/a", false),
        2,
        data("2", st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.op(
        S2,
        23,
        24,
        get("/a", false),
        1,
        data("1", st(1, 1, 1, 0, 0, 0, 1, 0)),
    );
    expect(check(&b.h), K::SessionOrder);
}

#[test]
fn lost_acknowledged_write_rejected() {
    // Bug: a write acknowledged to the client is lost (e.g. truncated on leader change); a
    // later read at a newer zxid does not see it.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.op(
        S1,
        21,
        30,
        create("/b", ""),
        3,
        created("/b", st(3, 3, 3, 0, 0, 0, 0, 0)),
    );
    b.op(
        S2,
        31,
        32,
        get("/a", false),
        3,
        data("1", st(1, 1, 1, 0, 0, 0, 1, 0)),
    );
    expect(check(&b.h), K::ReadResult);
}

#[test]
fn bad_version_when_version_matched_rejected() {
    // Bug: the version check compares against a stale pending change record.
    let mut b = B::with_a();
    b.op(S1, 11, 20, set("/a", "2", 0), 2, Res::Err(-103));
    expect(check(&b.h), K::WriteResult);
}

#[test]
fn wrong_sequence_number_rejected() {
    // Bug: the sequential suffix uses the client-visible cversion instead of the persisted one.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        create_mode("/a/s-", false, true),
        2,
        created("/a/s-0000000001", st(2, 2, 2, 0, 0, 0, 0, 0)),
    );
    expect(check(&b.h), K::WriteResult);
}

#[test]
fn duplicate_sequence_number_rejected() {
    // Bug: two concurrent sequential creates read the same parent cversion.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        create_mode("/a/s-", false, true),
        2,
        created("/a/s-0000000000", st(2, 2, 2, 0, 0, 0, 0, 0)),
    );
    b.op(
        S2,
        12,
        21,
        create_mode("/a/s-", false, true),
        3,
        created("/a/s-0000000000", st(3, 3, 3, 0, 0, 0, 0, 0)),
    );
    expect(check(&b.h), K::WriteResult);
}

#[test]
fn created_stat_wrong_rejected() {
    // Bug: create2 returns the parent's Stat (or a stale mzxid) instead of the new node's.
    let mut b = B::default();
    b.op(
        S1,
        0,
        10,
        create("/a", "1"),
        1,
        created("/a", st(1, 0, 1, 0, 0, 0, 1, 0)),
    );
    expect(check(&b.h), K::WriteResult);
}

#[test]
fn two_writes_same_zxid_rejected() {
    // Bug: two leaders in one epoch both propose zxid 2.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.op(
        S2,
        11,
        20,
        create("/b", ""),
        2,
        created("/b", st(2, 2, 2, 0, 0, 0, 0, 0)),
    );
    expect(check(&b.h), K::DuplicateZxid);
}

#[test]
fn real_time_violation_rejected() {
    // Bug: a deposed leader keeps committing with lower zxids after a newer write completed.
    let mut b = B::default();
    b.op(
        S1,
        0,
        10,
        create("/b", ""),
        2,
        created("/b", st(2, 2, 2, 0, 0, 0, 0, 0)),
    );
    b.op(
        S2,
        20,
        30,
        create("/a", ""),
        1,
        created("/a", st(1, 1, 1, 0, 0, 0, 0, 0)),
    );
    expect(check(&b.h), K::RealTimeOrder);
}

#[test]
fn stale_sync_rejected() {
    // Bug: the follower answers sync without waiting for the leader's flush.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.op(S2, 21, 22, Call::Sync { path: "/a".into() }, 1, Res::Synced);
    expect(check(&b.h), K::SyncStale);
}

#[test]
fn read_after_sync_stale_rejected() {
    // Bug: the read following a sync is served from a different, lagging server.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.op(S2, 21, 22, Call::Sync { path: "/a".into() }, 2, Res::Synced);
    b.op(
        S2,
        23,
        24,
        get("/a", false),
        1,
        data("1", st(1, 1, 1, 0, 0, 0, 1, 0)),
    );
    expect(check(&b.h), K::ReadAfterSyncStale);
}

#[test]
fn multi_applied_partially_rejected() {
    // Bug: a failed multi leaves its first op applied (no rollback of pending changes).
    let mut b = B::default();
    let m = Call::Multi(vec![create("/a", ""), create("/x/y", "")]);
    b.op(
        S1,
        0,
        10,
        m,
        1,
        Res::Multi(vec![Res::Err(0), Res::Err(-101)]),
    );
    b.op(
        S2,
        11,
        12,
        Call::Exists {
            path: "/a".into(),
            watch: false,
        },
        1,
        Res::Exists(Some(st(1, 1, 1, 0, 0, 0, 0, 0))),
    );
    expect(check(&b.h), K::ReadResult);
}

#[test]
fn multi_result_codes_checked() {
    // Bug: the ops after the failing one report OK instead of RuntimeInconsistency.
    let mut b = B::default();
    let m = Call::Multi(vec![create("/x/y", ""), create("/a", "")]);
    b.op(
        S1,
        0,
        10,
        m,
        1,
        Res::Multi(vec![Res::Err(-101), Res::Err(0)]),
    );
    expect(check(&b.h), K::WriteResult);
}

#[test]
fn write_after_its_sessions_close_rejected() {
    // Bug (corral, sim seed 753): a client whose closeSession reply was lost resumed the
    // session elsewhere and created an ephemeral that the leader prepared after the close;
    // ZooKeeper fails such a request with SessionExpired.
    let mut b = B::default();
    b.op(S1, 0, 10, Call::CloseSession, 1, Res::Closed);
    b.op(
        S1,
        11,
        20,
        create_mode("/e", true, false),
        2,
        created("/e", st(2, 2, 2, 0, 0, S1, 0, 0)),
    );
    expect(check(&b.h), K::WriteResult);
    // The same history with the reply ZooKeeper gives passes.
    let mut b = B::default();
    b.op(S1, 0, 10, Call::CloseSession, 1, Res::Closed);
    b.op(
        S1,
        11,
        20,
        create_mode("/e", true, false),
        2,
        Res::Err(-112),
    );
    expect_ok(check(&b.h));
}

#[test]
fn ephemeral_surviving_close_rejected() {
    // Bug: closeSession does not delete the session's ephemerals.
    let mut b = B::default();
    b.op(
        S1,
        0,
        10,
        create_mode("/e", true, false),
        1,
        created("/e", st(1, 1, 1, 0, 0, S1, 0, 0)),
    );
    b.op(S1, 11, 20, Call::CloseSession, 2, Res::Closed);
    b.op(
        S2,
        21,
        22,
        Call::Exists {
            path: "/e".into(),
            watch: false,
        },
        2,
        Res::Exists(Some(st(1, 1, 1, 0, 0, S1, 0, 0))),
    );
    expect(check(&b.h), K::ReadResult);
}

#[test]
fn ephemeral_deleted_by_expiry_passes_and_surviving_expiry_rejected() {
    // Bug: session expiry (a system write) leaves the ephemeral behind.
    let mut b = B::default();
    b.op(
        S1,
        0,
        10,
        create_mode("/e", true, false),
        1,
        created("/e", st(1, 1, 1, 0, 0, S1, 0, 0)),
    );
    b.h.system_writes.push(SystemWrite {
        zxid: 2,
        what: SystemWhat::SessionClosed { session: S1 },
    });
    let i = b.op(
        S2,
        21,
        22,
        Call::Exists {
            path: "/e".into(),
            watch: false,
        },
        2,
        Res::Exists(None),
    );
    expect_ok(check(&b.h));
    b.h.ops[i].ret = Ret::Done {
        zxid: 2,
        result: Res::Exists(Some(st(1, 1, 1, 0, 0, S1, 0, 0))),
    };
    expect(check(&b.h), K::ReadResult);
}

fn watched_a() -> B {
    let mut b = B::with_a();
    b.op(
        S2,
        11,
        12,
        get("/a", true),
        1,
        data("1", st(1, 1, 1, 0, 0, 0, 1, 0)),
    );
    b.op(
        S1,
        13,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b
}

#[test]
fn watch_never_fired_rejected() {
    // Bug: the watch is registered on the wrong path and never triggers.
    let mut b = watched_a();
    b.op(
        S2,
        21,
        22,
        get("/a", false),
        2,
        data("2", st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    expect(check(&b.h), K::WatchMissing);
}

#[test]
fn watch_fired_twice_rejected() {
    // Bug: a one-shot watch is not removed after it fires.
    let mut b = watched_a();
    b.ev(S2, EventKind::NodeDataChanged, "/a");
    b.op(
        S1,
        21,
        30,
        set("/a", "3", -1),
        3,
        Res::Stat(st(1, 3, 1, 2, 0, 0, 1, 0)),
    );
    b.ev(S2, EventKind::NodeDataChanged, "/a");
    expect(check(&b.h), K::WatchDuplicate);
}

#[test]
fn watch_fired_after_newer_data_rejected() {
    // Bug: the server sends the reply before the watch notification of the txn it read past.
    let mut b = watched_a();
    b.op(
        S2,
        21,
        22,
        get("/a", false),
        2,
        data("2", st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.ev(S2, EventKind::NodeDataChanged, "/a");
    expect(check(&b.h), K::WatchLate);
}

#[test]
fn spurious_watch_event_rejected() {
    // Bug: an event for a path nobody watched (or from a write that never happened).
    let mut b = watched_a();
    b.ev(S2, EventKind::NodeDataChanged, "/a");
    b.ev(S2, EventKind::NodeDeleted, "/a");
    expect(check(&b.h), K::WatchSpurious);
}

#[test]
fn persistent_watch_missing_event_rejected() {
    // Bug: a persistent watch is dropped after firing once, as if it were one-shot.
    let mut b = B::with_a();
    b.op(
        S2,
        11,
        12,
        Call::AddWatch {
            path: "/a".into(),
            mode: AddWatchMode::Persistent,
        },
        1,
        Res::WatchAdded,
    );
    b.op(
        S1,
        13,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.ev(S2, EventKind::NodeDataChanged, "/a");
    b.op(
        S1,
        21,
        30,
        set("/a", "3", -1),
        3,
        Res::Stat(st(1, 3, 1, 2, 0, 0, 1, 0)),
    );
    b.op(
        S2,
        31,
        32,
        get("/a", false),
        3,
        data("3", st(1, 3, 1, 2, 0, 0, 1, 0)),
    );
    expect(check(&b.h), K::WatchMissing);
}

#[test]
fn recursive_watch_children_changed_rejected() {
    // Bug: recursive watches are registered in the child watch manager too and deliver
    // NodeChildrenChanged (ZooKeeper's WatchManager skips them for that type).
    let mut b = B::with_a();
    b.op(
        S2,
        11,
        12,
        Call::AddWatch {
            path: "/a".into(),
            mode: AddWatchMode::PersistentRecursive,
        },
        1,
        Res::WatchAdded,
    );
    b.op(
        S1,
        13,
        20,
        create("/a/b", ""),
        2,
        created("/a/b", st(2, 2, 2, 0, 0, 0, 0, 0)),
    );
    b.ev(S2, EventKind::NodeCreated, "/a/b");
    b.ev(S2, EventKind::NodeChildrenChanged, "/a");
    expect(check(&b.h), K::WatchSpurious);
    // Without the bad event it passes.
    b.h.sessions
        .iter_mut()
        .find(|s| s.id == S2)
        .unwrap()
        .stream
        .pop();
    expect_ok(check(&b.h));
}

#[test]
fn unknown_write_seen_but_cannot_fit_rejected() {
    // Bug: a write the client gave up on shows up in a read of a state older than the write's
    // invoke could possibly be (a read served from a phantom/uncommitted proposal).
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        set("/a", "2", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    b.unknown(S2, 25, set("/a", "x", -1));
    // Another session reads at zxid 2 (before anything after the set) and sees "x".
    b.op(
        0x300,
        30,
        31,
        get("/a", false),
        2,
        data("x", st(1, 3, 1, 2, 0, 0, 1, 0)),
    );
    expect(check(&b.h), K::ReadResult);
}

#[test]
fn unknown_write_applied_passes() {
    // Proves the search places an unknown write where a later read needs it.
    let mut b = B::with_a();
    b.unknown(S2, 11, set("/a", "x", -1));
    b.op(
        S1,
        40,
        50,
        set("/a", "y", 1),
        4,
        Res::Stat(st(1, 4, 1, 2, 0, 0, 1, 0)),
    );
    b.op(
        S1,
        51,
        52,
        get("/a", false),
        4,
        data("y", st(1, 4, 1, 2, 0, 0, 1, 0)),
    );
    let s = expect_ok(check(&b.h));
    assert_eq!((s.unknown_applied, s.unknown_dropped), (1, 0));
}

#[test]
fn lost_write_pinned_by_the_log() {
    // Proves a lost write the caller knows the log put at a zxid is placed exactly there, and
    // that a log position the client's order forbids is rejected. Bug it stands for: a request
    // sent before a connection cut applied after the requests sent on the new connection.
    let mut b = B::with_a();
    let lost = b.unknown(S2, 11, set("/a", "x", -1));
    b.op(
        S2,
        20,
        30,
        set("/a", "y", -1),
        3,
        Res::Stat(st(1, 3, 1, 2, 0, 0, 1, 0)),
    );
    b.h.lost_write_zxids = vec![(lost, 2)];
    let s = expect_ok(check(&b.h));
    assert_eq!((s.unknown_applied, s.unknown_dropped), (1, 0));
    b.h.lost_write_zxids = vec![(lost, 4)];
    expect(check(&b.h), K::RealTimeOrder);
    // Told that the list is complete, an unlisted lost write is taken as never applied: the
    // later set's version, which counts it, is then wrong.
    b.h.lost_write_zxids = vec![];
    b.h.lost_writes_complete = true;
    expect(check(&b.h), K::WriteResult);
}

#[test]
fn unknown_write_dropped_passes() {
    // Proves an unknown write that never took effect is accepted as dropped.
    let mut b = B::with_a();
    b.unknown(S2, 11, set("/a", "x", -1));
    b.op(
        S1,
        40,
        50,
        set("/a", "y", 0),
        3,
        Res::Stat(st(1, 3, 1, 1, 0, 0, 1, 0)),
    );
    let s = expect_ok(check(&b.h));
    assert_eq!((s.unknown_applied, s.unknown_dropped), (0, 1));
}

#[test]
fn unknown_sequential_create_shifts_sequence_numbers() {
    // Proves an unknown sequential create is placed to explain a later suffix gap.
    let mut b = B::with_a();
    b.unknown(S2, 11, create_mode("/a/s-", false, true));
    b.op(
        S1,
        40,
        50,
        create_mode("/a/s-", false, true),
        5,
        created("/a/s-0000000001", st(5, 5, 5, 0, 0, 0, 0, 0)),
    );
    let s = expect_ok(check(&b.h));
    assert_eq!(s.unknown_applied, 1);
}

#[test]
fn committed_zxids_must_be_explained() {
    // Bug: a txn committed that no client or system write accounts for.
    let mut b = B::with_a();
    b.op(
        S1,
        11,
        20,
        set("/a", "2", -1),
        3,
        Res::Stat(st(1, 3, 1, 1, 0, 0, 1, 0)),
    );
    b.h.committed_zxids = Some(vec![1, 2, 3]);
    expect(check(&b.h), K::CommittedZxid);
    // An unknown write of S2 explains zxid 2 (a failed delete: consumes a zxid, no effect).
    b.unknown(
        S2,
        11,
        Call::Delete {
            path: "/nope".into(),
            version: -1,
        },
    );
    let s = expect_ok(check(&b.h));
    assert_eq!(s.unknown_applied, 1);
}

fn container() -> CreateMode {
    CreateMode {
        container: true,
        ..CreateMode::default()
    }
}

fn reaped(b: &mut B, zxid: i64, path: &str) {
    b.h.system_writes.push(SystemWrite {
        zxid,
        what: SystemWhat::Deleted { path: path.into() },
    });
}

fn del(path: &str) -> Call {
    Call::Delete {
        path: path.into(),
        version: -1,
    }
}

// A container that had a child and is empty again may be reaped; the model deletes it.
#[test]
fn container_reaped_after_its_last_child() {
    let mut b = B::default();
    let c = create_with("/c", container(), perms::ALL);
    b.op(S1, 0, 1, c, 1, created("/c", st(1, 1, 1, 0, 0, 0, 0, 0)));
    b.op(
        S1,
        2,
        3,
        create("/c/x", ""),
        2,
        created("/c/x", st(2, 2, 2, 0, 0, 0, 0, 0)),
    );
    b.op(S1, 4, 5, del("/c/x"), 3, Res::Deleted);
    reaped(&mut b, 4, "/c");
    b.op(
        S1,
        6,
        7,
        Call::Exists {
            path: "/c".into(),
            watch: false,
        },
        4,
        Res::Exists(None),
    );
    expect_ok(check(&b.h));
}

// The reaper may not take a container that never had a child, one with children, or a
// persistent node: each is a violation, not a pass.
#[test]
fn reaping_the_wrong_node_is_rejected() {
    let mut b = B::default();
    let c = create_with("/c", container(), perms::ALL);
    b.op(S1, 0, 1, c, 1, created("/c", st(1, 1, 1, 0, 0, 0, 0, 0)));
    reaped(&mut b, 2, "/c");
    expect(check(&b.h), ViolationKind::SystemWrite);

    let mut b = B::with_a();
    reaped(&mut b, 2, "/a");
    expect(check(&b.h), ViolationKind::SystemWrite);

    let mut b = B::default();
    let c = create_with("/c", container(), perms::ALL);
    b.op(S1, 0, 1, c, 1, created("/c", st(1, 1, 1, 0, 0, 0, 0, 0)));
    b.op(
        S1,
        2,
        3,
        create("/c/x", ""),
        2,
        created("/c/x", st(2, 2, 2, 0, 0, 0, 0, 0)),
    );
    reaped(&mut b, 3, "/c");
    expect(check(&b.h), ViolationKind::SystemWrite);
}

// A TTL node is stored with owner 0xFF00.. | ttl, shown to clients as 0; the reaper may
// delete it once empty.
#[test]
fn ttl_nodes_are_modelled() {
    let mut b = B::default();
    let mode = CreateMode {
        ttl_ms: Some(5_000),
        sequential: true,
        ..CreateMode::default()
    };
    let call = create_with("/t-", mode, perms::ALL);
    b.op(
        S1,
        0,
        1,
        call,
        1,
        created("/t-0000000000", st(1, 1, 1, 0, 0, 0, 0, 0)),
    );
    reaped(&mut b, 2, "/t-0000000000");
    expect_ok(check(&b.h));

    // Clients see ephemeralOwner 0 for TTL nodes (DataNode.copyStat), not the stored value.
    let owner = (0xFF00_0000_0000_0000_u64 as i64) | 5_000;
    let mut b = B::default();
    let call = create_with("/t-", mode, perms::ALL);
    b.op(
        S1,
        0,
        1,
        call,
        1,
        created("/t-0000000000", st(1, 1, 1, 0, 0, owner, 0, 0)),
    );
    expect(check(&b.h), ViolationKind::WriteResult);
}

// Permissions: a write the ACL forbids must fail with NoAuth; setACL bumps aversion, checks
// it, and getACL shows the new list.
#[test]
fn acls_are_enforced() {
    let ro = perms::READ | perms::ADMIN;
    let mut b = B::default();
    let call = create_with("/p", CreateMode::default(), ro);
    b.op(S1, 0, 1, call, 1, created("/p", st(1, 1, 1, 0, 0, 0, 0, 0)));
    // setData without WRITE succeeding is a violation...
    let mut bad = B { h: b.h.clone() };
    bad.op(
        S1,
        2,
        3,
        set("/p", "x", -1),
        2,
        Res::Stat(st(1, 2, 1, 1, 0, 0, 1, 0)),
    );
    expect(check(&bad.h), ViolationKind::WriteResult);
    // ...so is a create under it without CREATE...
    let mut bad = B { h: b.h.clone() };
    bad.op(
        S1,
        2,
        3,
        create("/p/c", ""),
        2,
        created("/p/c", st(2, 2, 2, 0, 0, 0, 0, 0)),
    );
    expect(check(&bad.h), ViolationKind::WriteResult);
    // ...and NoAuth is right.
    b.op(S1, 2, 3, set("/p", "x", -1), 2, Res::Err(-102));
    // setACL with a stale aversion fails, with the right one succeeds and bumps it.
    let open = || vec![Acl::world(perms::ALL)];
    let set_acl = |version| Call::SetAcl {
        path: "/p".into(),
        acl: open(),
        version,
    };
    b.op(S1, 4, 5, set_acl(3), 3, Res::Err(-103));
    let mut after = st(1, 1, 1, 0, 0, 0, 0, 0);
    after.aversion = 1;
    b.op(S1, 6, 7, set_acl(0), 4, Res::Stat(after));
    let get_acl = Call::GetAcl { path: "/p".into() };
    b.op(
        S1,
        8,
        9,
        get_acl.clone(),
        4,
        Res::Acl {
            acl: open(),
            stat: after,
        },
    );
    expect_ok(check(&b.h));
    // A read that shows the old ACL after the change is stale.
    let mut bad = B { h: b.h.clone() };
    let old = vec![Acl::world(ro)];
    bad.op(
        S1,
        10,
        11,
        get_acl,
        4,
        Res::Acl {
            acl: old,
            stat: after,
        },
    );
    expect(check(&bad.h), ViolationKind::ReadResult);
}

#[test]
fn unsupported_acl_schemes_are_invalid() {
    // Proves unsupported input is reported, not silently passed.
    let mut b = B::default();
    let c = Call::Create {
        path: "/c".into(),
        data: vec![],
        mode: CreateMode::default(),
        acl: vec![Acl {
            perms: perms::ALL,
            scheme: "digest".into(),
            id: "u:x".into(),
        }],
    };
    b.op(S1, 0, 10, c, 1, created("/c", st(1, 1, 1, 0, 0, 0, 0, 0)));
    assert!(matches!(check(&b.h), Outcome::Invalid { .. }));
}

// The server's own deletes (expiry, the reaper) ignore ACLs: a parent without DELETE does not
// keep an expired session's ephemeral or an empty container alive.
#[test]
fn server_deletes_ignore_acls() {
    let no_delete = perms::ALL & !perms::DELETE;
    let mut b = B::default();
    let p = create_with("/p", CreateMode::default(), no_delete);
    b.op(S1, 0, 1, p, 1, created("/p", st(1, 1, 1, 0, 0, 0, 0, 0)));
    let c = create_with("/p/c", container(), perms::ALL);
    b.op(S1, 2, 3, c, 2, created("/p/c", st(2, 2, 2, 0, 0, 0, 0, 0)));
    let e = create_mode("/p/e", true, false);
    b.op(S2, 4, 5, e, 3, created("/p/e", st(3, 3, 3, 0, 0, S2, 0, 0)));
    b.op(
        S1,
        6,
        7,
        create("/p/c/x", ""),
        4,
        created("/p/c/x", st(4, 4, 4, 0, 0, 0, 0, 0)),
    );
    b.op(S1, 8, 9, del("/p/c/x"), 5, Res::Deleted);
    reaped(&mut b, 6, "/p/c");
    b.h.system_writes.push(SystemWrite {
        zxid: 7,
        what: SystemWhat::SessionClosed { session: S2 },
    });
    let kids = Call::GetChildren {
        path: "/p".into(),
        watch: false,
    };
    b.op(S1, 20, 21, kids.clone(), 7, Res::Children(vec![]));
    expect_ok(check(&b.h));
    // A client's delete there is refused, so the child stays.
    b.op(
        S1,
        22,
        23,
        create("/p/y", ""),
        8,
        created("/p/y", st(8, 8, 8, 0, 0, 0, 0, 0)),
    );
    b.op(S1, 24, 25, del("/p/y"), 9, Res::Err(-102));
    let mut bad = B { h: b.h.clone() };
    bad.op(S1, 26, 27, kids, 9, Res::Children(vec![]));
    expect(check(&bad.h), ViolationKind::ReadResult);
}
