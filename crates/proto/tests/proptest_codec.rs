//! Property tests for the jute codec:
//!
//! (a) every record of `records.rs` and `txn.rs` round-trips write → read to an equal value and
//!     the reader consumes exactly what the writer produced;
//! (b) `Request::write` + `Request::read(op_code, ..)` round-trips for every variant the write
//!     side supports (SetWatches comes back as a SetWatches2 without persistent lists);
//! (c) `Txn::to_bytes` / `Txn::from_bytes` round-trips for every `TxnBody`, with and without a
//!     digest (error txns never carry one);
//! (d) decoding arbitrary (and mutated valid) bytes never panics, and a length above the
//!     reader's maximum is a `BadLength` error, never an allocation.
//!
//! Plus deterministic regression tests for the codec bugs these properties found.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;

use corral_proto::jute::{Jute, Reader, WriteJute};
use corral_proto::records::*;
use corral_proto::request::{Connect, MultiDecode, MultiOp, Request};
use corral_proto::txn::*;
use corral_proto::DecodeError;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};

// ---------------------------------------------------------------------------------------------
// A global allocator that remembers the largest single allocation, so "a hostile length is not
// an allocation" is checked, not assumed.
// ---------------------------------------------------------------------------------------------

struct Tracking;

thread_local! {
    /// The largest single allocation made by this thread since the last reset.
    static LARGEST_ALLOC: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread teardown must not panic.
    let _ = LARGEST_ALLOC.try_with(|c| c.set(c.get().max(size)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST_ALLOC.with(|c| c.set(0));
    let r = f();
    (r, LARGEST_ALLOC.with(Cell::get))
}

/// No decode of a few KiB of input legitimately allocates a MiB in one piece.
const ALLOC_CEILING: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Configuration and helpers
// ---------------------------------------------------------------------------------------------

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // No proptest-regressions/ files next to the sources: failures print their input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Encode, decode from a reader, compare, check that everything was consumed, and that the
/// decoded value encodes to the same bytes.
fn round_trip<T: Jute + PartialEq + Debug>(v: &T) -> Result<Vec<u8>, TestCaseError> {
    let bytes = v.to_bytes();
    let mut r = Reader::new(&bytes);
    let back =
        T::read(&mut r).map_err(|e| TestCaseError::fail(format!("decode of {v:?} failed: {e}")))?;
    prop_assert_eq!(&back, v);
    prop_assert!(
        r.is_empty(),
        "{} trailing bytes after {:?}",
        r.remaining(),
        v
    );
    prop_assert_eq!(back.to_bytes(), bytes.clone());
    Ok(bytes)
}

/// Builds a strategy for a record from one strategy per field (field names = binding names).
macro_rules! rec {
    ($ty:ident { $($f:ident : $s:expr),* $(,)? }) => {
        ( $($s,)* ).prop_map(|( $($f,)* )| $ty { $($f),* })
    };
}

// ---------------------------------------------------------------------------------------------
// Field strategies
// ---------------------------------------------------------------------------------------------

/// Short strings: mostly path-like ASCII, sometimes arbitrary Unicode (any Rust string is valid
/// UTF-8, which is what the writer emits).
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => vec(select(vec!['/', 'a', 'b', 'z', '0', '9', '.', '-', ' ']), 0..8)
            .prop_map(String::from_iter),
        1 => vec(any::<char>(), 0..6).prop_map(String::from_iter),
    ]
    .boxed()
}

/// A realistic non-empty znode path.
fn path() -> BoxedStrategy<String> {
    vec(select(vec!['a', 'b', 'c', '/', '0']), 0..8)
        .prop_map(|v| format!("/{}", String::from_iter(v)))
        .boxed()
}

fn ostr() -> impl Strategy<Value = Option<String>> {
    option::of(text())
}

fn data() -> impl Strategy<Value = Data> {
    option::of(vec(any::<u8>(), 0..24))
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

fn id() -> impl Strategy<Value = Id> {
    rec!(Id {
        scheme: text(),
        id: text()
    })
}

fn acl() -> impl Strategy<Value = Acl> {
    rec!(Acl {
        perms: any::<i32>(),
        id: id()
    })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..4)
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        any::<[i64; 4]>(),
        any::<[i32; 3]>(),
        any::<i64>(),
        any::<[i32; 2]>(),
        any::<i64>(),
    )
        .prop_map(
            |([czxid, mzxid, ctime, mtime], [version, cversion, aversion], eo, [dl, nc], pzxid)| {
                Stat {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner: eo,
                    data_length: dl,
                    num_children: nc,
                    pzxid,
                }
            },
        )
}

fn stat_persisted() -> impl Strategy<Value = StatPersisted> {
    (
        any::<[i64; 4]>(),
        any::<[i32; 3]>(),
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(
            |([czxid, mzxid, ctime, mtime], [version, cversion, aversion], eo, pzxid)| {
                StatPersisted {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner: eo,
                    pzxid,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Record strategies (records.rs)
// ---------------------------------------------------------------------------------------------

fn client_info() -> impl Strategy<Value = ClientInfo> {
    rec!(ClientInfo {
        auth_scheme: text(),
        user: text()
    })
}

fn connect_request() -> impl Strategy<Value = ConnectRequest> {
    rec!(ConnectRequest {
        protocol_version: any::<i32>(),
        last_zxid_seen: any::<i64>(),
        time_out: any::<i32>(),
        session_id: any::<i64>(),
        passwd: data(),
    })
}

fn connect_response() -> impl Strategy<Value = ConnectResponse> {
    rec!(ConnectResponse {
        protocol_version: any::<i32>(),
        time_out: any::<i32>(),
        session_id: any::<i64>(),
        passwd: data(),
    })
}

fn request_header() -> impl Strategy<Value = RequestHeader> {
    rec!(RequestHeader {
        xid: any::<i32>(),
        r#type: any::<i32>()
    })
}

fn reply_header() -> impl Strategy<Value = ReplyHeader> {
    rec!(ReplyHeader {
        xid: any::<i32>(),
        zxid: any::<i64>(),
        err: any::<i32>()
    })
}

fn multi_header() -> impl Strategy<Value = MultiHeader> {
    rec!(MultiHeader {
        r#type: any::<i32>(),
        done: any::<bool>(),
        err: any::<i32>()
    })
}

fn auth_packet() -> impl Strategy<Value = AuthPacket> {
    rec!(AuthPacket {
        r#type: any::<i32>(),
        scheme: text(),
        auth: data()
    })
}

fn watcher_event() -> impl Strategy<Value = WatcherEvent> {
    rec!(WatcherEvent {
        r#type: any::<i32>(),
        state: any::<i32>(),
        path: text()
    })
}

fn create_request() -> impl Strategy<Value = CreateRequest> {
    rec!(CreateRequest {
        path: text(),
        data: data(),
        acl: acls(),
        flags: any::<i32>()
    })
}

fn create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> {
    rec!(CreateTtlRequest {
        path: text(),
        data: data(),
        acl: acls(),
        flags: any::<i32>(),
        ttl: any::<i64>(),
    })
}

fn delete_request() -> impl Strategy<Value = DeleteRequest> {
    rec!(DeleteRequest {
        path: text(),
        version: any::<i32>()
    })
}

fn path_watch_request() -> impl Strategy<Value = PathWatchRequest> {
    rec!(PathWatchRequest {
        path: text(),
        watch: any::<bool>()
    })
}

fn set_data_request() -> impl Strategy<Value = SetDataRequest> {
    rec!(SetDataRequest {
        path: text(),
        data: data(),
        version: any::<i32>()
    })
}

fn path_request() -> impl Strategy<Value = PathRequest> {
    rec!(PathRequest { path: text() })
}

fn set_acl_request() -> impl Strategy<Value = SetAclRequest> {
    rec!(SetAclRequest {
        path: text(),
        acl: acls(),
        version: any::<i32>()
    })
}

fn check_version_request() -> impl Strategy<Value = CheckVersionRequest> {
    rec!(CheckVersionRequest {
        path: text(),
        version: any::<i32>()
    })
}

fn reconfig_request() -> impl Strategy<Value = ReconfigRequest> {
    rec!(ReconfigRequest {
        joining_servers: ostr(),
        leaving_servers: ostr(),
        new_members: ostr(),
        cur_config_id: any::<i64>(),
    })
}

fn watches_request() -> impl Strategy<Value = WatchesRequest> {
    rec!(WatchesRequest {
        path: text(),
        r#type: any::<i32>()
    })
}

fn add_watch_request() -> impl Strategy<Value = AddWatchRequest> {
    rec!(AddWatchRequest {
        path: text(),
        mode: any::<i32>()
    })
}

fn set_watches() -> impl Strategy<Value = SetWatches> {
    rec!(SetWatches {
        relative_zxid: any::<i64>(),
        data_watches: strings(),
        exist_watches: strings(),
        child_watches: strings(),
    })
}

fn set_watches2() -> impl Strategy<Value = SetWatches2> {
    rec!(SetWatches2 {
        relative_zxid: any::<i64>(),
        data_watches: strings(),
        exist_watches: strings(),
        child_watches: strings(),
        persistent_watches: strings(),
        persistent_recursive_watches: strings(),
    })
}

fn sasl_token() -> impl Strategy<Value = SaslToken> {
    rec!(SaslToken { token: data() })
}

// ---------------------------------------------------------------------------------------------
// Record strategies (txn.rs)
// ---------------------------------------------------------------------------------------------

fn txn_header() -> impl Strategy<Value = TxnHeader> {
    rec!(TxnHeader {
        client_id: any::<i64>(),
        cxid: any::<i32>(),
        zxid: any::<i64>(),
        time: any::<i64>(),
        r#type: any::<i32>(),
    })
}

fn create_txn() -> impl Strategy<Value = CreateTxn> {
    rec!(CreateTxn {
        path: text(),
        data: data(),
        acl: acls(),
        ephemeral: any::<bool>(),
        parent_cversion: any::<i32>(),
    })
}

fn create_container_txn() -> impl Strategy<Value = CreateContainerTxn> {
    rec!(CreateContainerTxn {
        path: text(),
        data: data(),
        acl: acls(),
        parent_cversion: any::<i32>(),
    })
}

fn create_ttl_txn() -> impl Strategy<Value = CreateTtlTxn> {
    rec!(CreateTtlTxn {
        path: text(),
        data: data(),
        acl: acls(),
        parent_cversion: any::<i32>(),
        ttl: any::<i64>(),
    })
}

fn delete_txn() -> impl Strategy<Value = DeleteTxn> {
    rec!(DeleteTxn { path: text() })
}

fn set_data_txn() -> impl Strategy<Value = SetDataTxn> {
    rec!(SetDataTxn {
        path: text(),
        data: data(),
        version: any::<i32>()
    })
}

fn set_acl_txn() -> impl Strategy<Value = SetAclTxn> {
    rec!(SetAclTxn {
        path: text(),
        acl: acls(),
        version: any::<i32>()
    })
}

fn check_version_txn() -> impl Strategy<Value = CheckVersionTxn> {
    rec!(CheckVersionTxn {
        path: text(),
        version: any::<i32>()
    })
}

fn create_session_txn() -> impl Strategy<Value = CreateSessionTxn> {
    rec!(CreateSessionTxn {
        time_out: any::<i32>()
    })
}

/// The paths of a closing session's ephemerals: real znode paths, never empty strings.
fn close_session_txn() -> impl Strategy<Value = CloseSessionTxn> {
    rec!(CloseSessionTxn {
        paths_to_delete: vec(path(), 0..4)
    })
}

fn close_session_txn_any() -> impl Strategy<Value = CloseSessionTxn> {
    rec!(CloseSessionTxn {
        paths_to_delete: strings()
    })
}

fn error_txn() -> impl Strategy<Value = ErrorTxn> {
    rec!(ErrorTxn { err: any::<i32>() })
}

fn txn_digest() -> impl Strategy<Value = TxnDigest> {
    rec!(TxnDigest {
        version: any::<i32>(),
        tree_digest: any::<i64>()
    })
}

fn raw_sub_txn() -> impl Strategy<Value = RawSubTxn> {
    rec!(RawSubTxn {
        r#type: any::<i32>(),
        data: data()
    })
}

// ---------------------------------------------------------------------------------------------
// (a) Every record round-trips
// ---------------------------------------------------------------------------------------------

macro_rules! round_trip_props {
    ($($name:ident: $strat:expr;)*) => {
        proptest! {
            #![proptest_config(config(256))]
            $(
                #[test]
                fn $name(v in $strat) {
                    round_trip(&v)?;
                }
            )*
        }
    };
}

round_trip_props! {
    rt_id: id();
    rt_acl: acl();
    rt_client_info: client_info();
    rt_connect_request: connect_request();
    rt_connect_response: connect_response();
    rt_multi_header: multi_header();
    rt_auth_packet: auth_packet();
    rt_watcher_event: watcher_event();
    rt_create_request: create_request();
    rt_create_ttl_request: create_ttl_request();
    rt_create_response: rec!(CreateResponse { path: text() });
    rt_create2_response: rec!(Create2Response { path: text(), stat: stat() });
    rt_delete_request: delete_request();
    rt_path_watch_request: path_watch_request();
    rt_stat_response: rec!(StatResponse { stat: stat() });
    rt_get_data_response: rec!(GetDataResponse { data: data(), stat: stat() });
    rt_set_data_request: set_data_request();
    rt_path_request: path_request();
    rt_get_acl_response: rec!(GetAclResponse { acl: acls(), stat: stat() });
    rt_set_acl_request: set_acl_request();
    rt_get_children_response: rec!(GetChildrenResponse { children: strings() });
    rt_get_children2_response: rec!(GetChildren2Response { children: strings(), stat: stat() });
    rt_get_all_children_number_response:
        rec!(GetAllChildrenNumberResponse { total_number: any::<i32>() });
    rt_check_version_request: check_version_request();
    rt_reconfig_request: reconfig_request();
    rt_watches_request: watches_request();
    rt_add_watch_request: add_watch_request();
    rt_set_watches: set_watches();
    rt_set_watches2: set_watches2();
    rt_error_response: rec!(ErrorResponse { err: any::<i32>() });
    rt_get_ephemerals_response: rec!(GetEphemeralsResponse { ephemerals: strings() });
    rt_who_am_i_response: rec!(WhoAmIResponse { client_info: vec(client_info(), 0..4) });
    rt_sasl_token: sasl_token();
    rt_optional_string: ostr();
    rt_string_vector: strings();
    rt_create_txn: create_txn();
    rt_create_container_txn: create_container_txn();
    rt_create_ttl_txn: create_ttl_txn();
    rt_delete_txn: delete_txn();
    rt_set_data_txn: set_data_txn();
    rt_set_acl_txn: set_acl_txn();
    rt_check_version_txn: check_version_txn();
    rt_create_session_txn: create_session_txn();
    rt_close_session_txn: close_session_txn_any();
    rt_error_txn: error_txn();
    rt_raw_sub_txn: raw_sub_txn();
}

proptest! {
    #![proptest_config(config(256))]

    /// Fixed-size records also have ZooKeeper's byte sizes.
    #[test]
    fn rt_fixed_size_records(
        st in stat(),
        sp in stat_persisted(),
        rq in request_header(),
        rp in reply_header(),
        th in txn_header(),
        td in txn_digest(),
    ) {
        prop_assert_eq!(round_trip(&st)?.len(), 68);
        prop_assert_eq!(round_trip(&sp)?.len(), 60);
        prop_assert_eq!(round_trip(&rq)?.len(), 8);
        prop_assert_eq!(round_trip(&rp)?.len(), 16);
        prop_assert_eq!(round_trip(&th)?.len(), 32);
        prop_assert_eq!(round_trip(&td)?.len(), 12);
    }

    /// A null string or buffer stays null, an empty one stays empty.
    #[test]
    fn rt_null_vs_empty(s in option::of(Just(String::new())), b in option::of(Just(Vec::new()))) {
        round_trip(&s)?;
        round_trip(&b)?;
    }

    /// The ConnectRequest with and without the trailing readOnly byte.
    #[test]
    fn rt_connect(req in connect_request(), read_only in option::of(any::<bool>())) {
        let c = Connect { req, read_only };
        let mut b = Vec::new();
        c.write(&mut b);
        prop_assert_eq!(Connect::read(&b).unwrap(), c);
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Requests round-trip
// ---------------------------------------------------------------------------------------------

fn write_op() -> BoxedStrategy<MultiOp> {
    prop_oneof![
        (
            select(vec![op::CREATE, op::CREATE2, op::CREATE_CONTAINER]),
            create_request()
        )
            .prop_map(|(op, req)| MultiOp::Create { op, req }),
        create_ttl_request().prop_map(MultiOp::CreateTtl),
        delete_request().prop_map(MultiOp::Delete),
        set_data_request().prop_map(MultiOp::SetData),
        check_version_request().prop_map(MultiOp::Check),
    ]
    .boxed()
}

fn read_op() -> BoxedStrategy<MultiOp> {
    prop_oneof![
        path_watch_request().prop_map(MultiOp::GetData),
        path_watch_request().prop_map(MultiOp::GetChildren),
    ]
    .boxed()
}

/// Every request the write side can encode faithfully (everything but a multi that already
/// failed to decode, which has no ops to write).
fn request() -> BoxedStrategy<Request> {
    prop_oneof![
        create_request().prop_map(Request::Create),
        create_request().prop_map(Request::Create2),
        create_request().prop_map(Request::CreateContainer),
        create_ttl_request().prop_map(Request::CreateTtl),
        delete_request().prop_map(Request::Delete),
        path_watch_request().prop_map(Request::Exists),
        path_watch_request().prop_map(Request::GetData),
        set_data_request().prop_map(Request::SetData),
        path_request().prop_map(Request::GetAcl),
        set_acl_request().prop_map(Request::SetAcl),
        path_watch_request().prop_map(Request::GetChildren),
        path_watch_request().prop_map(Request::GetChildren2),
        path_request().prop_map(Request::Sync),
        Just(Request::Ping),
        check_version_request().prop_map(Request::Check),
        vec(write_op(), 0..4).prop_map(|ops| Request::Multi(MultiDecode::Ops(ops))),
        vec(read_op(), 0..4).prop_map(|ops| Request::MultiRead(MultiDecode::Ops(ops))),
        reconfig_request().prop_map(Request::Reconfig),
        watches_request().prop_map(Request::CheckWatches),
        watches_request().prop_map(Request::RemoveWatches),
        add_watch_request().prop_map(Request::AddWatch),
        set_watches2().prop_map(Request::SetWatches),
        set_watches2().prop_map(Request::SetWatches2),
        path_request().prop_map(Request::GetEphemerals),
        path_request().prop_map(Request::GetAllChildrenNumber),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
        auth_packet().prop_map(Request::Auth),
        sasl_token().prop_map(Request::Sasl),
    ]
    .boxed()
}

/// What decoding the encoding of `req` must give: SetWatches (101) has no persistent lists on
/// the wire.
fn expected_after_round_trip(req: &Request) -> Request {
    match req {
        Request::SetWatches(s) => Request::SetWatches(SetWatches2 {
            persistent_watches: vec![],
            persistent_recursive_watches: vec![],
            ..s.clone()
        }),
        other => other.clone(),
    }
}

/// Every opcode `Request::read` knows.
const REQUEST_OPS: &[i32] = &[
    op::CREATE,
    op::DELETE,
    op::EXISTS,
    op::GET_DATA,
    op::SET_DATA,
    op::GET_ACL,
    op::SET_ACL,
    op::GET_CHILDREN,
    op::SYNC,
    op::PING,
    op::GET_CHILDREN2,
    op::CHECK,
    op::MULTI,
    op::CREATE2,
    op::RECONFIG,
    op::CHECK_WATCHES,
    op::REMOVE_WATCHES,
    op::CREATE_CONTAINER,
    op::CREATE_TTL,
    op::MULTI_READ,
    op::AUTH,
    op::SET_WATCHES,
    op::SASL,
    op::GET_EPHEMERALS,
    op::GET_ALL_CHILDREN_NUMBER,
    op::SET_WATCHES2,
    op::ADD_WATCH,
    op::WHO_AM_I,
    op::CLOSE_SESSION,
];

fn encode(req: &Request) -> Vec<u8> {
    let mut b = Vec::new();
    req.write(&mut b);
    b
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn rt_request(req in request()) {
        let body = encode(&req);
        let mut r = Reader::new(&body);
        let back = Request::read(req.op_code(), &mut r);
        prop_assert_eq!(back, Ok(expected_after_round_trip(&req)));
        prop_assert!(r.is_empty(), "{} trailing bytes", r.remaining());
    }

    /// A whole request frame body: RequestHeader then the record chosen by its type.
    #[test]
    fn rt_request_with_header(req in request(), xid in any::<i32>()) {
        let mut b = RequestHeader { xid, r#type: req.op_code() }.to_bytes();
        req.write(&mut b);
        let mut r = Reader::new(&b);
        let h = RequestHeader::read(&mut r).unwrap();
        prop_assert_eq!(h.xid, xid);
        prop_assert_eq!(Request::read(h.r#type, &mut r), Ok(expected_after_round_trip(&req)));
        prop_assert!(r.is_empty());
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Reads and writes mixed in one multi or multiRead are a MarshallingError, not a decode
    /// error, and the whole record is still consumed.
    #[test]
    fn mixed_multi_is_marshalling(
        writes in vec(write_op(), 1..4),
        reads in vec(read_op(), 1..4),
        order in vec(any::<bool>(), 0..8),
    ) {
        let (mut w, mut rd) = (writes.into_iter(), reads.into_iter());
        let mut ops = Vec::new();
        for take_write in order {
            if let Some(o) = if take_write { w.next() } else { rd.next() } {
                ops.push(o);
            }
        }
        ops.extend(w);
        ops.extend(rd);
        let body = encode(&Request::Multi(MultiDecode::Ops(ops)));
        for (t, want) in [
            (op::MULTI, Request::Multi(MultiDecode::Marshalling)),
            (op::MULTI_READ, Request::MultiRead(MultiDecode::Marshalling)),
        ] {
            let mut r = Reader::new(&body);
            prop_assert_eq!(Request::read(t, &mut r), Ok(want));
            prop_assert!(r.is_empty());
        }
    }

    /// A sub-op type that may not appear in a multi makes the multi a MarshallingError.
    #[test]
    fn unknown_multi_sub_op_is_marshalling(
        before in vec(write_op(), 0..3),
        t in any::<i32>().prop_filter("not a multi op", |t| ![
            op::CREATE, op::CREATE2, op::CREATE_CONTAINER, op::CREATE_TTL, op::DELETE,
            op::SET_DATA, op::CHECK, op::GET_DATA, op::GET_CHILDREN,
        ].contains(t)),
        tail in vec(any::<u8>(), 0..16),
    ) {
        let mut b = Vec::new();
        let mut ops = encode(&Request::Multi(MultiDecode::Ops(before)));
        ops.truncate(ops.len() - 9); // drop the terminator
        b.extend_from_slice(&ops);
        MultiHeader { r#type: t, done: false, err: -1 }.write(&mut b);
        b.extend_from_slice(&tail);
        prop_assert_eq!(
            Request::read(op::MULTI, &mut Reader::new(&b)),
            Ok(Request::Multi(MultiDecode::Marshalling))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Txns round-trip
// ---------------------------------------------------------------------------------------------

/// Bodies that may appear inside a MultiTxn (ZooKeeper's DataTree accepts these sub-types).
fn sub_txn_body() -> BoxedStrategy<TxnBody> {
    prop_oneof![
        create_txn().prop_map(TxnBody::Create),
        create_container_txn().prop_map(TxnBody::CreateContainer),
        create_ttl_txn().prop_map(TxnBody::CreateTtl),
        delete_txn().prop_map(TxnBody::Delete),
        delete_txn().prop_map(TxnBody::DeleteContainer),
        set_data_txn().prop_map(TxnBody::SetData),
        check_version_txn().prop_map(TxnBody::Check),
        error_txn().prop_map(TxnBody::Error),
    ]
    .boxed()
}

fn txn_body() -> BoxedStrategy<TxnBody> {
    prop_oneof![
        8 => sub_txn_body(),
        1 => set_data_txn().prop_map(TxnBody::Reconfig),
        1 => set_acl_txn().prop_map(TxnBody::SetAcl),
        2 => vec(sub_txn_body(), 0..5).prop_map(TxnBody::Multi),
        1 => create_session_txn().prop_map(TxnBody::CreateSession),
        2 => option::of(close_session_txn()).prop_map(TxnBody::CloseSession),
        1 => error_txn().prop_map(TxnBody::Error),
    ]
    .boxed()
}

fn txn() -> impl Strategy<Value = Txn> {
    (txn_header(), txn_body(), any::<bool>(), txn_digest()).prop_map(
        |(mut header, body, with_digest, mut digest)| {
            header.r#type = body.type_code();
            if matches!(body, TxnBody::CloseSession(None)) {
                // Without a record, the digest is what follows the header; ZooKeeper writes
                // version 2 only, and that is how the reader tells the two apart.
                digest.version = DIGEST_VERSION;
            }
            let digest = (with_digest && body.has_digest()).then_some(digest);
            Txn {
                header,
                body,
                digest,
            }
        },
    )
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn rt_txn(t in txn()) {
        let bytes = t.to_bytes();
        let back = Txn::from_bytes(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&t), "bytes {:02x?}", bytes);
        prop_assert_eq!(back.unwrap().to_bytes(), bytes);
    }

    /// A sub-txn of type create2 (15, written by 3.8.2+) decodes as a create.
    #[test]
    fn create2_sub_txn_reads_as_create(c in create_txn()) {
        let mut b = Vec::new();
        vec![RawSubTxn { r#type: op::CREATE2, data: Some(c.to_bytes()) }].write(&mut b);
        prop_assert_eq!(
            TxnBody::read(op::MULTI, &mut Reader::new(&b)),
            Ok(TxnBody::Multi(vec![TxnBody::Create(c)]))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (d) Hostile bytes never panic; lengths above the maximum are errors
// ---------------------------------------------------------------------------------------------

fn op_type() -> BoxedStrategy<i32> {
    prop_oneof![4 => select(REQUEST_OPS), 1 => any::<i32>()].boxed()
}

const TXN_TYPES: &[i32] = &[
    op::CREATE,
    op::CREATE2,
    op::CREATE_CONTAINER,
    op::CREATE_TTL,
    op::DELETE,
    op::DELETE_CONTAINER,
    op::SET_DATA,
    op::RECONFIG,
    op::SET_ACL,
    op::CHECK,
    op::MULTI,
    op::CREATE_SESSION,
    op::CLOSE_SESSION,
    op::ERROR,
];

/// Byte-level damage to a valid encoding: overwrite some bytes, then cut it somewhere.
fn mutate(mut b: Vec<u8>, edits: &[(Index, u8)], cut: Option<Index>) -> Vec<u8> {
    if !b.is_empty() {
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = *v;
        }
    }
    if let Some(c) = cut {
        b.truncate(c.index(b.len() + 1));
    }
    b
}

fn edits() -> impl Strategy<Value = Vec<(Index, u8)>> {
    vec((any::<Index>(), any::<u8>()), 0..4)
}

/// Decode `bytes` as everything that has a decoder; only panics matter here.
fn decode_everything(t: i32, bytes: &[u8]) {
    let _ = Request::read(t, &mut Reader::new(bytes));
    let _ = Request::read(t, &mut Reader::with_max_len(bytes, 1024));
    let _ = Request::read(t, &mut Reader::with_max_len(bytes, 0));
    let _ = Connect::read(bytes);
    let _ = Txn::from_bytes(bytes);
    let _ = TxnBody::read(t, &mut Reader::new(bytes));
    let _ = RequestHeader::read(&mut Reader::new(bytes));
    let _ = ReplyHeader::from_bytes(bytes);
    let _ = ConnectResponse::from_bytes(bytes);
    let _ = GetChildren2Response::from_bytes(bytes);
    let _ = WhoAmIResponse::from_bytes(bytes);
    let _ = GetAclResponse::from_bytes(bytes);
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(t in op_type(), bytes in vec(any::<u8>(), 0..128)) {
        decode_everything(t, &bytes);
    }

    /// Valid request encodings with a few bytes overwritten and/or cut short get much further
    /// into the decoders than random bytes do.
    #[test]
    fn damaged_requests_never_panic(
        req in request(),
        t in op_type(),
        e in edits(),
        cut in option::of(any::<Index>()),
    ) {
        let b = mutate(encode(&req), &e, cut);
        decode_everything(req.op_code(), &b);
        decode_everything(t, &b);
        // An undamaged prefix is either the whole request or an error, never a panic, and a
        // strict prefix of a non-empty body never decodes to the same request.
        let full = encode(&req);
        if e.is_empty() && b.len() < full.len() {
            prop_assert_ne!(
                Request::read(req.op_code(), &mut Reader::new(&b)),
                Ok(expected_after_round_trip(&req))
            );
        }
    }

    #[test]
    fn damaged_txns_never_panic(t in txn(), e in edits(), cut in option::of(any::<Index>())) {
        let b = mutate(t.to_bytes(), &e, cut);
        let _ = Txn::from_bytes(&b);
    }

    /// A txn header of a known type followed by garbage.
    #[test]
    fn garbage_txn_records_never_panic(
        h in txn_header(),
        t in select(TXN_TYPES),
        tail in vec(any::<u8>(), 0..96),
    ) {
        let mut b = TxnHeader { r#type: t, ..h }.to_bytes();
        b.extend_from_slice(&tail);
        let _ = Txn::from_bytes(&b);
    }

    #[test]
    fn damaged_connects_never_panic(
        req in connect_request(),
        ro in option::of(any::<bool>()),
        e in edits(),
        cut in option::of(any::<Index>()),
    ) {
        let mut b = Vec::new();
        Connect { req, read_only: ro }.write(&mut b);
        let _ = Connect::read(&mutate(b, &e, cut));
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// `Reader::with_max_len(.., 1024)`: a buffer/string length above 1024 is `BadLength` at
    /// the length field even when that many bytes are present, and nothing of that size is
    /// allocated.
    #[test]
    fn length_above_max_is_an_error(
        len in prop_oneof![1025i32..=4096, 4097..=i32::MAX],
        present in 0usize..=4096,
        t in select(vec![op::CREATE, op::GET_DATA, op::SET_DATA, op::SYNC, op::DELETE]),
    ) {
        let mut b = len.to_be_bytes().to_vec();
        b.resize(4 + present.min(len as usize), b'a');
        let bad = Some(DecodeError::BadLength { offset: 0, len: len as i64 });
        let ((buf, ustr, req), largest) = largest_allocation_in(|| {
            (
                Reader::with_max_len(&b, 1024).read_buffer().err(),
                Reader::with_max_len(&b, 1024).read_ustring().err(),
                // The same length as the first field (the path) of a request.
                Request::read(t, &mut Reader::with_max_len(&b, 1024)).err(),
            )
        });
        prop_assert_eq!(buf, bad.clone());
        prop_assert_eq!(ustr, bad.clone());
        prop_assert_eq!(req, bad);
        prop_assert!(largest <= 1024, "allocated {} bytes", largest);
        // As the passwd of a ConnectRequest (offset 24) the default maximum applies.
        let mut c = vec![0u8; 24];
        c.extend_from_slice(&b);
        let got = Connect::read(&c);
        if len as usize > 2 * corral_proto::jute::JUTE_MAX_BUFFER_DEFAULT {
            prop_assert_eq!(got, Err(DecodeError::BadLength { offset: 24, len: len as i64 }));
        } else if present < len as usize {
            prop_assert!(got.is_err(), "only {} of {} bytes present", present, len);
        } else {
            prop_assert_eq!(got.map(|c| c.req.passwd), Ok(Some(vec![b'a'; len as usize])));
        }
    }

    /// At or below the maximum the same layout decodes.
    #[test]
    fn length_at_or_below_max_is_accepted(len in 0i32..=1024) {
        let mut b = len.to_be_bytes().to_vec();
        b.resize(4 + len as usize, b'a');
        prop_assert_eq!(
            Reader::with_max_len(&b, 1024).read_buffer(),
            Ok(Some(vec![b'a'; len as usize]))
        );
    }

    /// Negative lengths other than -1 (null) are errors.
    #[test]
    fn negative_length_is_an_error(len in i32::MIN..=-2, tail in vec(any::<u8>(), 0..8)) {
        let mut b = len.to_be_bytes().to_vec();
        b.extend_from_slice(&tail);
        let bad = Some(DecodeError::BadLength { offset: 0, len: len as i64 });
        prop_assert_eq!(Reader::new(&b).read_buffer().err(), bad.clone());
        prop_assert_eq!(Reader::new(&b).read_ustring().err(), bad);
    }

    /// A vector count larger than the bytes that follow is an error before any allocation.
    #[test]
    fn vector_count_beyond_input_is_an_error(
        count in 0i32..=i32::MAX,
        tail in vec(any::<u8>(), 0..32),
    ) {
        prop_assume!(count as usize > tail.len());
        let mut b = count.to_be_bytes().to_vec();
        b.extend_from_slice(&tail);
        let bad = Some(DecodeError::BadLength { offset: 0, len: count as i64 });
        let ((acls, strings, count), largest) = largest_allocation_in(|| {
            (
                Vec::<Acl>::from_bytes(&b).err(),
                Vec::<String>::from_bytes(&b).err(),
                Reader::new(&b).read_count().err(),
            )
        });
        prop_assert_eq!(acls, bad.clone());
        prop_assert_eq!(strings, bad.clone());
        prop_assert_eq!(count, bad);
        prop_assert_eq!(largest, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Regression tests
// ---------------------------------------------------------------------------------------------

/// A closeSession txn without a CloseSessionTxn record (`zookeeper.closeSessionTxn.enabled=false`)
/// but with its digest — what corral itself logs in that mode. The 12 digest bytes must not be
/// taken for a CloseSessionTxn record.
#[test]
fn close_session_without_record_keeps_its_digest() {
    for tree_digest in [0x51c6_d660, 0x1_71e6_2ad5, 0, -1, 0x0000_0004_0000_0000] {
        let txn = Txn {
            header: TxnHeader {
                client_id: 0x100_0059_8c4a_0000,
                cxid: 7,
                zxid: 9,
                time: 1_795_564_174_152,
                r#type: op::CLOSE_SESSION,
            },
            body: TxnBody::CloseSession(None),
            digest: Some(TxnDigest {
                version: DIGEST_VERSION,
                tree_digest,
            }),
        };
        let b = txn.to_bytes();
        assert_eq!(b.len(), 32 + 12);
        assert_eq!(
            Txn::from_bytes(&b),
            Ok(txn.clone()),
            "tree digest {tree_digest:#x}"
        );
        // Without the digest it is still a record-less close.
        let bare = Txn {
            digest: None,
            ..txn
        };
        assert_eq!(Txn::from_bytes(&bare.to_bytes()), Ok(bare));
    }
    // A record of exactly 12 bytes (one 4-byte path) is still read as the record.
    let one = Txn {
        header: TxnHeader {
            r#type: op::CLOSE_SESSION,
            ..TxnHeader::default()
        },
        body: TxnBody::CloseSession(Some(CloseSessionTxn {
            paths_to_delete: vec!["/abc".into()],
        })),
        digest: None,
    };
    assert_eq!(one.to_bytes().len(), 32 + 12);
    assert_eq!(Txn::from_bytes(&one.to_bytes()), Ok(one));
}

/// A MultiTxn nested in a MultiTxn nested in ... (12 bytes per level) used to recurse once per
/// level and overflow the stack on hostile input of about a megabyte. ZooKeeper accepts no
/// multi (or session, ACL, reconfig) sub-txn at all; neither do we.
#[test]
fn deeply_nested_multi_txn_is_an_error_not_a_stack_overflow() {
    const DEPTH: usize = 100_000;
    let mut b = TxnHeader {
        r#type: op::MULTI,
        ..TxnHeader::default()
    }
    .to_bytes();
    for level in 0..DEPTH {
        b.put_i32(1); // one sub-txn
        b.put_i32(op::MULTI); // of type multi
        b.put_i32((12 * (DEPTH - level - 1) + 4) as i32); // whose record is the next level
    }
    b.put_i32(0); // the innermost multi is empty
    assert!(b.len() < 2 * corral_proto::jute::JUTE_MAX_BUFFER_DEFAULT);
    assert_eq!(
        Txn::from_bytes(&b),
        Err(DecodeError::Invalid {
            what: "multi sub-txn type",
            value: op::MULTI as i64
        })
    );
}

/// A frame of 1 MiB whose vector count claims one Acl per remaining byte, but whose first
/// element is already malformed, used to reserve count × 56 bytes (~56 MiB) before failing.
#[test]
fn hostile_vector_count_does_not_preallocate() {
    const N: usize = 1 << 20;
    let mut b = Vec::with_capacity(N + 4);
    b.put_i32(N as i32);
    b.put_i32(31); // perms
    b.put_i32(-2); // scheme: bad length
    b.resize(N + 4, 0);
    let (res, largest) = largest_allocation_in(|| Vec::<Acl>::from_bytes(&b));
    assert_eq!(res, Err(DecodeError::BadLength { offset: 8, len: -2 }));
    assert!(
        largest < ALLOC_CEILING,
        "allocated {largest} bytes for a {N}-byte input"
    );
    // The same through a request: setACL with such an ACL vector.
    let mut req = Vec::new();
    req.put_ustring(Some("/a"));
    req.extend_from_slice(&b);
    let (res, largest) =
        largest_allocation_in(|| Request::read(op::SET_ACL, &mut Reader::new(&req)));
    assert!(
        matches!(res, Err(DecodeError::BadLength { len: -2, .. })),
        "{res:?}"
    );
    assert!(
        largest < ALLOC_CEILING,
        "allocated {largest} bytes for a {N}-byte request"
    );
}

/// A legitimately long vector still decodes (the pre-allocation cap is not a length limit).
#[test]
fn long_vectors_still_decode() {
    let children: Vec<String> = (0..5000).map(|i| format!("/n{i}")).collect();
    assert_eq!(
        Vec::<String>::from_bytes(&children.to_bytes()),
        Ok(children)
    );
}

#[test]
fn sub_txn_types_zookeeper_rejects_are_errors() {
    for body in [
        TxnBody::Multi(vec![]),
        TxnBody::CreateSession(CreateSessionTxn { time_out: 1 }),
        TxnBody::CloseSession(None),
        TxnBody::SetAcl(SetAclTxn::default()),
        TxnBody::Reconfig(SetDataTxn::default()),
    ] {
        let mut b = Vec::new();
        TxnBody::Multi(vec![body.clone()]).write(&mut b);
        assert_eq!(
            TxnBody::read(op::MULTI, &mut Reader::new(&b)),
            Err(DecodeError::Invalid {
                what: "multi sub-txn type",
                value: body.type_code() as i64
            }),
            "{body:?}"
        );
    }
}
