//! SASL GSSAPI (Kerberos) for clients, side by side with the real ZooKeeper 3.8 configured the
//! same way, against a real MIT Kerberos KDC the test sets up on loopback
//! (`corral_testkit::kdc`): the service principal `zookeeper/localhost` in a keytab named by
//! the JAAS `Server` section's `Krb5LoginModule`, `-Djava.security.krb5.conf`,
//! `authProvider.1=…SASLAuthenticationProvider`. The Java client logs in from its own keytab
//! (JAAS `Client` section) and kazoo from a ticket cache filled by `kinit`; both must see the
//! same on ZooKeeper and corral: SaslAuthenticated, whoAmI's `sasl` id (`alice@EXAMPLE.COM`,
//! or `alice` with `kerberos.removeRealmFromPrincipal`), sasl ACLs.
//!
//! Needs corral built with the `kerberos` feature (`cargo test --workspace --all-features`), the
//! real ZooKeeper, javac, the KDC packages and python3-gssapi: a missing one skips loudly, and
//! fails under CI=true.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral_testkit::kdc::{Kdc, KDC_PACKAGES, KRB5KDC};
use corral_testkit::{
    four_letter, interop_dir, java_sasl_client, javac, open_session, output_lines, raw,
    require_real_zookeeper, require_tool, start_corral, ServerProcess, ZOOKEEPER_JAR,
};

const TEST: &str = "kerberos";
const REALM: &str = "EXAMPLE.COM";
const PYTHON_GSSAPI: &str = "/usr/lib/python3/dist-packages/gssapi/__init__.py";
const KAZOO: &str = "/usr/lib/python3/dist-packages/kazoo/client.py";

fn corral() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_corral"))
}

fn requirements() -> bool {
    corral_testkit::require_feature(TEST, cfg!(feature = "kerberos"), "kerberos")
        && require_real_zookeeper(TEST)
        && require_tool(TEST, "/usr/bin/javac", "default-jdk-headless")
        && require_tool(TEST, KRB5KDC, KDC_PACKAGES)
        && require_tool(TEST, "/usr/bin/kinit", "krb5-user")
        && require_tool(TEST, KAZOO, "python3-kazoo")
        && require_tool(TEST, PYTHON_GSSAPI, "python3-gssapi")
}

/// The KDC with the service and two users; the server's JAAS file.
struct Realm {
    kdc: Kdc,
    server_jaas: String,
    alice_keytab: PathBuf,
}

fn realm() -> Realm {
    let kdc = Kdc::start(REALM).expect("starting the KDC");
    let service = kdc.add("zookeeper/localhost").expect("service principal");
    let alice_keytab = kdc.add("alice").expect("alice");
    let jaas = kdc.path("server-jaas.conf");
    fs::write(
        &jaas,
        format!(
            "Server {{\n    com.sun.security.auth.module.Krb5LoginModule required\n    \
             useKeyTab=true\n    keyTab=\"{}\"\n    storeKey=true\n    useTicketCache=false\n    \
             principal=\"zookeeper/localhost@{REALM}\";\n}};\n",
            service.display()
        ),
    )
    .unwrap();
    Realm {
        server_jaas: jaas.display().to_string(),
        kdc,
        alice_keytab,
    }
}

/// `localhost:PORT`: the client names the service `zookeeper/<host it connects to>`.
fn localhost(server: &ServerProcess) -> String {
    format!("localhost:{}", server.port)
}

fn java_client(r: &Realm, classes: &Path, server: &ServerProcess) -> String {
    let login = format!(
        "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true \
         keyTab=\"{}\" storeKey=true useTicketCache=false principal=\"alice@{REALM}\"",
        r.alice_keytab.display()
    );
    let krb5 = r.kdc.krb5_conf().display().to_string();
    java_sasl_client(
        classes,
        &r.kdc.path("client-jaas.conf"),
        &login,
        &[("java.security.krb5.conf", krb5)],
        &localhost(server),
    )
}

fn kazoo(r: &Realm, server: &ServerProcess, sasl_id: &str) -> String {
    let mut cmd = r.kdc.command("/usr/bin/python3");
    cmd.arg(interop_dir().join("security").join("kazoo_sasl.py"))
        .arg(localhost(server))
        .arg(sasl_id)
        .arg("-")
        .arg("GSSAPI");
    output_lines(&mut cmd, Duration::from_secs(60), "kazoo_sasl.py")
}

fn start(which: &str, r: &Realm, cfg: &[&str], props: &[(&str, &str)]) -> ServerProcess {
    let krb5 = r.kdc.krb5_conf().display().to_string();
    let mut all = vec![
        ("java.security.auth.login.config", r.server_jaas.as_str()),
        ("java.security.krb5.conf", krb5.as_str()),
    ];
    all.extend_from_slice(props);
    let server = corral_testkit::start_server(which, corral(), cfg, &all);
    server.unwrap_or_else(|e| panic!("starting {which}: {e:#}"))
}

const SASL_PROVIDER: &str =
    "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

// The Java client (keytab login) and kazoo (ticket cache from kinit) authenticate with
// Kerberos and see the same on ZooKeeper and on corral: SaslAuthenticated, whoAmI's sasl id
// with the realm, and with kerberos.removeRealmFromPrincipal without it, sasl ACLs.
#[test]
fn kerberos_clients_match_zookeeper() {
    if !requirements() {
        return;
    }
    let r = realm();
    let tmp = tempfile::tempdir().unwrap();
    let classes = javac(
        &interop_dir().join("security").join("SaslClient.java"),
        ZOOKEEPER_JAR,
        &tmp.path().join("classes"),
    );
    let out = r
        .kdc
        .command("/usr/bin/kinit")
        .args(["-k", "-t"])
        .arg(&r.alice_keytab)
        .arg(format!("alice@{REALM}"))
        .output()
        .expect("kinit");
    assert!(out.status.success(), "kinit: {out:?}");
    type Props<'a> = &'a [(&'a str, &'a str)];
    let variants: [(&str, Props, &str); 2] = [
        ("with the realm", &[], "alice@EXAMPLE.COM"),
        (
            "kerberos.removeRealmFromPrincipal",
            &[("zookeeper.kerberos.removeRealmFromPrincipal", "true")],
            "alice",
        ),
    ];
    for (what, props, id) in variants {
        let mut outs = Vec::new();
        for which in ["zookeeper", "corral"] {
            let mut server = start(which, &r, &[SASL_PROVIDER], props);
            let java = java_client(&r, &classes, &server);
            let py = kazoo(&r, &server, id);
            if which == "corral" {
                let log = server.log();
                assert!(
                    log.contains(&format!("Kerberos principal alice@{REALM} is sasl id {id}")),
                    "{log}"
                );
            }
            server.stop();
            outs.push(format!("{java}\n--\n{py}"));
        }
        assert!(
            outs[0].contains(&format!("WHOAMI sasl {id}")) && outs[0].contains("READ for "),
            "ZooKeeper {what}: {}\nKDC log:\n{}",
            outs[0],
            r.kdc.log()
        );
        assert_eq!(outs[1], outs[0], "corral {what}");
        eprintln!("kerberos {what}: ZooKeeper and corral agree: {}", outs[0]);
    }
}

// A keytab without the service principal's key stops corral's start-up with a message naming
// both, as ZooKeeper's login fails; garbage in place of a Kerberos token ends that connection
// only, as on ZooKeeper.
#[test]
fn kerberos_bad_keytab_and_bad_tokens() {
    if !requirements() {
        return;
    }
    let r = realm();
    let other = r.kdc.add("someone-else").unwrap();
    let jaas = r.kdc.path("wrong-jaas.conf");
    fs::write(
        &jaas,
        format!(
            "Server {{\n    com.sun.security.auth.module.Krb5LoginModule required\n    \
             useKeyTab=true\n    keyTab=\"{}\"\n    \
             principal=\"zookeeper/localhost@{REALM}\";\n}};\n",
            other.display()
        ),
    )
    .unwrap();
    let jaas = jaas.display().to_string();
    let krb5 = r.kdc.krb5_conf().display().to_string();
    let props = [
        ("java.security.auth.login.config", jaas.as_str()),
        ("java.security.krb5.conf", krb5.as_str()),
    ];
    match start_corral(corral(), &[SASL_PROVIDER], &props) {
        Ok(mut s) => {
            s.stop();
            panic!("corral started without the service key");
        }
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(
                msg.contains(&format!("no key for zookeeper/localhost@{REALM}"))
                    && msg.contains(&other.display().to_string()),
                "{msg}"
            );
        }
    }

    // The same garbage to ZooKeeper and to corral: AuthFailed, then the connection is closed,
    // and the server goes on serving (ZooKeeper 3.8 counts only TLS failures in
    // zk_auth_failed_count, and so does corral).
    let mut answers = Vec::new();
    for which in ["zookeeper", "corral"] {
        let mut server = start(which, &r, &[SASL_PROVIDER], &[]);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let mut c = open_session(server.addr(), Duration::from_secs(10)).unwrap();
            // SetSASL (opcode 102), xid 1, with a token that is not Kerberos.
            let mut req = Vec::new();
            req.extend_from_slice(&1i32.to_be_bytes());
            req.extend_from_slice(&102i32.to_be_bytes());
            req.extend_from_slice(&9i32.to_be_bytes());
            req.extend_from_slice(b"not a tok");
            let deadline = Instant::now() + Duration::from_secs(10);
            raw::send_frame(&mut c, &req, deadline).unwrap();
            let reply = raw::read_frame(&mut c, raw::FRAME_BYTES_MAX, deadline).unwrap();
            let err = i32::from_be_bytes(reply[12..16].try_into().unwrap());
            let closed = raw::read_frame(&mut c, raw::FRAME_BYTES_MAX, deadline).is_err();
            seen.push((err, closed));
        }
        let mntr = four_letter(server.addr(), "mntr").unwrap_or_default();
        let failed = mntr
            .lines()
            .find(|l| l.starts_with("zk_auth_failed_count"))
            .map(str::to_string);
        assert!(
            corral_testkit::probe_handshake(server.addr(), Duration::from_secs(10)).is_ok(),
            "{which} stopped serving"
        );
        if which == "corral" {
            let log = server.log();
            assert!(
                log.contains("SASL authentication failed on connection"),
                "{log}"
            );
        }
        server.stop();
        answers.push((seen, failed));
    }
    assert_eq!(
        answers[0].0,
        vec![(-115, true); 3],
        "ZooKeeper: AuthFailed, closed"
    );
    assert_eq!(
        answers[1], answers[0],
        "corral answers garbage as ZooKeeper does"
    );
}
