//! Transaction records (`org.apache.zookeeper.txn`): the byte string that is a txn-log entry,
//! the data of a PROPOSAL, and what the data tree applies. Layout: reference §5.

use crate::error::DecodeError;
use crate::jute::{Jute, Reader, WriteJute};
use crate::record;
use crate::records::{op, Acl, Data};

record! {
    /// 32 bytes in front of every txn.
    pub struct TxnHeader {
        pub client_id: i64, pub cxid: i32, pub zxid: i64, pub time: i64, pub r#type: i32,
    }
}
record! {
    pub struct CreateTxn {
        pub path: String, pub data: Data, pub acl: Vec<Acl>, pub ephemeral: bool,
        pub parent_cversion: i32,
    }
}
record! {
    pub struct CreateContainerTxn {
        pub path: String, pub data: Data, pub acl: Vec<Acl>, pub parent_cversion: i32,
    }
}
record! {
    pub struct CreateTtlTxn {
        pub path: String, pub data: Data, pub acl: Vec<Acl>, pub parent_cversion: i32, pub ttl: i64,
    }
}
record! { pub struct DeleteTxn { pub path: String } }
record! { pub struct SetDataTxn { pub path: String, pub data: Data, pub version: i32 } }
record! { pub struct SetAclTxn { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
record! { pub struct CheckVersionTxn { pub path: String, pub version: i32 } }
record! { pub struct CreateSessionTxn { pub time_out: i32 } }
record! { pub struct CloseSessionTxn { pub paths_to_delete: Vec<String> } }
record! { pub struct ErrorTxn { pub err: i32 } }
record! { pub struct TxnDigest { pub version: i32, pub tree_digest: i64 } }
record! {
    /// One sub-txn of a MultiTxn as it appears on the wire: its type and its serialized record.
    pub struct RawSubTxn { pub r#type: i32, pub data: Data }
}

/// The digest version ZooKeeper 3.8 writes.
pub const DIGEST_VERSION: i32 = 2;

/// The txn types that may appear inside a MultiTxn (`DataTree.processTxn`).
pub const MULTI_SUB_TXN_TYPES: &[i32] = &[
    op::CREATE,
    op::CREATE2,
    op::CREATE_CONTAINER,
    op::CREATE_TTL,
    op::DELETE,
    op::DELETE_CONTAINER,
    op::SET_DATA,
    op::CHECK,
    op::ERROR,
];

/// A decoded txn body, chosen by `TxnHeader.type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnBody {
    /// type 1 (create) or 15 (create2; accepted on read, 3.8 writes 1).
    Create(CreateTxn),
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTtlTxn),
    /// type 2 (delete).
    Delete(DeleteTxn),
    /// type 20 (deleteContainer, issued by the server's container reaper).
    DeleteContainer(DeleteTxn),
    SetData(SetDataTxn),
    /// type 16: a SetDataTxn on /zookeeper/config.
    Reconfig(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    Multi(Vec<TxnBody>),
    CreateSession(CreateSessionTxn),
    /// `None` when `zookeeper.closeSessionTxn.enabled=false` wrote no record.
    CloseSession(Option<CloseSessionTxn>),
    Error(ErrorTxn),
}

impl TxnBody {
    /// The txn type as written in headers and MultiTxn entries.
    pub fn type_code(&self) -> i32 {
        match self {
            TxnBody::Create(_) => op::CREATE,
            TxnBody::CreateContainer(_) => op::CREATE_CONTAINER,
            TxnBody::CreateTtl(_) => op::CREATE_TTL,
            TxnBody::Delete(_) => op::DELETE,
            TxnBody::DeleteContainer(_) => op::DELETE_CONTAINER,
            TxnBody::SetData(_) => op::SET_DATA,
            TxnBody::Reconfig(_) => op::RECONFIG,
            TxnBody::SetAcl(_) => op::SET_ACL,
            TxnBody::Check(_) => op::CHECK,
            TxnBody::Multi(_) => op::MULTI,
            TxnBody::CreateSession(_) => op::CREATE_SESSION,
            TxnBody::CloseSession(_) => op::CLOSE_SESSION,
            TxnBody::Error(_) => op::ERROR,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            TxnBody::Create(t) => t.write(out),
            TxnBody::CreateContainer(t) => t.write(out),
            TxnBody::CreateTtl(t) => t.write(out),
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => t.write(out),
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => t.write(out),
            TxnBody::SetAcl(t) => t.write(out),
            TxnBody::Check(t) => t.write(out),
            TxnBody::Multi(subs) => {
                out.put_i32(subs.len() as i32);
                for s in subs {
                    out.put_i32(s.type_code());
                    let mut data = Vec::new();
                    s.write(&mut data);
                    out.put_buffer(Some(&data));
                }
            }
            TxnBody::CreateSession(t) => t.write(out),
            TxnBody::CloseSession(t) => {
                if let Some(t) = t {
                    t.write(out)
                }
            }
            TxnBody::Error(t) => t.write(out),
        }
    }

    /// Decode the record for `type_code`. `legacy_create_ok` lets a CreateTxn without
    /// parentCVersion (CreateTxnV0) decode with parentCVersion -1.
    pub fn read(type_code: i32, r: &mut Reader<'_>) -> Result<TxnBody, DecodeError> {
        Ok(match type_code {
            op::CREATE | op::CREATE2 => {
                let path = String::read(r)?;
                let data = Data::read(r)?;
                let acl = Vec::<Acl>::read(r)?;
                let ephemeral = bool::read(r)?;
                // CreateTxnV0 (pre-3.x) ends here; parentCVersion -1 means "parent's + 1".
                let parent_cversion = if r.remaining() >= 4 {
                    r.read_i32()?
                } else {
                    -1
                };
                TxnBody::Create(CreateTxn {
                    path,
                    data,
                    acl,
                    ephemeral,
                    parent_cversion,
                })
            }
            op::CREATE_CONTAINER => TxnBody::CreateContainer(CreateContainerTxn::read(r)?),
            op::CREATE_TTL => TxnBody::CreateTtl(CreateTtlTxn::read(r)?),
            op::DELETE => TxnBody::Delete(DeleteTxn::read(r)?),
            op::DELETE_CONTAINER => TxnBody::DeleteContainer(DeleteTxn::read(r)?),
            op::SET_DATA => TxnBody::SetData(SetDataTxn::read(r)?),
            op::RECONFIG => TxnBody::Reconfig(SetDataTxn::read(r)?),
            op::SET_ACL => TxnBody::SetAcl(SetAclTxn::read(r)?),
            op::CHECK => TxnBody::Check(CheckVersionTxn::read(r)?),
            op::MULTI => {
                let subs = Vec::<RawSubTxn>::read(r)?;
                let mut out = Vec::with_capacity(subs.len());
                for s in subs {
                    // ZooKeeper's DataTree accepts only these sub-txn types (15 since 3.8.2).
                    // Refusing the rest also bounds the recursion: a multi nested in a multi
                    // nested in ... would otherwise recurse once per 12 hostile bytes.
                    if !MULTI_SUB_TXN_TYPES.contains(&s.r#type) {
                        return Err(DecodeError::Invalid {
                            what: "multi sub-txn type",
                            value: s.r#type as i64,
                        });
                    }
                    let data = s.data.unwrap_or_default();
                    out.push(TxnBody::read(s.r#type, &mut Reader::new(&data))?);
                }
                TxnBody::Multi(out)
            }
            op::CREATE_SESSION => TxnBody::CreateSession(CreateSessionTxn::read(r)?),
            op::CLOSE_SESSION => {
                if r.is_empty() {
                    TxnBody::CloseSession(None)
                } else {
                    TxnBody::CloseSession(Some(CloseSessionTxn::read(r)?))
                }
            }
            op::ERROR => TxnBody::Error(ErrorTxn::read(r)?),
            other => {
                return Err(DecodeError::Invalid {
                    what: "txn type",
                    value: other as i64,
                })
            }
        })
    }

    /// Whether a txn of this kind carries a TxnDigest after its record (error txns do not).
    pub fn has_digest(&self) -> bool {
        !matches!(self, TxnBody::Error(_))
    }
}

/// A whole txn: header, body and optional digest of the tree after applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub header: TxnHeader,
    pub body: TxnBody,
    pub digest: Option<TxnDigest>,
}

impl Txn {
    pub fn zxid(&self) -> i64 {
        self.header.zxid
    }

    /// Serialize header + record + digest, as in a txn log entry or PROPOSAL.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.header.write(&mut out);
        self.body.write(&mut out);
        if let Some(d) = &self.digest {
            d.write(&mut out);
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Txn, DecodeError> {
        let mut r = Reader::new(b);
        let header = TxnHeader::read(&mut r)?;
        let body = if header.r#type == op::CLOSE_SESSION && close_session_is_bare_digest(&r) {
            TxnBody::CloseSession(None)
        } else {
            TxnBody::read(header.r#type, &mut r)?
        };
        // The digest is optional: its absence shows as end of input.
        let digest = if r.remaining() >= 12 {
            Some(TxnDigest::read(&mut r)?)
        } else {
            None
        };
        Ok(Txn {
            header,
            body,
            digest,
        })
    }
}

/// Whether what follows a closeSession header is a TxnDigest alone (no CloseSessionTxn record,
/// as written with `zookeeper.closeSessionTxn.enabled=false`) rather than a record. ZooKeeper
/// decides this from its own configuration; we decide from the bytes: exactly 12 bytes left
/// starting with the digest version. Read as a record, those 12 bytes would be a vector of two
/// paths, and a 12-byte record with two paths can only hold two empty paths, which no session
/// owns; a real record followed by a digest is always longer than 12 bytes.
fn close_session_is_bare_digest(r: &Reader<'_>) -> bool {
    let rest = r.rest();
    rest.len() == 12 && rest[..4] == DIGEST_VERSION.to_be_bytes()
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

    /// The first entry of a fresh ZooKeeper 3.8.0 `log.1` (reference §5.2): a createSession txn
    /// with its digest. Decoding then re-encoding must give the same 48 bytes.
    #[test]
    fn create_session_golden_bytes() {
        let bytes = hex(
            "010000598c4a0000 00000000 0000000000000001 000001a20ff6fb2c fffffff6 00007530
             00000002 0000000051c6d660",
        );
        let txn = Txn::from_bytes(&bytes).unwrap();
        assert_eq!(txn.header.client_id, 0x10000598c4a0000);
        assert_eq!(txn.header.zxid, 1);
        assert_eq!(
            txn.body,
            TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 })
        );
        assert_eq!(
            txn.digest,
            Some(TxnDigest {
                version: 2,
                tree_digest: 0x51c6d660
            })
        );
        assert_eq!(txn.to_bytes(), bytes);
    }

    #[test]
    fn error_txn_has_no_digest() {
        let txn = Txn {
            header: TxnHeader {
                client_id: 1,
                cxid: 2,
                zxid: 4,
                time: 5,
                r#type: op::ERROR,
            },
            body: TxnBody::Error(ErrorTxn { err: -110 }),
            digest: None,
        };
        let b = txn.to_bytes();
        assert_eq!(b.len(), 32 + 4);
        assert_eq!(Txn::from_bytes(&b).unwrap(), txn);
    }

    #[test]
    fn multi_round_trip() {
        let body = TxnBody::Multi(vec![
            TxnBody::Create(CreateTxn {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                acl: vec![Acl::new(31, "world", "anyone")],
                ephemeral: false,
                parent_cversion: 1,
            }),
            TxnBody::Check(CheckVersionTxn {
                path: "/a".into(),
                version: 1,
            }),
            TxnBody::Error(ErrorTxn { err: -2 }),
        ]);
        let txn = Txn {
            header: TxnHeader {
                client_id: 1,
                cxid: 2,
                zxid: 3,
                time: 4,
                r#type: op::MULTI,
            },
            body,
            digest: Some(TxnDigest {
                version: 2,
                tree_digest: 77,
            }),
        };
        assert_eq!(Txn::from_bytes(&txn.to_bytes()).unwrap(), txn);
    }
}
