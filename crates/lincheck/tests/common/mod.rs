//! Shared builders for hand-made histories.
#![allow(dead_code)]

use corral_lincheck::*;

pub const S1: i64 = 0x100;
pub const S2: i64 = 0x200;

#[derive(Default)]
pub struct B {
    pub h: History,
}

#[allow(clippy::too_many_arguments)]
pub fn st(
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    version: i32,
    cversion: i32,
    owner: i64,
    len: i32,
    kids: i32,
) -> Stat {
    Stat {
        czxid,
        mzxid,
        pzxid,
        version,
        cversion,
        ephemeral_owner: owner,
        data_length: len,
        num_children: kids,
        ..Stat::default()
    }
}

pub fn create(path: &str, data: &str) -> Call {
    Call::Create {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        mode: CreateMode::default(),
        acl: Acl::open(),
    }
}
pub fn create_mode(path: &str, ephemeral: bool, sequential: bool) -> Call {
    Call::Create {
        path: path.into(),
        data: vec![],
        mode: CreateMode {
            ephemeral,
            sequential,
            ..CreateMode::default()
        },
        acl: Acl::open(),
    }
}
/// A create of `path` with `mode` and a `world:anyone` ACL of `perms`.
pub fn create_with(path: &str, mode: CreateMode, perms: i32) -> Call {
    Call::Create {
        path: path.into(),
        data: vec![],
        mode,
        acl: vec![Acl::world(perms)],
    }
}
pub fn set(path: &str, data: &str, version: i32) -> Call {
    Call::SetData {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        version,
    }
}
pub fn get(path: &str, watch: bool) -> Call {
    Call::GetData {
        path: path.into(),
        watch,
    }
}
pub fn data(d: &str, stat: Stat) -> Res {
    Res::Data {
        data: d.as_bytes().to_vec(),
        stat,
    }
}
pub fn created(path: &str, stat: Stat) -> Res {
    Res::Created {
        path: path.into(),
        stat: Some(stat),
    }
}

impl B {
    fn stream(&mut self, s: i64) -> &mut Vec<Received> {
        if let Some(i) = self.h.sessions.iter().position(|x| x.id == s) {
            return &mut self.h.sessions[i].stream;
        }
        self.h.sessions.push(Session {
            id: s,
            expired: false,
            stream: vec![],
        });
        &mut self.h.sessions.last_mut().unwrap().stream
    }

    /// A completed op; its reply is appended to the session's stream.
    pub fn op(
        &mut self,
        s: i64,
        invoke: u64,
        complete: u64,
        call: Call,
        zxid: i64,
        result: Res,
    ) -> usize {
        let i = self.h.ops.len();
        self.h.ops.push(Op {
            session: s,
            invoke,
            complete: Some(complete),
            call,
            ret: Ret::Done { zxid, result },
        });
        self.stream(s).push(Received::Reply(i));
        i
    }

    pub fn unknown(&mut self, s: i64, invoke: u64, call: Call) -> usize {
        let i = self.h.ops.len();
        self.h.ops.push(Op {
            session: s,
            invoke,
            complete: None,
            call,
            ret: Ret::Unknown,
        });
        self.stream(s).push(Received::Reconnected);
        i
    }

    pub fn ev(&mut self, s: i64, kind: EventKind, path: &str) {
        self.stream(s).push(Received::Event {
            kind,
            path: path.into(),
        });
    }

    /// /a created with "1" at zxid 1 by S1 (t 0..10).
    pub fn with_a() -> B {
        let mut b = B::default();
        b.op(
            S1,
            0,
            10,
            create("/a", "1"),
            1,
            created("/a", st(1, 1, 1, 0, 0, 0, 1, 0)),
        );
        b
    }
}

pub fn kind(o: &Outcome) -> Option<ViolationKind> {
    match o {
        Outcome::Violation(v) => Some(v.kind),
        _ => None,
    }
}

pub fn expect(o: Outcome, k: ViolationKind) {
    match &o {
        Outcome::Violation(v) if v.kind == k => eprintln!("ok: {v}"),
        other => panic!("expected {k:?}, got {other:?}"),
    }
}

pub fn expect_ok(o: Outcome) -> Summary {
    match o {
        Outcome::Ok(s) => s,
        other => panic!("expected Ok, got {other:?}"),
    }
}
