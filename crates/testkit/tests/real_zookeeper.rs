//! The testkit against the real ZooKeeper 3.8 (Debian's `zookeeper` package). Skipped with a
//! loud line when it is not installed, a failure when CI is set.

use std::net::TcpStream;
use std::time::Duration;

use corral_testkit::{four_letter, probe_handshake, require_real_zookeeper, start_zookeeper};

#[test]
fn real_zookeeper_starts_answers_and_stops() {
    if !require_real_zookeeper("real_zookeeper_starts_answers_and_stops") {
        return;
    }
    let mut zk = start_zookeeper(&[], &[]).expect("start the real ZooKeeper");
    assert_eq!(zk.connect_string(), format!("127.0.0.1:{}", zk.port));

    let session = probe_handshake(zk.addr(), Duration::from_secs(5)).expect("handshake");
    assert_eq!(
        (session as u64) >> 56,
        0x01,
        "standalone server id 1 is the top byte of the session id {session:#018x}"
    );

    assert_eq!(four_letter(zk.addr(), "ruok").unwrap(), "imok");
    let srvr = four_letter(zk.addr(), "srvr").unwrap();
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(srvr.contains("Zookeeper version: 3.8"), "{srvr}");

    // The log goes to server.log through our console-only log4j configuration.
    let log = zk.log();
    assert!(log.contains("binding to port"), "{log}");
    assert!(
        zk.data_dir.join("version-2").is_dir(),
        "ZooKeeper wrote into data_dir"
    );

    let pid = zk.pid();
    let status = zk.stop();
    assert_eq!(
        status.code(),
        Some(143),
        "ZooKeeper exits with 143 on SIGTERM: {status:?}"
    );
    assert!(!zk.is_running());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(
        TcpStream::connect(zk.addr()).is_err(),
        "port closed after stop"
    );
}

#[test]
fn real_zookeeper_extra_config_props_and_restart() {
    if !require_real_zookeeper("real_zookeeper_extra_config_props_and_restart") {
        return;
    }
    let mut zk = start_zookeeper(&["maxClientCnxns=7"], &[("zookeeper.testkit.marker", "42")])
        .expect("start the real ZooKeeper");

    let conf = four_letter(zk.addr(), "conf").unwrap();
    assert!(conf.contains("maxClientCnxns=7"), "{conf}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", zk.pid())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("-Dzookeeper.testkit.marker=42"),
        "{cmdline}"
    );
    assert!(
        cmdline.contains("-Dzookeeper.extendedTypesEnabled=true"),
        "{cmdline}"
    );

    let (port, first_pid) = (zk.port, zk.pid());
    zk.restart().expect("restart");
    assert_eq!(zk.port, port);
    assert_ne!(zk.pid(), first_pid);
    probe_handshake(zk.addr(), Duration::from_secs(5)).expect("handshake after restart");
    assert_eq!(
        zk.log().matches("binding to port").count(),
        2,
        "the log is appended across restarts"
    );
    // Dropping `zk` kills the second process.
}
