//! ZooKeeper 3.9's AdminServer backup commands, which corral serves beside 3.8's: `snapshot`
//! streams a consistent snapshot (a hot backup), `restore` loads one. Checked with what users
//! do with them: the streamed snapshot is started from by the real ZooKeeper 3.8 and by corral,
//! restored into another corral (which keeps it across a restart and goes on writing), a
//! snapshot ZooKeeper wrote is restored into corral; and who may call them (3.9's rules:
//! an `Authorization` header whose identity holds ALL on `/`), the feature flags and the rate
//! limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use corral_testkit::ServerProcess;
use zookeeper_client as zk;

/// An HTTP/1.0 exchange: status, headers (lower-case names), body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the AdminServer");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("the answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// corral with its AdminServer on a free port, and `more` zoo.cfg lines.
fn corral_with_admin(more: &[&str], props: &[(&str, &str)]) -> (ServerProcess, u16) {
    let port = corral_testkit::free_port();
    let mut cfg = vec![
        "admin.enableServer=true".to_string(),
        "admin.serverAddress=127.0.0.1".to_string(),
        format!("admin.serverPort={port}"),
    ];
    cfg.extend(more.iter().map(|s| s.to_string()));
    let cfg: Vec<&str> = cfg.iter().map(String::as_str).collect();
    let server = corral_testkit::start_corral(Path::new(env!("CARGO_BIN_EXE_corral")), &cfg, props)
        .expect("start corral");
    (server, port)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(server: &ServerProcess) -> zk::Client {
    zk::Client::connect(&server.addr().to_string())
        .await
        .expect("connect")
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// The super user both sides use: `super:secret` (its digest as ZooKeeper computes it).
const SUPER: (&str, &str) = (
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "super:lK75jTNcA+U9vtVEw5vB51mj/w4=",
);
const SUPER_AUTH: (&str, &str) = ("Authorization", "digest super:secret");

#[test]
fn snapshot_streams_a_backup_that_zookeeper_and_corral_start_from() {
    let test = "snapshot_streams_a_backup_that_zookeeper_and_corral_start_from";
    let (mut source, port) = corral_with_admin(&[], &[SUPER]);
    let rt = runtime();
    rt.block_on(async {
        let c = client(&source).await;
        c.create("/app", b"config v1", &persistent()).await.unwrap();
        for i in 0..50 {
            c.create(
                &format!("/app/n{i}"),
                format!("{i}").as_bytes(),
                &persistent(),
            )
            .await
            .unwrap();
        }
        c.set_data("/app", b"config v2", None).await.unwrap();
    });
    let (status, headers, bytes) = http(port, "GET", "/commands/snapshot", &[SUPER_AUTH], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/octet-stream")
    );
    let size: usize = header(&headers, "snapshot_size").unwrap().parse().unwrap();
    assert_eq!(size, bytes.len());
    let zxid_hex = header(&headers, "last_zxid").unwrap().to_string();
    let zxid = i64::from_str_radix(zxid_hex.trim_start_matches("0x"), 16).unwrap();
    let srvr = corral_testkit::four_letter(source.addr(), "srvr").unwrap();
    assert!(
        srvr.contains(&format!("Zxid: 0x{zxid:x}\n")),
        "the snapshot is at the server's last zxid ({zxid_hex}): {srvr}"
    );
    // streaming=false: the headers and a JSON answer, no snapshot.
    let quick = corral_with_admin(
        &[],
        &[SUPER, ("zookeeper.admin.rateLimiterIntervalInMS", "0")],
    );
    let (status, headers, body) = http(
        quick.1,
        "GET",
        "/commands/snapshot?streaming=false",
        &[SUPER_AUTH],
        b"",
    );
    assert_eq!(status, 200);
    assert!(header(&headers, "snapshot_size").is_some());
    assert_eq!(json(&body)["command"], "snapshot");
    assert!(json(&body)["error"].is_null());
    drop(quick);

    // The snapshot as a file named after its zxid: the real ZooKeeper starts from it.
    if corral_testkit::require_real_zookeeper(test) {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("version-2");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join(format!("snapshot.{zxid:x}")), &bytes).unwrap();
        let mut zk_server = corral_testkit::start_zookeeper_in(dir.path(), &[], &[])
            .expect("ZooKeeper starts from corral's streamed snapshot");
        rt.block_on(async {
            let c = client(&zk_server).await;
            let (data, _) = c.get_data("/app").await.unwrap();
            assert_eq!(data, b"config v2");
            let mut children = c.list_children("/app").await.unwrap();
            children.sort();
            assert_eq!(children.len(), 50);
            let (data, _) = c.get_data("/app/n49").await.unwrap();
            assert_eq!(data, b"49");
        });
        zk_server.stop();
    }
    source.stop();
}

#[test]
fn restore_loads_a_snapshot_keeps_it_across_a_restart_and_goes_on_writing() {
    let (mut source, source_port) = corral_with_admin(&[], &[SUPER]);
    let (mut target, target_port) = corral_with_admin(
        &[],
        &[SUPER, ("zookeeper.admin.rateLimiterIntervalInMS", "0")],
    );
    let rt = runtime();
    rt.block_on(async {
        let c = client(&source).await;
        c.create("/kept", b"from the backup", &persistent())
            .await
            .unwrap();
        // The target has more history (higher zxids) and other data.
        let t = client(&target).await;
        for i in 0..20 {
            t.create(&format!("/gone{i}"), b"", &persistent())
                .await
                .unwrap();
        }
    });
    let (status, snap_headers, backup) =
        http(source_port, "GET", "/commands/snap", &[SUPER_AUTH], b"");
    assert_eq!(status, 200);
    let snap_zxid = header(&snap_headers, "last_zxid").unwrap().to_string();

    // Not a snapshot: refused, nothing changes.
    let (status, _, body) = http(
        target_port,
        "POST",
        "/commands/restore",
        &[SUPER_AUTH],
        b"garbage",
    );
    assert_eq!(status, 500, "{}", String::from_utf8_lossy(&body));
    assert!(json(&body)["error"]
        .as_str()
        .unwrap()
        .contains("not an intact snapshot"));
    rt.block_on(async {
        let t = client(&target).await;
        assert!(t.check_stat("/gone0").await.unwrap().is_some());
    });

    let (status, _, body) = http(
        target_port,
        "POST",
        "/commands/rest",
        &[SUPER_AUTH],
        &backup,
    );
    let answer = json(&body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["command"], "restore");
    let backup_zxid = answer["last_zxid"].as_i64().unwrap();
    assert_eq!(format!("0x{backup_zxid:x}"), snap_zxid, "the backup's zxid");
    let check = |server: &ServerProcess| {
        let server_addr = server.addr();
        rt.block_on(async move {
            let t = zk::Client::connect(&server_addr.to_string()).await.unwrap();
            let (data, _) = t.get_data("/kept").await.unwrap();
            assert_eq!(data, b"from the backup");
            assert!(t.check_stat("/gone0").await.unwrap().is_none());
            t.create("/after", b"", &persistent())
                .await
                .map(|(stat, _)| stat.czxid)
        })
    };
    let czxid = check(&target).expect("a write after the restore");
    assert!(
        czxid > 20,
        "txns go on after the target's own history (czxid 0x{czxid:x})"
    );
    // A restart comes back to the restored state (and the write after it).
    target.restart().expect("restart");
    rt.block_on(async {
        let t = client(&target).await;
        assert!(t.check_stat("/after").await.unwrap().is_some());
        assert!(t.check_stat("/gone0").await.unwrap().is_none());
    });
    source.stop();
    target.stop();
}

#[test]
fn restore_loads_a_snapshot_zookeeper_wrote() {
    let test = "restore_loads_a_snapshot_zookeeper_wrote";
    if !corral_testkit::require_real_zookeeper(test) {
        return;
    }
    // snapCount=2: ZooKeeper writes a snapshot every few txns.
    let mut zk_server =
        corral_testkit::start_zookeeper(&["snapCount=2"], &[]).expect("start ZooKeeper");
    let rt = runtime();
    rt.block_on(async {
        let c = client(&zk_server).await;
        c.create("/from-zookeeper", b"hello", &persistent())
            .await
            .unwrap();
        for i in 0..10 {
            c.create(&format!("/more{i}"), b"", &persistent())
                .await
                .unwrap();
        }
    });
    zk_server.stop();
    let v2 = zk_server.data_dir.join("version-2");
    let newest = std::fs::read_dir(&v2)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snapshot.")
        })
        .max_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            i64::from_str_radix(name.trim_start_matches("snapshot."), 16).unwrap_or(-1)
        })
        .expect("a snapshot");
    let bytes = std::fs::read(&newest).unwrap();
    let (mut target, port) = corral_with_admin(&[], &[SUPER]);
    let (status, _, body) = http(port, "POST", "/commands/restore", &[SUPER_AUTH], &bytes);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    rt.block_on(async {
        let t = client(&target).await;
        let (data, _) = t.get_data("/from-zookeeper").await.unwrap();
        assert_eq!(data, b"hello");
    });
    target.stop();
}

#[test]
fn backup_commands_need_an_identity_with_all_on_the_root() {
    let (mut server, port) = corral_with_admin(
        &[],
        &[SUPER, ("zookeeper.admin.rateLimiterIntervalInMS", "0")],
    );
    let error = |body: &[u8]| json(body)["error"].as_str().unwrap_or("").to_string();
    // No Authorization header.
    let (status, _, body) = http(port, "GET", "/commands/snapshot", &[], b"");
    assert_eq!(
        (status, error(&body)),
        (401, "Auth info is missing for the command".into())
    );
    let (status, _, body) = http(port, "POST", "/commands/restore", &[], b"x");
    assert_eq!(
        (status, error(&body)),
        (401, "Auth info is missing for the command".into())
    );
    // A scheme without a provider.
    let (status, _, body) = http(
        port,
        "GET",
        "/commands/snapshot",
        &[("Authorization", "nosuch x")],
        b"",
    );
    assert_eq!((status, error(&body)), (401, "Not authenticated".into()));
    // Any digest identity holds ALL on the default root ACL (world:anyone).
    let (status, _, _) = http(
        port,
        "GET",
        "/commands/snapshot",
        &[("Authorization", "digest bob:pw")],
        b"",
    );
    assert_eq!(status, 200);
    // Once the root is only alice's, bob is refused; alice and the super user are let in.
    let rt = runtime();
    rt.block_on(async {
        let c = client(&server).await;
        c.auth("digest", b"alice:pw").await.unwrap();
        let alice = zk::Acls::creator_all();
        c.set_acl("/", &alice, None).await.unwrap();
    });
    let (status, _, body) = http(
        port,
        "GET",
        "/commands/snapshot",
        &[("Authorization", "digest bob:pw")],
        b"",
    );
    assert_eq!((status, error(&body)), (403, "Not authorized".into()));
    let (status, _, _) = http(
        port,
        "GET",
        "/commands/snapshot",
        &[("Authorization", "digest alice:pw")],
        b"",
    );
    assert_eq!(status, 200);
    let (status, _, _) = http(port, "GET", "/commands/snapshot", &[SUPER_AUTH], b"");
    assert_eq!(status, 200);
    // GET on restore and POST on a 3.8 command are not served.
    // (Over HTTP/1.0 a servlet answers a method it does not serve with 400, over 1.1 with 405.)
    assert_eq!(
        http(port, "GET", "/commands/restore", &[SUPER_AUTH], b"").0,
        400
    );
    assert_eq!(
        http(port, "POST", "/commands/ruok", &[SUPER_AUTH], b"").0,
        400
    );
    server.stop();

    // The feature flags: 503.
    let (mut off, port) = corral_with_admin(
        &[],
        &[
            SUPER,
            ("zookeeper.admin.snapshot.enabled", "false"),
            ("zookeeper.admin.restore.enabled", "false"),
        ],
    );
    assert_eq!(
        http(port, "GET", "/commands/snapshot", &[SUPER_AUTH], b"").0,
        503
    );
    assert_eq!(
        http(port, "POST", "/commands/restore", &[SUPER_AUTH], b"x").0,
        503
    );
    off.stop();

    // The rate limit (3.9's default: one restore per 300,000 ms): a second attempt is 429,
    // whether or not the first one loaded anything.
    let (mut limited, port) = corral_with_admin(&[], &[SUPER]);
    assert_eq!(
        http(port, "POST", "/commands/restore", &[SUPER_AUTH], b"x").0,
        500
    );
    assert_eq!(
        http(port, "POST", "/commands/restore", &[SUPER_AUTH], b"x").0,
        429
    );
    limited.stop();
}
