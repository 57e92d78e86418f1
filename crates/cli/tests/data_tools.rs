//! `corral data log|snapshot|verify|show` on real data directories: one written by the real
//! ZooKeeper 3.8 (`snapCount=100`, a few hundred writes through the `zookeeper-client` crate, so
//! several logs and snapshots), one written by corral with the same workload, damaged copies of
//! corral's (a torn last entry, a flipped byte in a log, a damaged snapshot), and small files
//! built here with known contents for exact output. Every check runs the binary as an operator
//! would and reads its stdout, stderr and exit status; the directories must be unchanged after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use corral_proto::records::{op, Acl, Id};
use corral_proto::txn::*;
use corral_storage::disk::RealDisk;
use corral_storage::snapshot::{self, Compression, Meta};
use corral_storage::store::{apply_replayed, FileStore, StoreOptions};
use corral_testkit::ServerProcess;
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn corral(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(args)
        .env("CORRAL_LOG", "warn")
        .output()
        .expect("run corral");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `corral data <args>` and requires exit status `code`.
fn data(args: &[&str], code: i32) -> Output {
    let mut all = vec!["data"];
    all.extend_from_slice(args);
    let o = corral(&all);
    assert_eq!(
        o.code,
        code,
        "corral {}\nstdout:\n{}\nstderr:\n{}",
        all.join(" "),
        o.stdout,
        o.stderr
    );
    o
}

// ---------------------------------------------------------------------------------------------
// A small JSON reader, enough to check the --json output is well-formed and read fields back.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, k: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(k).unwrap_or(&Json::Null),
            _ => &Json::Null,
        }
    }

    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }
}

fn parse_json(s: &str) -> Result<Json, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let v = value(b, &mut i)?;
    skip_ws(b, &mut i);
    if i != b.len() {
        return Err(format!("trailing bytes at {i} in {s}"));
    }
    Ok(v)
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn value(b: &[u8], i: &mut usize) -> Result<Json, String> {
    skip_ws(b, i);
    let lit = |i: &mut usize, word: &str, v: Json| {
        if b[*i..].starts_with(word.as_bytes()) {
            *i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at {i}"))
        }
    };
    match b.get(*i) {
        None => Err("unexpected end".into()),
        Some(b'n') => lit(i, "null", Json::Null),
        Some(b't') => lit(i, "true", Json::Bool(true)),
        Some(b'f') => lit(i, "false", Json::Bool(false)),
        Some(b'"') => string(b, i).map(Json::Str),
        Some(b'[') => {
            *i += 1;
            let mut v = Vec::new();
            skip_ws(b, i);
            if b.get(*i) == Some(&b']') {
                *i += 1;
                return Ok(Json::Arr(v));
            }
            loop {
                v.push(value(b, i)?);
                skip_ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b']') => {
                        *i += 1;
                        return Ok(Json::Arr(v));
                    }
                    _ => return Err(format!("expected , or ] at {i}")),
                }
            }
        }
        Some(b'{') => {
            *i += 1;
            let mut m = BTreeMap::new();
            skip_ws(b, i);
            if b.get(*i) == Some(&b'}') {
                *i += 1;
                return Ok(Json::Obj(m));
            }
            loop {
                skip_ws(b, i);
                let k = string(b, i)?;
                skip_ws(b, i);
                if b.get(*i) != Some(&b':') {
                    return Err(format!("expected : at {i}"));
                }
                *i += 1;
                let v = value(b, i)?;
                if m.insert(k.clone(), v).is_some() {
                    return Err(format!("duplicate key {k}"));
                }
                skip_ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b'}') => {
                        *i += 1;
                        return Ok(Json::Obj(m));
                    }
                    _ => return Err(format!("expected , or }} at {i}")),
                }
            }
        }
        Some(_) => {
            let start = *i;
            while *i < b.len()
                && (b[*i] == b'-'
                    || b[*i] == b'.'
                    || b[*i].is_ascii_alphanumeric()
                    || b[*i] == b'+')
            {
                *i += 1;
            }
            let t = std::str::from_utf8(&b[start..*i]).unwrap();
            t.parse::<f64>()
                .map(Json::Num)
                .map_err(|e| format!("bad number {t:?}: {e}"))
        }
    }
}

fn string(b: &[u8], i: &mut usize) -> Result<String, String> {
    if b.get(*i) != Some(&b'"') {
        return Err(format!("expected a string at {i}"));
    }
    *i += 1;
    let mut out = Vec::new();
    loop {
        match b.get(*i) {
            None => return Err("unterminated string".into()),
            Some(b'"') => {
                *i += 1;
                return String::from_utf8(out).map_err(|e| e.to_string());
            }
            Some(b'\\') => {
                let c = *b.get(*i + 1).ok_or("bad escape")?;
                *i += 2;
                match c {
                    b'"' | b'\\' | b'/' => out.push(c),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let h = std::str::from_utf8(&b[*i..*i + 4]).map_err(|e| e.to_string())?;
                        let c =
                            char::from_u32(u32::from_str_radix(h, 16).map_err(|e| e.to_string())?)
                                .ok_or("bad \\u")?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        *i += 4;
                    }
                    _ => return Err(format!("bad escape \\{}", c as char)),
                }
            }
            Some(c) if *c < 0x20 => return Err("control character in a string".into()),
            Some(c) => {
                out.push(*c);
                *i += 1;
            }
        }
    }
}

/// Every line of `stdout` as JSON.
fn json_lines(stdout: &str) -> Vec<Json> {
    stdout
        .lines()
        .map(|l| parse_json(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn zxid(j: &Json) -> i64 {
    i64::from_str_radix(j.str().trim_start_matches("0x"), 16).expect("hex zxid")
}

// ---------------------------------------------------------------------------------------------
// Data directories
// ---------------------------------------------------------------------------------------------

/// `(zxid, path)` of the files in `dir` named `<prefix>.<hex>`, oldest first.
fn files(dir: &Path, prefix: &str) -> Vec<(i64, PathBuf)> {
    let mut v: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            let hex = name.strip_prefix(prefix)?.strip_prefix('.')?;
            let hex = hex.split('.').next()?;
            Some((i64::from_str_radix(hex, 16).ok()?, p))
        })
        .collect();
    v.sort();
    v
}

/// What identifies every file's state: length, modification time and the first MiB (logs are
/// 64 MiB of mostly zeros; a write or a cut shows in the length or the time).
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (u64, Duration, Vec<u8>)> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::metadata(&p).unwrap();
        let mut head = vec![0u8; (md.len() as usize).min(1 << 20)];
        use std::io::Read;
        std::fs::File::open(&p)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        m.insert(
            p,
            (
                md.len(),
                md.modified().unwrap().duration_since(UNIX_EPOCH).unwrap(),
                head,
            ),
        );
    }
    m
}

/// ~330 writes in a fixed order: creates, setData, deletes, an ephemeral of a second session
/// that closes, and a multi. Returns the number of znodes the server then holds.
async fn workload(server: &ServerProcess) -> usize {
    let c = Client::connect(&server.connect_string())
        .await
        .expect("connect");
    c.create("/t", b"top", &PERSISTENT).await.unwrap();
    for i in 0..250 {
        c.create(
            &format!("/t/n{i}"),
            format!("value {i}").as_bytes(),
            &PERSISTENT,
        )
        .await
        .unwrap();
    }
    for i in (0..250).step_by(5) {
        c.set_data(&format!("/t/n{i}"), format!("changed {i}").as_bytes(), None)
            .await
            .unwrap();
    }
    for i in (0..250).step_by(7) {
        c.delete(&format!("/t/n{i}"), None).await.unwrap();
    }
    let other = Client::connect(&server.connect_string())
        .await
        .expect("connect");
    other
        .create("/t/ephemeral", b"\x00\x01binary", &EPHEMERAL)
        .await
        .unwrap();
    let mut w = c.new_multi_writer();
    w.add_create("/t/multi", b"m", &PERSISTENT).unwrap();
    w.add_set_data("/t/n1", b"in a multi", None).unwrap();
    w.commit().await.unwrap();
    drop(other);
    let children = loop {
        // The dropped session's close is asynchronous; wait for its ephemeral to go.
        let kids = c.list_children("/t").await.unwrap();
        if !kids.contains(&"ephemeral".to_string()) {
            break kids.len();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(c);
    // "/", /zookeeper, /zookeeper/quota, /zookeeper/config, /t and its children.
    5 + children
}

fn run_workload(server: &ServerProcess) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), workload(server))
            .await
            .expect("workload finished in time")
    })
}

/// Everything the tools must say about a healthy data directory with `nodes` znodes.
fn check_healthy(data_dir: &Path, nodes: usize) {
    let v2 = data_dir.join("version-2");
    let before = fingerprint(&v2);
    let logs = files(&v2, "log");
    let snaps = files(&v2, "snapshot");
    assert!(
        logs.len() >= 2 && snaps.len() >= 2,
        "expected several logs and snapshots: {logs:?} {snaps:?}"
    );

    let dd = data_dir.to_str().unwrap();
    let o = data(&["verify", dd], 0);
    assert!(o.stdout.contains(": 0 corrupt"), "{}", o.stdout);
    for (_, p) in &logs {
        assert!(
            o.stdout.contains(&format!("{}: ok, ", p.display())),
            "{} not ok:\n{}",
            p.display(),
            o.stdout
        );
    }

    // Every txn of every log, in order, with contiguous zxids.
    let mut zxids = Vec::new();
    for (name_zxid, p) in &logs {
        let ps = p.to_str().unwrap();
        let lines = json_lines(&data(&["log", ps, "--json"], 0).stdout);
        assert_eq!(lines[0].get("kind").str(), "header");
        assert_eq!(lines[0].get("magic").num() as i64, 0x5A4B4C47);
        let end = lines.last().unwrap();
        assert_eq!(
            (end.get("kind").str(), end.get("end").str()),
            ("end", "clean"),
            "{ps}"
        );
        let txns: Vec<&Json> = lines
            .iter()
            .filter(|l| l.get("kind").str() == "txn")
            .collect();
        assert_eq!(end.get("txns").num() as usize, txns.len());
        assert_eq!(
            zxid(txns[0].get("zxid")),
            *name_zxid,
            "{ps}: the first txn is the one in the name"
        );
        for t in &txns {
            zxids.push(zxid(t.get("zxid")));
            assert!(t.get("session").str().starts_with("0x"));
            assert!(!t.get("type").str().is_empty());
            assert!(matches!(t.get("record"), Json::Obj(_)));
        }
        // Text: one line per txn between the header and summary comments.
        let text = data(&["log", ps], 0).stdout;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), txns.len() + 2, "{ps}");
        assert!(
            lines[0].starts_with(&format!("# {ps}: ZKLG version 2")),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with(&format!("0x{name_zxid:x} ")),
            "{}",
            lines[1]
        );
        assert!(
            lines.last().unwrap().contains("clean end at offset"),
            "{text}"
        );
    }
    assert!(zxids.len() >= 330, "only {} txns", zxids.len());
    for w in zxids.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "zxids jump from 0x{:x} to 0x{:x}",
            w[0],
            w[1]
        );
    }
    let last = *zxids.last().unwrap();
    let all_text: String = logs
        .iter()
        .map(|(_, p)| data(&["log", p.to_str().unwrap()], 0).stdout)
        .collect();
    // Creates by the client are create2 requests; the header type says which one was logged.
    for want in [
        "createSession timeout=",
        "closeSession ",
        " /t/n3 data=7B \"value 3\" acl=[31 world:anyone]",
        " setData /t/n5 data=9B \"changed 5\" version=1",
        " delete /t/n7 ",
        " multi 2 ops: create /t/multi",
    ] {
        assert!(all_text.contains(want), "no {want:?} in the logs");
    }

    // The newest snapshot, in full.
    let (snap_zxid, newest) = snaps.last().unwrap();
    let lines = json_lines(&data(&["snapshot", newest.to_str().unwrap(), "--json"], 0).stdout);
    assert_eq!(lines[0].get("kind").str(), "header");
    assert_eq!(lines[0].get("magic").num() as i64, 0x5A4B534E);
    let paths: Vec<&str> = lines
        .iter()
        .filter(|l| l.get("kind").str() == "node")
        .map(|l| l.get("path").str())
        .collect();
    for want in [
        "/",
        "/zookeeper",
        "/zookeeper/quota",
        "/zookeeper/config",
        "/t",
    ] {
        assert!(paths.contains(&want), "{want} not in the snapshot");
    }
    let seals: Vec<&Json> = lines
        .iter()
        .filter(|l| l.get("kind").str() == "seal")
        .collect();
    assert_eq!(seals.len(), 2, "two seals with the digest section");
    assert!(seals.iter().all(|s| s.get("ok") == &Json::Bool(true)));
    let digest = lines
        .iter()
        .find(|l| l.get("kind").str() == "digest")
        .expect("a digest section");
    assert!(zxid(digest.get("zxid")) >= *snap_zxid);
    assert_eq!(lines.last().unwrap().get("ok"), &Json::Bool(true));
    let text = data(&["snapshot", newest.to_str().unwrap()], 0).stdout;
    // ZooKeeper gives OPEN_ACL_UNSAFE a cache ref of its own for user nodes; corral writes -1.
    let top = text
        .lines()
        .find(|l| l.starts_with("node /t data=3B \"top\" acl="))
        .expect("/t in the dump");
    assert!(top.contains(" [31 world:anyone] czxid=0x"), "{top}");

    // What start-up would load: the newest snapshot, the logs after it, up to the last txn.
    let o = data(&["show", dd], 0);
    let name = newest.file_name().unwrap().to_string_lossy();
    assert!(
        o.stdout
            .contains(&format!("snapshot:     {name} (zxid 0x{snap_zxid:x})")),
        "{}",
        o.stdout
    );
    // (The last client's session may still be open: its close races the server's stop.)
    assert!(
        o.stdout
            .contains(&format!("result:       zxid 0x{last:x}, {nodes} znodes, ")),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains(" sessions, 0 ephemerals, digest 0x"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("(dry run: 0 change(s)"), "{}", o.stdout);

    assert!(
        before == fingerprint(&v2),
        "the tools changed files in {}",
        v2.display()
    );
}

#[test]
fn tools_read_a_real_zookeeper_data_dir() {
    if !corral_testkit::require_real_zookeeper("tools_read_a_real_zookeeper_data_dir") {
        return;
    }
    let mut zk = corral_testkit::start_zookeeper(&["snapCount=100"], &[]).expect("start ZooKeeper");
    let nodes = run_workload(&zk);
    zk.stop();
    check_healthy(&zk.dir().join("data"), nodes);
}

/// A copy of `src`'s version-2 directory in a new temporary dataDir.
fn copy_data_dir(src: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let v2 = tmp.path().join("version-2");
    std::fs::create_dir(&v2).unwrap();
    for e in std::fs::read_dir(src.join("version-2")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, v2.join(p.file_name().unwrap())).unwrap();
    }
    tmp
}

/// Offsets of every entry of `log`, and the end of the last one.
fn entry_offsets(log: &Path) -> (Vec<usize>, usize) {
    let lines = json_lines(&data(&["log", log.to_str().unwrap(), "--json"], 0).stdout);
    let offsets = lines
        .iter()
        .filter(|l| l.get("kind").str() == "txn")
        .map(|l| l.get("offset").num() as usize)
        .collect();
    (offsets, lines.last().unwrap().get("offset").num() as usize)
}

fn patch(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(path).unwrap();
    f(&mut b);
    std::fs::write(path, b).unwrap();
}

#[test]
fn tools_read_a_corral_data_dir_and_find_damage() {
    let mut server = corral_testkit::start_corral(
        Path::new(env!("CARGO_BIN_EXE_corral")),
        &["snapCount=100"],
        &[],
    )
    .expect("start corral");
    let nodes = run_workload(&server);
    server.stop();
    let src = server.dir().join("data");
    check_healthy(&src, nodes);

    // A torn last entry (zeros where the end of the write should be): a warning, and start-up
    // would cut it and load everything before it.
    let torn = copy_data_dir(&src);
    let (_, newest) = files(&torn.path().join("version-2"), "log").pop().unwrap();
    let (offsets, end) = entry_offsets(&newest);
    let last = *offsets.last().unwrap();
    patch(&newest, |b| b[last + 20..end].fill(0));
    let dd = torn.path().to_str().unwrap();
    let o = data(&["verify", dd], 0);
    assert!(
        o.stdout
            .contains(&format!("torn last entry at offset {last}")),
        "{}",
        o.stdout
    );
    let o = data(&["show", dd], 0);
    let name = newest.file_name().unwrap().to_string_lossy();
    assert!(
        o.stdout.contains(&format!(
            "would cut:    {name} to {last} bytes (torn last entry"
        )),
        "{}",
        o.stdout
    );
    assert!(
        std::fs::metadata(&newest).unwrap().len() as usize >= end,
        "show cut the file"
    );

    // A flipped byte in the first entry of the newest log, with entries after it: corruption.
    let bad = copy_data_dir(&src);
    let (_, newest) = files(&bad.path().join("version-2"), "log").pop().unwrap();
    let (offsets, _) = entry_offsets(&newest);
    assert!(
        offsets.len() >= 2,
        "the newest log has {} entries",
        offsets.len()
    );
    patch(&newest, |b| b[offsets[0] + 20] ^= 0x40);
    let dd = bad.path().to_str().unwrap();
    let o = data(&["verify", dd], 1);
    let at = format!("{}: CORRUPT", newest.display());
    assert!(
        o.stdout.contains(&at)
            && o.stdout
                .contains(&format!("corrupt entry at offset {}", offsets[0])),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr.contains("corruption found in 1 file(s)"),
        "{}",
        o.stderr
    );
    let o = data(&["show", dd], 1);
    let refusal = format!(
        "start-up would refuse: {}: corrupt txn log at offset {}",
        newest.display(),
        offsets[0]
    );
    assert!(o.stdout.contains(&refusal), "{}", o.stdout);
    let o = data(&["show", dd, "--truncate-corrupt-log"], 0);
    assert!(
        o.stdout
            .contains(&format!("to {} bytes (corrupt entry", offsets[0])),
        "{}",
        o.stdout
    );
    // The real start-up refuses the same way, naming the same file and offset.
    let mut refused = corral_testkit::start_corral_in(
        Path::new(env!("CARGO_BIN_EXE_corral")),
        bad.path(),
        &[],
        &[],
    );
    if let Ok(s) = refused.as_mut() {
        s.stop();
        panic!("corral started on a corrupt log");
    }
    let msg = format!("{:#}", refused.unwrap_err());
    assert!(
        msg.contains(&format!("corrupt txn log at offset {}", offsets[0])),
        "{msg}"
    );

    // A damaged newest snapshot: corruption for verify; start-up falls back to an older one and
    // replays more of the logs to the same end.
    let snap_bad = copy_data_dir(&src);
    let snaps = files(&snap_bad.path().join("version-2"), "snapshot");
    let (_, newest_snap) = snaps.last().unwrap();
    patch(newest_snap, |b| {
        let mid = b.len() / 2;
        b[mid] ^= 0x01;
    });
    let dd = snap_bad.path().to_str().unwrap();
    let o = data(&["verify", dd], 1);
    assert!(
        o.stdout
            .contains(&format!("{}: CORRUPT at offset", newest_snap.display())),
        "{}",
        o.stdout
    );
    let o = data(&["show", dd], 0);
    let name = newest_snap.file_name().unwrap().to_string_lossy();
    assert!(
        o.stdout.contains(&format!("skipped:      {name} (")),
        "{}",
        o.stdout
    );
    let healthy = data(&["show", src.to_str().unwrap()], 0).stdout;
    let result = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("result:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(result(&o.stdout), result(&healthy));
}

// ---------------------------------------------------------------------------------------------
// Small files with known contents: exact output, no server needed.
// ---------------------------------------------------------------------------------------------

fn header(zxid: i64, client_id: i64, cxid: i32, r#type: i32) -> TxnHeader {
    TxnHeader {
        client_id,
        cxid,
        zxid,
        time: 1_700_000_000_000 + zxid,
        r#type,
    }
}

fn txn(h: TxnHeader, body: TxnBody, digest: Option<i64>) -> Txn {
    Txn {
        header: h,
        body,
        digest: digest.map(|d| TxnDigest {
            version: 2,
            tree_digest: d,
        }),
    }
}

#[test]
fn exact_output_for_known_files() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        data_dir: dir.path().to_path_buf(),
        data_log_dir: dir.path().to_path_buf(),
        force_sync: true,
        prealloc_bytes: 4096,
        compression: Compression::None,
        max_txn_len: 1 << 20,
        trust_empty_snapshot: false,
        truncate_corrupt_log: false,
    };
    let mut store = FileStore::new(RealDisk::default(), opts).unwrap();
    let mut tree = store.restore().unwrap().tree;
    store
        .write_snapshot(
            0,
            &snapshot::serialize(
                &tree,
                &Meta {
                    sessions: vec![],
                    digest: Some((0, 0)),
                },
            ),
        )
        .unwrap();
    let s = 0x1000_0000_0000_00ab;
    let acl = vec![Acl {
        perms: 31,
        id: Id::new("world", "anyone"),
    }];
    let txns = vec![
        txn(
            header(1, s, 0, op::CREATE_SESSION),
            TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
            Some(0x51c6d660),
        ),
        txn(
            header(2, s, 1, op::CREATE),
            TxnBody::Create(CreateTxn {
                path: "/a".into(),
                data: Some(b"hello".to_vec()),
                acl: acl.clone(),
                ephemeral: false,
                parent_cversion: 1,
            }),
            Some(0x1234),
        ),
        txn(
            header(3, s, 2, op::SET_DATA),
            TxnBody::SetData(SetDataTxn {
                path: "/a".into(),
                data: Some(vec![0, 1, 2]),
                version: 1,
            }),
            Some(0x5678),
        ),
        txn(
            header(4, s, 3, op::MULTI),
            TxnBody::Multi(vec![
                TxnBody::Create(CreateTxn {
                    path: "/b".into(),
                    data: None,
                    acl,
                    ephemeral: true,
                    parent_cversion: 2,
                }),
                TxnBody::Delete(DeleteTxn { path: "/a".into() }),
            ]),
            Some(0x9abc),
        ),
        txn(
            header(5, s, 4, op::ERROR),
            TxnBody::Error(ErrorTxn { err: -110 }),
            None,
        ),
        txn(
            header(6, s, 5, op::CLOSE_SESSION),
            TxnBody::CloseSession(Some(CloseSessionTxn {
                paths_to_delete: vec!["/b".into()],
            })),
            Some(0x51c6d660),
        ),
    ];
    let mut sessions = BTreeMap::new();
    for t in &txns {
        store.append(t);
        apply_replayed(&mut tree, &mut sessions, t);
        if t.zxid() == 4 {
            // Snapshot with the session open and its ephemeral /b.
            store.roll().unwrap();
            let meta = Meta {
                sessions: vec![(s, 30000)],
                digest: Some((4, tree.digest() as i64)),
            };
            store
                .write_snapshot(4, &snapshot::serialize(&tree, &meta))
                .unwrap();
        }
    }
    store.sync().unwrap();
    let v2 = dir.path().join("version-2");

    let text = data(&["log", v2.join("log.1").to_str().unwrap()], 0).stdout;
    let want = format!(
        "# {}: ZKLG version 2 dbid 0, 4112 bytes
0x1 2023-11-14T22:13:20.001Z session 0x10000000000000ab cxid 0x0 createSession timeout=30000 digest 0x51c6d660
0x2 2023-11-14T22:13:20.002Z session 0x10000000000000ab cxid 0x1 create /a data=5B \"hello\" acl=[31 world:anyone] ephemeral=false parentCVersion=1 digest 0x1234
0x3 2023-11-14T22:13:20.003Z session 0x10000000000000ab cxid 0x2 setData /a data=3B 0x000102 version=1 digest 0x5678
0x4 2023-11-14T22:13:20.004Z session 0x10000000000000ab cxid 0x3 multi 2 ops: create /b data=null acl=[31 world:anyone] ephemeral=true parentCVersion=2; delete /a digest 0x9abc
# 4 txns, zxid 0x1..0x4; clean end at offset 380
",
        v2.join("log.1").display()
    );
    assert_eq!(text, want);
    let text = data(&["log", v2.join("log.5").to_str().unwrap()], 0).stdout;
    assert!(text.contains("\n0x5 2023-11-14T22:13:20.005Z session 0x10000000000000ab cxid 0x4 error err=-110 (NodeExists) digest -\n"), "{text}");
    assert!(
        text.contains(" cxid 0x5 closeSession ephemerals=[/b] digest 0x51c6d660\n"),
        "{text}"
    );

    let lines = json_lines(&data(&["log", v2.join("log.1").to_str().unwrap(), "--json"], 0).stdout);
    assert_eq!(
        lines[4].get("record"),
        &parse_json(r#"{"ops":[{"type":"create","path":"/b","data":null,"acl":[{"perms":31,"scheme":"world","id":"anyone"}],"ephemeral":true,"parent_cversion":2},{"type":"delete","path":"/a"}]}"#).unwrap()
    );
    assert_eq!(lines[3].get("record").get("data_hex").str(), "000102");
    assert_eq!(lines[1].get("digest").get("tree").str(), "0x51c6d660");
    assert_eq!(lines[1].get("time").num(), 1_700_000_000_001.0);

    let text = data(&["snapshot", v2.join("snapshot.4").to_str().unwrap()], 0).stdout;
    assert!(
        text.contains("\nsession 0x10000000000000ab timeout 30000\n"),
        "{text}"
    );
    assert!(text.contains("\nacl 1 [1 world:anyone]\n"), "{text}");
    assert!(text.contains("\nnode /b data=null acl=-1 [31 world:anyone] czxid=0x4 mzxid=0x4 pzxid=0x4 ctime=2023-11-14T22:13:20.004Z mtime=2023-11-14T22:13:20.004Z version=0 cversion=0 aversion=0 ephemeralOwner=0x10000000000000ab\n"), "{text}");
    assert!(
        text.ends_with("# 1 sessions, 1 ACL lists, 5 nodes\n"),
        "{text}"
    );
    assert_eq!(text.matches(" ok\n").count(), 2, "{text}");

    let o = data(&["show", dir.path().to_str().unwrap()], 0);
    assert!(o.stdout.contains("snapshot:     snapshot.4 (zxid 0x4)\nlogs:         log.5\nreplay:       2 txns, zxid 0x5..0x6\n"), "{}", o.stdout);
    let digest = format!("0x{:x}", tree.digest());
    assert!(
        o.stdout.contains(&format!(
            "result:       zxid 0x6, 4 znodes, 0 sessions, 0 ephemerals, digest {digest}\n"
        )),
        "{}",
        o.stdout
    );
    // The version-2 directory itself works as well as the dataDir.
    let o2 = data(&["show", v2.to_str().unwrap()], 0);
    assert_eq!(o2.stdout.lines().last(), o.stdout.lines().last());

    // Wrong inputs: a clear one-line error and a failing status.
    let o = data(&["log", v2.join("snapshot.0").to_str().unwrap()], 1);
    assert!(
        o.stderr.contains("not a txn log: bad magic 0x5a4b534e"),
        "{}",
        o.stderr
    );
    let o = data(&["verify", v2.join("log.1").to_str().unwrap()], 1);
    assert!(o.stderr.contains("no version-2 directory"), "{}", o.stderr);
    let o = data(&["snapshot", v2.join("log.1").to_str().unwrap()], 1);
    assert!(
        o.stderr.contains("corrupt snapshot at offset 0") && o.stderr.contains("bad magic"),
        "{}",
        o.stderr
    );
}
