//! `corral data`: tools for an operator looking at a data directory, corral's or ZooKeeper 3.8's
//! own (the formats are the same, reference §5–6). Nothing here writes to the files it reads.
//!
//! - `log <file> [--json]`: one line per txn of a txn log.
//! - `snapshot <file> [--json]`: header, sessions, ACL cache, every node, the seals and digest.
//! - `verify <dataDir> [--log-dir D]`: every log entry's checksum, every snapshot's seals; torn
//!   tails and corruption with file and offset; fails on corruption.
//! - `show <dataDir> [--log-dir D]`: what start-up would load, from a dry run of the real
//!   start-up code over the files (`DryRunDisk`): which snapshot, which logs, what it would cut.
//!
//! `--json` prints JSON lines, each an object with a `kind` field. zxids and session ids are hex
//! strings (`"0x100000001"`) as ZooKeeper prints them, and because they do not fit a double.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use corral_proto::jute::{Jute, Reader};
use corral_proto::records::{op, Acl, StatPersisted};
use corral_proto::txn::{Txn, TxnBody};
use corral_storage::disk::{DryRunDisk, RealDisk};
use corral_storage::snapshot::{self, Compression};
use corral_storage::store::{FileStore, StoreOptions};
use corral_storage::txnlog::{self, End};

/// jute.maxbuffer as ZooKeeper's default (1 MiB) plus the framing slack start-up allows.
const MAX_TXN_LEN: usize = (1 << 20) + 1024;
/// Bytes of node data shown in text output.
const PREVIEW_BYTES: usize = 48;

#[derive(Subcommand, Debug)]
pub enum DataCmd {
    /// Dump a txn log (log.<zxid>): one line per txn.
    Log {
        file: PathBuf,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Dump a snapshot (snapshot.<zxid>[.gz|.snappy]): sessions, ACLs, every node, seals.
    Snapshot {
        file: PathBuf,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check every log entry and snapshot in a data directory; exits 1 on corruption.
    Verify {
        /// dataDir (the directory holding version-2/).
        data_dir: PathBuf,
        /// dataLogDir, when the txn logs are kept apart.
        #[arg(long)]
        log_dir: Option<PathBuf>,
    },
    /// Show what start-up would load from a data directory, without writing anything.
    Show {
        /// dataDir (the directory holding version-2/).
        data_dir: PathBuf,
        /// dataLogDir, when the txn logs are kept apart.
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// As -Dzookeeper.snapshot.trust.empty=true.
        #[arg(long)]
        trust_empty_snapshot: bool,
        /// As -Dcorral.truncateCorruptLog=true.
        #[arg(long)]
        truncate_corrupt_log: bool,
    },
}

pub fn run(cmd: DataCmd) -> anyhow::Result<()> {
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let r = match cmd {
        DataCmd::Log { file, json } => log(&mut out, &file, json),
        DataCmd::Snapshot { file, json } => snapshot_cmd(&mut out, &file, json),
        DataCmd::Verify { data_dir, log_dir } => verify(&mut out, &data_dir, log_dir.as_deref()),
        DataCmd::Show {
            data_dir,
            log_dir,
            trust_empty_snapshot,
            truncate_corrupt_log,
        } => show(
            &mut out,
            &data_dir,
            log_dir.as_deref(),
            trust_empty_snapshot,
            truncate_corrupt_log,
        ),
    };
    let flushed = out.flush();
    // Output piped into `head` is not an error worth a message.
    let broken_pipe = |e: &anyhow::Error| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    };
    match (r, flushed) {
        (Err(e), _) if broken_pipe(&e) => Ok(()),
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        (Ok(()), Err(e)) => Err(e.into()),
        (Ok(()), Ok(())) => Ok(()),
    }
}

type Out<'a> = std::io::BufWriter<std::io::StdoutLock<'a>>;

// ---------------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------------

/// A JSON object built field by field.
struct Obj(String);

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Obj {
    fn new(kind: &str) -> Obj {
        let mut o = Obj(String::from("{"));
        o.str("kind", kind);
        o
    }

    fn bare() -> Obj {
        Obj(String::from("{"))
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&json_str(k));
        self.0.push(':');
    }

    fn str(&mut self, k: &str, v: &str) -> &mut Obj {
        self.key(k);
        self.0.push_str(&json_str(v));
        self
    }

    fn num(&mut self, k: &str, v: impl Into<i128>) -> &mut Obj {
        self.key(k);
        let _ = write!(self.0, "{}", v.into());
        self
    }

    fn bool(&mut self, k: &str, v: bool) -> &mut Obj {
        self.key(k);
        self.0.push_str(if v { "true" } else { "false" });
        self
    }

    fn raw(&mut self, k: &str, json: &str) -> &mut Obj {
        self.key(k);
        self.0.push_str(json);
        self
    }

    fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.0);
        s.push('}');
        s
    }
}

fn json_array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

fn hex(z: i64) -> String {
    format!("0x{z:x}")
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Milliseconds since the epoch as ISO 8601 UTC (Howard Hinnant's civil-from-days).
fn iso_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

fn printable(b: &[u8]) -> bool {
    b.iter().all(|&c| (0x20..0x7f).contains(&c))
}

/// Node or txn data for text output: length, then the start as a quoted string or hex.
fn preview(data: &Option<Vec<u8>>) -> String {
    match data {
        None => "null".into(),
        Some(d) => {
            let shown = &d[..d.len().min(PREVIEW_BYTES)];
            let more = if d.len() > shown.len() { "..." } else { "" };
            if printable(shown) {
                format!("{}B {:?}{more}", d.len(), String::from_utf8_lossy(shown))
            } else {
                format!("{}B 0x{}{more}", d.len(), hex_bytes(shown))
            }
        }
    }
}

/// Node or txn data for JSON: its length and the whole of it as text (when it is printable
/// ASCII) or hex.
fn data_json(o: &mut Obj, data: &Option<Vec<u8>>) {
    match data {
        None => {
            o.raw("data", "null");
        }
        Some(d) => {
            o.num("data_len", d.len() as i64);
            if printable(d) {
                o.str("data", &String::from_utf8_lossy(d));
            } else {
                o.str("data_hex", &hex_bytes(d));
            }
        }
    }
}

fn acl_text(acl: &[Acl]) -> String {
    let parts: Vec<String> = acl
        .iter()
        .map(|a| format!("{} {}:{}", a.perms, a.id.scheme, a.id.id))
        .collect();
    format!("[{}]", parts.join(", "))
}

fn acl_json(acl: &[Acl]) -> String {
    json_array(acl.iter().map(|a| {
        Obj::bare()
            .num("perms", a.perms)
            .str("scheme", &a.id.scheme)
            .str("id", &a.id.id)
            .finish()
    }))
}

/// ZooKeeper's names for txn types (`TraceFormatter.op2String`).
fn type_name(code: i32) -> String {
    match code {
        op::CREATE => "create".into(),
        op::DELETE => "delete".into(),
        op::SET_DATA => "setData".into(),
        op::SET_ACL => "setACL".into(),
        op::CHECK => "check".into(),
        op::MULTI => "multi".into(),
        op::CREATE2 => "create2".into(),
        op::RECONFIG => "reconfig".into(),
        op::CREATE_CONTAINER => "createContainer".into(),
        op::DELETE_CONTAINER => "deleteContainer".into(),
        op::CREATE_TTL => "createTTL".into(),
        op::CREATE_SESSION => "createSession".into(),
        op::CLOSE_SESSION => "closeSession".into(),
        op::ERROR => "error".into(),
        other => format!("unknown({other})"),
    }
}

fn error_name(code: i32) -> String {
    match corral_proto::ErrorCode::from_code(code) {
        Some(e) => format!("{code} ({e:?})"),
        None => code.to_string(),
    }
}

/// One line's worth of a txn record.
fn body_text(b: &TxnBody) -> String {
    match b {
        TxnBody::Create(t) => format!(
            "{} data={} acl={} ephemeral={} parentCVersion={}",
            t.path,
            preview(&t.data),
            acl_text(&t.acl),
            t.ephemeral,
            t.parent_cversion
        ),
        TxnBody::CreateContainer(t) => {
            format!(
                "{} data={} acl={} parentCVersion={}",
                t.path,
                preview(&t.data),
                acl_text(&t.acl),
                t.parent_cversion
            )
        }
        TxnBody::CreateTtl(t) => format!(
            "{} data={} acl={} parentCVersion={} ttl={}",
            t.path,
            preview(&t.data),
            acl_text(&t.acl),
            t.parent_cversion,
            t.ttl
        ),
        TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => t.path.clone(),
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
            format!("{} data={} version={}", t.path, preview(&t.data), t.version)
        }
        TxnBody::SetAcl(t) => format!("{} acl={} version={}", t.path, acl_text(&t.acl), t.version),
        TxnBody::Check(t) => format!("{} version={}", t.path, t.version),
        TxnBody::Multi(subs) => {
            let parts: Vec<String> = subs
                .iter()
                .map(|s| format!("{} {}", type_name(s.type_code()), body_text(s)))
                .collect();
            format!("{} ops: {}", subs.len(), parts.join("; "))
        }
        TxnBody::CreateSession(t) => format!("timeout={}", t.time_out),
        TxnBody::CloseSession(None) => "(no record)".into(),
        TxnBody::CloseSession(Some(t)) => format!("ephemerals=[{}]", t.paths_to_delete.join(", ")),
        TxnBody::Error(t) => format!("err={}", error_name(t.err)),
    }
}

fn body_json(b: &TxnBody) -> String {
    let mut o = Obj::bare();
    match b {
        TxnBody::Create(t) => {
            o.str("path", &t.path);
            data_json(&mut o, &t.data);
            o.raw("acl", &acl_json(&t.acl))
                .bool("ephemeral", t.ephemeral)
                .num("parent_cversion", t.parent_cversion);
        }
        TxnBody::CreateContainer(t) => {
            o.str("path", &t.path);
            data_json(&mut o, &t.data);
            o.raw("acl", &acl_json(&t.acl))
                .num("parent_cversion", t.parent_cversion);
        }
        TxnBody::CreateTtl(t) => {
            o.str("path", &t.path);
            data_json(&mut o, &t.data);
            o.raw("acl", &acl_json(&t.acl))
                .num("parent_cversion", t.parent_cversion)
                .num("ttl", t.ttl);
        }
        TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => {
            o.str("path", &t.path);
        }
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
            o.str("path", &t.path);
            data_json(&mut o, &t.data);
            o.num("version", t.version);
        }
        TxnBody::SetAcl(t) => {
            o.str("path", &t.path)
                .raw("acl", &acl_json(&t.acl))
                .num("version", t.version);
        }
        TxnBody::Check(t) => {
            o.str("path", &t.path).num("version", t.version);
        }
        TxnBody::Multi(subs) => {
            let ops = json_array(subs.iter().map(|s| {
                let inner = body_json(s);
                // {"type":..., <the sub-record's fields>}
                let fields = &inner[1..inner.len() - 1];
                let sep = if fields.is_empty() { "" } else { "," };
                format!(
                    "{{\"type\":{}{sep}{fields}}}",
                    json_str(&type_name(s.type_code()))
                )
            }));
            o.raw("ops", &ops);
        }
        TxnBody::CreateSession(t) => {
            o.num("timeout", t.time_out);
        }
        TxnBody::CloseSession(None) => {}
        TxnBody::CloseSession(Some(t)) => {
            o.raw(
                "ephemerals",
                &json_array(t.paths_to_delete.iter().map(|p| json_str(p))),
            );
        }
        TxnBody::Error(t) => {
            o.num("err", t.err);
            if let Some(e) = corral_proto::ErrorCode::from_code(t.err) {
                o.str("err_name", &format!("{e:?}"));
            }
        }
    }
    o.finish()
}

fn stat_text(s: &StatPersisted) -> String {
    format!(
        "czxid={} mzxid={} pzxid={} ctime={} mtime={} version={} cversion={} aversion={} ephemeralOwner={}",
        hex(s.czxid),
        hex(s.mzxid),
        hex(s.pzxid),
        iso_time(s.ctime),
        iso_time(s.mtime),
        s.version,
        s.cversion,
        s.aversion,
        hex(s.ephemeral_owner)
    )
}

fn stat_json(s: &StatPersisted) -> String {
    Obj::bare()
        .str("czxid", &hex(s.czxid))
        .str("mzxid", &hex(s.mzxid))
        .str("pzxid", &hex(s.pzxid))
        .num("ctime", s.ctime)
        .num("mtime", s.mtime)
        .num("version", s.version)
        .num("cversion", s.cversion)
        .num("aversion", s.aversion)
        .str("ephemeral_owner", &hex(s.ephemeral_owner))
        .finish()
}

fn end_text(end: &End) -> String {
    match end {
        End::Clean { offset } => format!("clean end at offset {offset}"),
        End::Torn { offset, reason } => format!("torn entry at offset {offset}: {reason}"),
        End::Corrupt { offset, reason } => format!("CORRUPT entry at offset {offset}: {reason}"),
    }
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// corral data log
// ---------------------------------------------------------------------------------------------

fn log(out: &mut Out<'_>, path: &Path, json: bool) -> anyhow::Result<()> {
    let bytes = read_file(path)?;
    txnlog::check_header(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a txn log: {e}", path.display()))?;
    let dbid = i64::from_be_bytes(bytes[8..16].try_into().expect("checked header"));
    if json {
        let h = Obj::new("header")
            .str("file", &path.display().to_string())
            .num("magic", txnlog::MAGIC)
            .num("version", txnlog::VERSION)
            .num("dbid", dbid)
            .num("file_len", bytes.len() as i64)
            .finish();
        writeln!(out, "{h}")?;
    } else {
        writeln!(
            out,
            "# {}: ZKLG version {} dbid {dbid}, {} bytes",
            path.display(),
            txnlog::VERSION,
            bytes.len()
        )?;
    }
    let (entries, end) = txnlog::walk(&bytes, MAX_TXN_LEN);
    let mut undecodable = 0;
    let mut range: Option<(i64, i64)> = None;
    for e in &entries {
        match txnlog::decode(e) {
            Ok(t) => {
                range = Some((range.map_or(t.zxid(), |r| r.0), t.zxid()));
                writeln!(
                    out,
                    "{}",
                    if json {
                        txn_json(e.offset, &t)
                    } else {
                        txn_text(&t)
                    }
                )?;
            }
            Err(err) => {
                undecodable += 1;
                if json {
                    let o = Obj::new("undecodable")
                        .num("offset", e.offset as i64)
                        .str("error", &err.to_string())
                        .str("txn_hex", &hex_bytes(e.txn))
                        .finish();
                    writeln!(out, "{o}")?;
                } else {
                    writeln!(out, "? undecodable txn at offset {}: {err}", e.offset)?;
                }
            }
        }
    }
    if json {
        let mut o = Obj::new("end");
        o.num("txns", entries.len() as i64);
        match &end {
            End::Clean { offset } => o.str("end", "clean").num("offset", *offset as i64),
            End::Torn { offset, reason } => o
                .str("end", "torn")
                .num("offset", *offset as i64)
                .str("reason", reason),
            End::Corrupt { offset, reason } => o
                .str("end", "corrupt")
                .num("offset", *offset as i64)
                .str("reason", reason),
        };
        writeln!(out, "{}", o.finish())?;
    } else {
        let zxids = range.map_or(String::new(), |(a, b)| {
            format!(", zxid {}..{}", hex(a), hex(b))
        });
        writeln!(out, "# {} txns{zxids}; {}", entries.len(), end_text(&end))?;
    }
    if let End::Corrupt { offset, reason } = &end {
        bail!(
            "{}: corrupt txn log at offset {offset}: {reason}",
            path.display()
        );
    }
    if undecodable > 0 {
        bail!("{}: {undecodable} txn(s) do not decode", path.display());
    }
    Ok(())
}

fn txn_text(t: &Txn) -> String {
    let h = &t.header;
    let digest = t
        .digest
        .as_ref()
        .map_or("-".to_string(), |d| hex(d.tree_digest));
    format!(
        "{} {} session {} cxid {} {} {} digest {digest}",
        hex(h.zxid),
        iso_time(h.time),
        hex(h.client_id),
        hex(h.cxid as i64),
        type_name(h.r#type),
        body_text(&t.body)
    )
}

fn txn_json(offset: usize, t: &Txn) -> String {
    let h = &t.header;
    let mut o = Obj::new("txn");
    o.num("offset", offset as i64)
        .str("zxid", &hex(h.zxid))
        .num("time", h.time)
        .str("time_iso", &iso_time(h.time))
        .str("session", &hex(h.client_id))
        .num("cxid", h.cxid)
        .str("type", &type_name(h.r#type))
        .num("type_code", h.r#type)
        .raw("record", &body_json(&t.body));
    match &t.digest {
        Some(d) => o.raw(
            "digest",
            &Obj::bare()
                .num("version", d.version)
                .str("tree", &hex(d.tree_digest))
                .finish(),
        ),
        None => o.raw("digest", "null"),
    };
    o.finish()
}

// ---------------------------------------------------------------------------------------------
// corral data snapshot
// ---------------------------------------------------------------------------------------------

/// The compression of a snapshot file: from its name, else from its first bytes.
fn compression_of(path: &Path, bytes: &[u8]) -> Compression {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some((_, c)) = snapshot::parse_name(&name) {
        return c;
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Compression::Gz
    } else if bytes.starts_with(&snapshot::SNAPPY_MAGIC) {
        Compression::Snappy
    } else {
        Compression::None
    }
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "uncompressed",
        Compression::Gz => "gz",
        Compression::Snappy => "snappy",
    }
}

/// Everything in a snapshot stream, in file order, as it is decoded.
enum Item {
    Header {
        magic: i32,
        version: i32,
        dbid: i64,
    },
    Session {
        id: i64,
        timeout: i32,
    },
    AclList {
        aref: i64,
        acl: Vec<Acl>,
    },
    Node {
        path: String,
        data: Option<Vec<u8>>,
        aref: i64,
        stat: StatPersisted,
    },
    Seal {
        offset: usize,
        stored: i64,
        computed: i64,
    },
    Digest {
        zxid: i64,
        version: i32,
        digest: i64,
    },
}

/// Decode a snapshot stream item by item, calling `emit` for each; stops at the first
/// problem with its offset (in the uncompressed stream).
fn walk_snapshot(
    raw: &[u8],
    mut emit: impl FnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<Result<(), (usize, String)>> {
    let mut r = Reader::with_max_len(raw, raw.len());
    macro_rules! get {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(x) => return Ok(Err((r.position(), x.to_string()))),
            }
        };
    }
    let magic = get!(r.read_i32());
    let version = get!(r.read_i32());
    let dbid = get!(r.read_i64());
    emit(Item::Header {
        magic,
        version,
        dbid,
    })?;
    if magic != snapshot::MAGIC {
        return Ok(Err((
            0,
            format!("bad magic 0x{magic:08x} (expected 0x5a4b534e \"ZKSN\")"),
        )));
    }
    let n = get!(r.read_i32());
    if n < 0 {
        return Ok(Err((
            r.position() - 4,
            format!("negative session count {n}"),
        )));
    }
    for _ in 0..n {
        let id = get!(r.read_i64());
        let timeout = get!(r.read_i32());
        emit(Item::Session { id, timeout })?;
    }
    let n = get!(r.read_i32());
    if n < 0 {
        return Ok(Err((
            r.position() - 4,
            format!("negative ACL cache size {n}"),
        )));
    }
    for _ in 0..n {
        let aref = get!(r.read_i64());
        let acl = get!(Vec::<Acl>::read(&mut r));
        emit(Item::AclList { aref, acl })?;
    }
    loop {
        let path = get!(String::read(&mut r));
        if path == "/" {
            break;
        }
        let data = get!(Option::<Vec<u8>>::read(&mut r));
        let aref = get!(r.read_i64());
        let stat = get!(StatPersisted::read(&mut r));
        emit(Item::Node {
            path,
            data,
            aref,
            stat,
        })?;
    }
    for seal in 1..=2 {
        let offset = r.position();
        let stored = get!(r.read_i64());
        let slash = get!(String::read(&mut r));
        let computed = txnlog::adler32(&raw[..offset]) as i64;
        emit(Item::Seal {
            offset,
            stored,
            computed,
        })?;
        if stored != computed || slash != "/" {
            return Ok(Err((
                offset,
                format!(
                    "seal {seal}: checksum mismatch: stored 0x{stored:x}, computed 0x{computed:x}"
                ),
            )));
        }
        if seal == 2 || r.is_empty() {
            break;
        }
        let zxid = get!(r.read_i64());
        let version = get!(r.read_i32());
        let digest = get!(r.read_i64());
        emit(Item::Digest {
            zxid,
            version,
            digest,
        })?;
    }
    if !r.is_empty() {
        return Ok(Err((
            r.position(),
            format!("{} unexpected bytes after the last seal", r.remaining()),
        )));
    }
    Ok(Ok(()))
}

fn snapshot_cmd(out: &mut Out<'_>, path: &Path, json: bool) -> anyhow::Result<()> {
    let file = read_file(path)?;
    let c = compression_of(path, &file);
    let raw = snapshot::decompress(&file, c).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot decompress ({}): {e}",
            path.display(),
            compression_name(c)
        )
    })?;
    let mut acls: std::collections::HashMap<i64, Vec<Acl>> = std::collections::HashMap::new();
    let (mut sessions, mut acl_lists, mut nodes) = (0usize, 0usize, 0usize);
    let result = walk_snapshot(&raw, |item| {
        match item {
            Item::Header {
                magic,
                version,
                dbid,
            } => {
                if json {
                    let o = Obj::new("header")
                        .str("file", &path.display().to_string())
                        .str("compression", compression_name(c))
                        .num("file_len", file.len() as i64)
                        .num("stream_len", raw.len() as i64)
                        .num("magic", magic)
                        .num("version", version)
                        .num("dbid", dbid)
                        .finish();
                    writeln!(out, "{o}")?;
                } else {
                    writeln!(
                        out,
                        "# {}: {} file of {} bytes, stream of {} bytes; magic 0x{magic:08x} version {version} dbid {dbid}",
                        path.display(),
                        compression_name(c),
                        file.len(),
                        raw.len()
                    )?;
                }
            }
            Item::Session { id, timeout } => {
                sessions += 1;
                if json {
                    writeln!(
                        out,
                        "{}",
                        Obj::new("session")
                            .str("id", &hex(id))
                            .num("timeout", timeout)
                            .finish()
                    )?;
                } else {
                    writeln!(out, "session {} timeout {timeout}", hex(id))?;
                }
            }
            Item::AclList { aref, acl } => {
                acl_lists += 1;
                if json {
                    writeln!(
                        out,
                        "{}",
                        Obj::new("acl")
                            .num("ref", aref)
                            .raw("acl", &acl_json(&acl))
                            .finish()
                    )?;
                } else {
                    writeln!(out, "acl {aref} {}", acl_text(&acl))?;
                }
                acls.insert(aref, acl);
            }
            Item::Node {
                path: p,
                data,
                aref,
                stat,
            } => {
                nodes += 1;
                let p = if p.is_empty() { "/".to_string() } else { p };
                let acl = if aref == -1 {
                    corral_tree::acl::open_acl()
                } else {
                    acls.get(&aref).cloned().unwrap_or_default()
                };
                if json {
                    let mut o = Obj::new("node");
                    o.str("path", &p);
                    data_json(&mut o, &data);
                    o.num("acl_ref", aref)
                        .raw("acl", &acl_json(&acl))
                        .raw("stat", &stat_json(&stat));
                    writeln!(out, "{}", o.finish())?;
                } else {
                    writeln!(
                        out,
                        "node {p} data={} acl={aref} {} {}",
                        preview(&data),
                        acl_text(&acl),
                        stat_text(&stat)
                    )?;
                }
            }
            Item::Seal {
                offset,
                stored,
                computed,
            } => {
                if json {
                    let o = Obj::new("seal")
                        .num("offset", offset as i64)
                        .str("stored", &format!("0x{stored:x}"))
                        .str("computed", &format!("0x{computed:x}"))
                        .bool("ok", stored == computed)
                        .finish();
                    writeln!(out, "{o}")?;
                } else {
                    let verdict = if stored == computed { "ok" } else { "MISMATCH" };
                    writeln!(out, "seal at offset {offset}: stored 0x{stored:x} computed 0x{computed:x} {verdict}")?;
                }
            }
            Item::Digest {
                zxid,
                version,
                digest,
            } => {
                if json {
                    let o = Obj::new("digest")
                        .str("zxid", &hex(zxid))
                        .num("version", version)
                        .str("digest", &hex(digest))
                        .finish();
                    writeln!(out, "{o}")?;
                } else {
                    writeln!(
                        out,
                        "digest zxid {} version {version} tree digest {}",
                        hex(zxid),
                        hex(digest)
                    )?;
                }
            }
        }
        Ok(())
    })?;
    if json {
        let mut o = Obj::new("end");
        o.num("sessions", sessions as i64)
            .num("acl_lists", acl_lists as i64)
            .num("nodes", nodes as i64);
        match &result {
            Ok(()) => o.bool("ok", true),
            Err((offset, reason)) => o
                .bool("ok", false)
                .num("offset", *offset as i64)
                .str("error", reason),
        };
        writeln!(out, "{}", o.finish())?;
    } else {
        writeln!(
            out,
            "# {sessions} sessions, {acl_lists} ACL lists, {nodes} nodes"
        )?;
    }
    if let Err((offset, reason)) = result {
        bail!(
            "{}: corrupt snapshot at offset {offset} of the uncompressed stream: {reason}",
            path.display()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// corral data verify
// ---------------------------------------------------------------------------------------------

/// `<dir>/version-2` if it exists, else `dir` itself when that is a version-2 directory.
fn version2(dir: &Path) -> anyhow::Result<PathBuf> {
    let v2 = dir.join("version-2");
    if v2.is_dir() {
        return Ok(v2);
    }
    if dir.file_name().is_some_and(|n| n == "version-2") && dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    bail!(
        "{}: no version-2 directory (is this a dataDir?)",
        dir.display()
    )
}

/// The parent of a version-2 directory given instead of the dataDir.
fn data_dir_of(dir: &Path) -> PathBuf {
    if !dir.join("version-2").is_dir() && dir.file_name().is_some_and(|n| n == "version-2") {
        if let Some(p) = dir.parent() {
            return p.to_path_buf();
        }
    }
    dir.to_path_buf()
}

fn sorted_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        names.push(e?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[derive(Default)]
struct Tally {
    files: usize,
    corrupt: usize,
    warnings: usize,
}

fn verify(out: &mut Out<'_>, data_dir: &Path, log_dir: Option<&Path>) -> anyhow::Result<()> {
    let snap_dir = version2(data_dir)?;
    let log_dir = match log_dir {
        Some(d) => version2(d)?,
        None => snap_dir.clone(),
    };
    let mut t = Tally::default();
    let mut logs: Vec<(i64, String)> = sorted_names(&log_dir)?
        .into_iter()
        .filter_map(|n| txnlog::parse_name(&n).map(|z| (z, n)))
        .collect();
    logs.sort();
    let newest = logs.last().map(|l| l.1.clone());
    let mut last_zxid: Option<i64> = None;
    for (i, (name_zxid, name)) in logs.iter().enumerate() {
        let next_start = logs.get(i + 1).map(|l| l.0);
        t.files += 1;
        let path = log_dir.join(name);
        let bytes = read_file(&path)?;
        let is_newest = Some(name) == newest.as_ref();
        if bytes.len() < txnlog::HEADER_LEN && txnlog::file_header().starts_with(&bytes) {
            t.warnings += 1;
            writeln!(out, "{}: WARNING: {} bytes, no entries (a log whose creation was interrupted; start-up skips it)", path.display(), bytes.len())?;
            continue;
        }
        if let Err(e) = txnlog::check_header(&bytes) {
            t.corrupt += 1;
            writeln!(out, "{}: CORRUPT header at offset 0: {e}", path.display())?;
            continue;
        }
        let (entries, end) = txnlog::walk(&bytes, MAX_TXN_LEN);
        let mut problems = Vec::new();
        let mut range: Option<(i64, i64)> = None;
        for e in &entries {
            match txnlog::decode(e) {
                Ok(txn) => {
                    let z = txn.zxid();
                    if range.is_none() && z != *name_zxid {
                        problems.push((
                            false,
                            format!(
                                "first txn has zxid {} but the name says {}",
                                hex(z),
                                hex(*name_zxid)
                            ),
                        ));
                    }
                    if let Some(prev) = last_zxid {
                        if z <= prev {
                            problems.push((
                                false,
                                format!(
                                    "zxid {} at offset {} does not follow {}",
                                    hex(z),
                                    e.offset,
                                    hex(prev)
                                ),
                            ));
                        }
                    }
                    last_zxid = Some(z);
                    range = Some((range.map_or(z, |r| r.0), z));
                }
                Err(x) => problems.push((
                    true,
                    format!("txn at offset {} does not decode: {x}", e.offset),
                )),
            }
        }
        match &end {
            End::Clean { .. } => {}
            End::Torn { offset, reason } if is_newest => problems.push((
                false,
                format!("torn last entry at offset {offset} ({reason}): a write cut short by a crash; start-up cuts the log there"),
            )),
            // As start-up: a torn end of an older log is harmless when the next log carries on
            // right after its last complete entry (ZooKeeper restarted after a crash).
            End::Torn { offset, reason } if next_start.is_some() && next_start == last_zxid.map(|z| z + 1) => problems.push((
                false,
                format!("torn last entry at offset {offset} ({reason}), never applied: the next log continues right after it; start-up reads on"),
            )),
            End::Torn { offset, reason } => problems.push((
                true,
                format!("bad entry at offset {offset} ({reason}) in a log that is not the newest; start-up refuses"),
            )),
            End::Corrupt { offset, reason } => {
                problems.push((true, format!("corrupt entry at offset {offset}: {reason}; start-up refuses")))
            }
        }
        let zxids = range.map_or("no txns".to_string(), |(a, b)| {
            format!("zxid {}..{}", hex(a), hex(b))
        });
        let corrupt = problems.iter().any(|p| p.0);
        let verdict = if corrupt {
            t.corrupt += 1;
            "CORRUPT"
        } else if problems.is_empty() {
            "ok"
        } else {
            t.warnings += 1;
            "WARNING"
        };
        writeln!(
            out,
            "{}: {verdict}, {} txns, {zxids}",
            path.display(),
            entries.len()
        )?;
        for (bad, p) in problems {
            writeln!(out, "  {}: {p}", if bad { "error" } else { "warning" })?;
        }
    }
    let mut snaps: Vec<(i64, Compression, String)> = sorted_names(&snap_dir)?
        .into_iter()
        .filter_map(|n| snapshot::parse_name(&n).map(|(z, c)| (z, c, n)))
        .collect();
    snaps.sort_by_key(|s| s.0);
    for (zxid, c, name) in &snaps {
        t.files += 1;
        let path = snap_dir.join(name);
        let file = read_file(&path)?;
        if !snapshot::looks_valid(&file, *c) {
            t.warnings += 1;
            writeln!(
                out,
                "{}: WARNING: not a complete snapshot (a write cut short); start-up skips it",
                path.display()
            )?;
            continue;
        }
        let loaded =
            snapshot::decompress(&file, *c).and_then(|raw| snapshot::deserialize(&raw, usize::MAX));
        match loaded {
            Err(e) => {
                t.corrupt += 1;
                writeln!(out, "{}: CORRUPT at offset {} (of the uncompressed stream): {}; start-up skips it and tries an older snapshot", path.display(), e.offset, e.reason)?;
            }
            Ok((tree, meta)) => {
                let digest = match meta.digest {
                    // Written before any txn was applied: all zeros but the version (§6.3).
                    Some((0, 0)) => ", empty digest section".into(),
                    Some((dz, dd)) if dz == *zxid && dd != tree.digest() as i64 => {
                        t.warnings += 1;
                        format!(
                            "; WARNING: recorded digest {} at zxid {} but the nodes give {}",
                            hex(dd),
                            hex(dz),
                            hex(tree.digest() as i64)
                        )
                    }
                    Some((dz, dd)) => format!(", digest {} at zxid {}", hex(dd), hex(dz)),
                    None => ", no digest section".into(),
                };
                writeln!(
                    out,
                    "{}: ok, {} nodes, {} sessions{digest}",
                    path.display(),
                    tree.node_count(),
                    meta.sessions.len()
                )?;
            }
        }
    }
    writeln!(
        out,
        "verified {} file(s): {} corrupt, {} with warnings",
        t.files, t.corrupt, t.warnings
    )?;
    if t.corrupt > 0 {
        bail!("corruption found in {} file(s)", t.corrupt);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// corral data show
// ---------------------------------------------------------------------------------------------

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn show(
    out: &mut Out<'_>,
    data_dir: &Path,
    log_dir: Option<&Path>,
    trust_empty: bool,
    truncate: bool,
) -> anyhow::Result<()> {
    let data_dir = data_dir_of(data_dir);
    version2(&data_dir)?;
    let data_log_dir = match log_dir {
        Some(d) => {
            let d = data_dir_of(d);
            version2(&d)?;
            d
        }
        None => data_dir.clone(),
    };
    let opts = StoreOptions {
        data_dir: data_dir.clone(),
        data_log_dir,
        force_sync: true,
        prealloc_bytes: 0,
        compression: Compression::None,
        max_txn_len: MAX_TXN_LEN,
        trust_empty_snapshot: trust_empty,
        truncate_corrupt_log: truncate,
    };
    let mut store = FileStore::new(DryRunDisk::new(RealDisk::default()), opts)?;
    writeln!(out, "snapshot dir: {}", store.snap_dir().display())?;
    writeln!(out, "log dir:      {}", store.log_dir().display())?;
    let restored = match store.restore() {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "start-up would refuse: {e}")?;
            bail!("start-up would refuse to load {}", data_dir.display());
        }
    };
    let rep = &restored.report;
    for (p, why) in &rep.skipped_snapshots {
        writeln!(out, "skipped:      {} ({why})", file_name(p))?;
    }
    match &rep.snapshot {
        Some((p, z)) => writeln!(out, "snapshot:     {} (zxid {})", file_name(p), hex(*z))?,
        None => writeln!(out, "snapshot:     none; starting from an empty tree")?,
    }
    let logs: Vec<String> = rep.logs.iter().map(|p| file_name(p)).collect();
    writeln!(
        out,
        "logs:         {}",
        if logs.is_empty() {
            "none".to_string()
        } else {
            logs.join(", ")
        }
    )?;
    match rep.replayed_range {
        Some((a, b)) => writeln!(
            out,
            "replay:       {} txns, zxid {}..{}",
            rep.replayed,
            hex(a),
            hex(b)
        )?,
        None => writeln!(out, "replay:       0 txns")?,
    }
    for (p, len, why) in &rep.cut {
        writeln!(out, "would cut:    {} to {len} bytes ({why})", file_name(p))?;
    }
    for p in &rep.removed {
        writeln!(out, "would remove: {}", file_name(p))?;
    }
    let tree = &restored.tree;
    writeln!(
        out,
        "result:       zxid {}, {} znodes, {} sessions, {} ephemerals, digest {}",
        hex(tree.last_processed_zxid()),
        tree.node_count(),
        restored.sessions.len(),
        tree.ephemeral_count(),
        hex(tree.digest() as i64)
    )?;
    let writes = store.disk().changes().len();
    writeln!(
        out,
        "(dry run: {writes} change(s) start-up would make were not written)"
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_795_564_174_152), "2026-11-24T23:49:34.152Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        let o = Obj::new("x").num("n", -3).bool("b", true).finish();
        assert_eq!(o, "{\"kind\":\"x\",\"n\":-3,\"b\":true}");
    }
}
