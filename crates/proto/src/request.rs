//! Client requests decoded from frames, and reply frames encoded for clients.
//!
//! A frame body after the handshake is `RequestHeader` + a record chosen by the header's type
//! (reference §2.3–2.6). Decoding never panics on hostile input: it returns `DecodeError`, and
//! the caller closes the connection.

use crate::error::DecodeError;
use crate::jute::{Jute, Reader, WriteJute};
use crate::records::*;

/// One operation inside a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create (1), create2 (15) or createContainer (19); the header type is kept because the
    /// server reports creates by flags, not by header type.
    Create {
        op: i32,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetData(PathWatchRequest),
    GetChildren(PathWatchRequest),
}

impl MultiOp {
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetData(_) | MultiOp::GetChildren(_))
    }

    pub fn op_code(&self) -> i32 {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::CreateTtl(_) => op::CREATE_TTL,
            MultiOp::Delete(_) => op::DELETE,
            MultiOp::SetData(_) => op::SET_DATA,
            MultiOp::Check(_) => op::CHECK,
            MultiOp::GetData(_) => op::GET_DATA,
            MultiOp::GetChildren(_) => op::GET_CHILDREN,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { req, .. } => &req.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetData(r) | MultiOp::GetChildren(r) => &r.path,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        MultiHeader {
            r#type: self.op_code(),
            done: false,
            err: -1,
        }
        .write(out);
        match self {
            MultiOp::Create { req, .. } => req.write(out),
            MultiOp::CreateTtl(r) => r.write(out),
            MultiOp::Delete(r) => r.write(out),
            MultiOp::SetData(r) => r.write(out),
            MultiOp::Check(r) => r.write(out),
            MultiOp::GetData(r) | MultiOp::GetChildren(r) => r.write(out),
        }
    }
}

/// Why a multi body could not be used; the server answers MarshallingError for these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiDecode {
    Ops(Vec<MultiOp>),
    /// An op type that is not allowed in a multi, or read and write ops mixed.
    Marshalling,
}

/// A decoded client request (everything after the handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(MultiDecode),
    MultiRead(MultiDecode),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchesRequest),
    RemoveWatches(WatchesRequest),
    AddWatch(AddWatchRequest),
    SetWatches(SetWatches2),
    /// Kept apart from SetWatches only to echo the opcode in logs; same semantics.
    SetWatches2(SetWatches2),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    WhoAmI,
    CloseSession,
    Auth(AuthPacket),
    Sasl(SaslToken),
}

impl Request {
    /// Decode the record of a request of type `op_type` from `r`.
    pub fn read(op_type: i32, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        Ok(match op_type {
            op::CREATE => Request::Create(CreateRequest::read(r)?),
            op::CREATE2 => Request::Create2(CreateRequest::read(r)?),
            op::CREATE_CONTAINER => Request::CreateContainer(CreateRequest::read(r)?),
            op::CREATE_TTL => Request::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => Request::Delete(DeleteRequest::read(r)?),
            op::EXISTS => Request::Exists(PathWatchRequest::read(r)?),
            op::GET_DATA => Request::GetData(PathWatchRequest::read(r)?),
            op::SET_DATA => Request::SetData(SetDataRequest::read(r)?),
            op::GET_ACL => Request::GetAcl(PathRequest::read(r)?),
            op::SET_ACL => Request::SetAcl(SetAclRequest::read(r)?),
            op::GET_CHILDREN => Request::GetChildren(PathWatchRequest::read(r)?),
            op::GET_CHILDREN2 => Request::GetChildren2(PathWatchRequest::read(r)?),
            op::SYNC => Request::Sync(PathRequest::read(r)?),
            op::PING => Request::Ping,
            op::CHECK => Request::Check(CheckVersionRequest::read(r)?),
            op::MULTI => Request::Multi(read_multi(r, false)?),
            op::MULTI_READ => Request::MultiRead(read_multi(r, true)?),
            op::RECONFIG => Request::Reconfig(ReconfigRequest::read(r)?),
            op::CHECK_WATCHES => Request::CheckWatches(WatchesRequest::read(r)?),
            op::REMOVE_WATCHES => Request::RemoveWatches(WatchesRequest::read(r)?),
            op::ADD_WATCH => Request::AddWatch(AddWatchRequest::read(r)?),
            op::SET_WATCHES => {
                let s = SetWatches::read(r)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: s.relative_zxid,
                    data_watches: s.data_watches,
                    exist_watches: s.exist_watches,
                    child_watches: s.child_watches,
                    persistent_watches: vec![],
                    persistent_recursive_watches: vec![],
                })
            }
            op::SET_WATCHES2 => Request::SetWatches2(SetWatches2::read(r)?),
            op::GET_EPHEMERALS => Request::GetEphemerals(PathRequest::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber(PathRequest::read(r)?),
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            op::AUTH => Request::Auth(AuthPacket::read(r)?),
            op::SASL => Request::Sasl(SaslToken::read(r)?),
            other => return Err(DecodeError::UnknownOpCode(other)),
        })
    }

    /// Encode as a request body (without the RequestHeader); used by tests and tools.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.write(out),
            Request::CreateTtl(r) => r.write(out),
            Request::Delete(r) => r.write(out),
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => r.write(out),
            Request::SetData(r) => r.write(out),
            Request::GetAcl(r)
            | Request::Sync(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => r.write(out),
            Request::SetAcl(r) => r.write(out),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Check(r) => r.write(out),
            Request::Multi(m) | Request::MultiRead(m) => {
                if let MultiDecode::Ops(ops) = m {
                    for o in ops {
                        o.write(out);
                    }
                }
                MultiHeader {
                    r#type: -1,
                    done: true,
                    err: -1,
                }
                .write(out);
            }
            Request::Reconfig(r) => r.write(out),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => r.write(out),
            Request::AddWatch(r) => r.write(out),
            Request::SetWatches(r) => SetWatches {
                relative_zxid: r.relative_zxid,
                data_watches: r.data_watches.clone(),
                exist_watches: r.exist_watches.clone(),
                child_watches: r.child_watches.clone(),
            }
            .write(out),
            Request::SetWatches2(r) => r.write(out),
            Request::Auth(r) => r.write(out),
            Request::Sasl(r) => r.write(out),
        }
    }

    pub fn op_code(&self) -> i32 {
        match self {
            Request::Create(_) => op::CREATE,
            Request::Create2(_) => op::CREATE2,
            Request::CreateContainer(_) => op::CREATE_CONTAINER,
            Request::CreateTtl(_) => op::CREATE_TTL,
            Request::Delete(_) => op::DELETE,
            Request::Exists(_) => op::EXISTS,
            Request::GetData(_) => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl(_) => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren(_) => op::GET_CHILDREN,
            Request::GetChildren2(_) => op::GET_CHILDREN2,
            Request::Sync(_) => op::SYNC,
            Request::Ping => op::PING,
            Request::Check(_) => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig(_) => op::RECONFIG,
            Request::CheckWatches(_) => op::CHECK_WATCHES,
            Request::RemoveWatches(_) => op::REMOVE_WATCHES,
            Request::AddWatch(_) => op::ADD_WATCH,
            Request::SetWatches(_) => op::SET_WATCHES,
            Request::SetWatches2(_) => op::SET_WATCHES2,
            Request::GetEphemerals(_) => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber(_) => op::GET_ALL_CHILDREN_NUMBER,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
            Request::Auth(_) => op::AUTH,
            Request::Sasl(_) => op::SASL,
        }
    }

    /// Whether this request changes state and so is turned into a txn (consuming a zxid).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(_)
                | Request::Create2(_)
                | Request::CreateContainer(_)
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::CloseSession
        )
    }
}

fn read_multi(r: &mut Reader<'_>, read_only: bool) -> Result<MultiDecode, DecodeError> {
    let mut ops = Vec::new();
    let mut marshalling = false;
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            break;
        }
        let o = match h.r#type {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => MultiOp::Create {
                op: h.r#type,
                req: CreateRequest::read(r)?,
            },
            op::CREATE_TTL => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            op::GET_DATA => MultiOp::GetData(PathWatchRequest::read(r)?),
            op::GET_CHILDREN => MultiOp::GetChildren(PathWatchRequest::read(r)?),
            // The record layout of an unknown op is unknown, so nothing after it can be read.
            _ => return Ok(MultiDecode::Marshalling),
        };
        if o.is_read() != read_only {
            marshalling = true;
        }
        ops.push(o);
    }
    Ok(if marshalling {
        MultiDecode::Marshalling
    } else {
        MultiDecode::Ops(ops)
    })
}

/// The ConnectRequest with its optional trailing `readOnly` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub req: ConnectRequest,
    /// `None` for an "old" client that sent no readOnly byte; then the reply omits it too.
    pub read_only: Option<bool>,
}

impl Connect {
    pub fn read(body: &[u8]) -> Result<Connect, DecodeError> {
        let mut r = Reader::new(body);
        let req = ConnectRequest::read(&mut r)?;
        let read_only = if r.is_empty() {
            None
        } else {
            Some(r.read_bool()?)
        };
        Ok(Connect { req, read_only })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        self.req.write(out);
        if let Some(ro) = self.read_only {
            out.put_bool(ro);
        }
    }
}

/// Frame a ConnectResponse (length prefix included).
pub fn connect_response_frame(resp: &ConnectResponse, read_only: Option<bool>) -> Vec<u8> {
    let mut body = Vec::with_capacity(41);
    resp.write(&mut body);
    if let Some(ro) = read_only {
        body.put_bool(ro);
    }
    frame(&body)
}

/// Prefix a payload with its i32 length.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.put_i32(body.len() as i32);
    out.extend_from_slice(body);
    out
}

/// Encode a reply frame: ReplyHeader and, when `err == 0`, the response body bytes.
pub fn reply_frame(xid: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<u8> {
    let len = 16 + if err == 0 { body.len() } else { 0 };
    let mut out = Vec::with_capacity(len + 4);
    out.put_i32(len as i32);
    ReplyHeader { xid, zxid, err }.write(&mut out);
    if err == 0 {
        out.extend_from_slice(body);
    }
    out
}

/// A reply that carries a body although it reports an error: ZooKeeper's failed SASL step
/// (AuthFailed with an empty SetSASLResponse), whose body the Java client reads either way.
pub fn error_frame_with_body(xid: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + body.len());
    out.put_i32((16 + body.len()) as i32);
    ReplyHeader { xid, zxid, err }.write(&mut out);
    out.extend_from_slice(body);
    out
}

/// A watch notification frame (xid -1, zxid -1).
pub fn notification_frame(event: &WatcherEvent) -> Vec<u8> {
    reply_frame(xid::NOTIFICATION, -1, 0, &event.to_bytes())
}

/// One result inside a MultiResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetData(Data, Stat),
    GetChildren(Vec<String>),
    Error(i32),
}

/// Encode a MultiResponse body (per-op headers + records + terminator).
pub fn write_multi_response(results: &[MultiResult], out: &mut Vec<u8>) {
    for res in results {
        let (t, err) = match res {
            MultiResult::Create(_) => (op::CREATE, 0),
            MultiResult::Create2(..) => (op::CREATE2, 0),
            MultiResult::Delete => (op::DELETE, 0),
            MultiResult::SetData(_) => (op::SET_DATA, 0),
            MultiResult::Check => (op::CHECK, 0),
            MultiResult::GetData(..) => (op::GET_DATA, 0),
            MultiResult::GetChildren(_) => (op::GET_CHILDREN, 0),
            MultiResult::Error(e) => (-1, *e),
        };
        MultiHeader {
            r#type: t,
            done: false,
            err,
        }
        .write(out);
        match res {
            MultiResult::Create(p) => out.put_ustring(Some(p)),
            MultiResult::Create2(p, s) => {
                out.put_ustring(Some(p));
                s.write(out);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(s) => s.write(out),
            MultiResult::GetData(d, s) => {
                d.write(out);
                s.write(out);
            }
            MultiResult::GetChildren(c) => c.write(out),
            MultiResult::Error(e) => out.put_i32(*e),
        }
    }
    MultiHeader {
        r#type: -1,
        done: true,
        err: -1,
    }
    .write(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Reference §7: ConnectResponse payload for a new 30 s session.
    #[test]
    fn connect_response_golden() {
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: 30000,
            session_id: 0x10000598c4a0000,
            passwd: Some(hex("a4c3ed7361d6c6592239b1451228c4a2")),
        };
        let f = connect_response_frame(&resp, Some(false));
        assert_eq!(
            f[4..],
            hex("00000000 00007530 010000598c4a0000 00000010 a4c3ed7361d6c6592239b1451228c4a2 00")
        );
        assert_eq!(connect_response_frame(&resp, None).len(), 4 + 36);
    }

    /// Reference §7: ping reply and create-NodeExists error reply frames.
    #[test]
    fn reply_frames_golden() {
        assert_eq!(
            reply_frame(-2, 2, 0, &[]),
            hex("00000010 fffffffe 0000000000000002 00000000")
        );
        assert_eq!(
            reply_frame(2, 4, -110, b"ignored"),
            hex("00000010 00000002 0000000000000004 ffffff92")
        );
    }

    /// Reference §7: notification frame for NodeCreated on /w.
    #[test]
    fn notification_golden() {
        let f = notification_frame(&WatcherEvent {
            r#type: 1,
            state: 3,
            path: "/w".into(),
        });
        assert_eq!(
            f[4..],
            hex("ffffffff ffffffffffffffff 00000000 00000001 00000003 00000002 2f77")
        );
    }

    /// Reference §2.6: failed multi `[create ok, create NodeExists, setData]` and empty multi.
    #[test]
    fn multi_response_golden() {
        let mut out = Vec::new();
        write_multi_response(
            &[
                MultiResult::Error(0),
                MultiResult::Error(-110),
                MultiResult::Error(-2),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            hex("ffffffff 00 00000000 00000000 ffffffff 00 ffffff92 ffffff92
                 ffffffff 00 fffffffe fffffffe ffffffff 01 ffffffff")
        );
        let mut out = Vec::new();
        write_multi_response(&[], &mut out);
        assert_eq!(out, hex("ffffffff 01 ffffffff"));
    }

    #[test]
    fn connect_request_with_and_without_read_only_byte() {
        let c = Connect {
            req: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 30000,
                session_id: 0,
                passwd: Some(vec![0; 16]),
            },
            read_only: Some(false),
        };
        let mut b = Vec::new();
        c.write(&mut b);
        assert_eq!(b.len(), 45);
        assert_eq!(Connect::read(&b).unwrap(), c);
        assert_eq!(Connect::read(&b[..44]).unwrap().read_only, None);
    }

    #[test]
    fn multi_mixing_reads_and_writes_is_marshalling_error() {
        let req = Request::Multi(MultiDecode::Ops(vec![
            MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 1,
            }),
            MultiOp::GetData(PathWatchRequest {
                path: "/a".into(),
                watch: false,
            }),
        ]));
        let mut b = Vec::new();
        req.write(&mut b);
        assert_eq!(
            Request::read(op::MULTI, &mut Reader::new(&b)).unwrap(),
            Request::Multi(MultiDecode::Marshalling)
        );
    }

    #[test]
    fn unknown_opcode_is_an_error() {
        assert_eq!(
            Request::read(10, &mut Reader::new(&[])),
            Err(DecodeError::UnknownOpCode(10))
        );
    }
}
