//! Keys and certificates for TLS tests, made the way ZooKeeper users make them: openssl for the
//! CA and the certificates, keytool for the Java key and trust stores. Test support only.
//!
//! [`make_pki`] writes, in a directory: `ca.pem` (and its key), `server.crt`/`server.key` for
//! localhost and 127.0.0.1 and the key stores `server.p12`, `server.jks`, `server.pem` (and
//! `server-enc.pem`, its key encrypted with the store password); the trust
//! stores `trust.jks`, `trust.p12` (and `ca.pem`); a client certificate with the subject
//! [`CLIENT_SUBJECT`] in `client.p12` (and `client.crt`/`client.key`); a self-signed, untrusted
//! `rogue.p12`. Every store's password is [`PW`].

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::output_lines;

/// The password of every store [`make_pki`] writes.
pub const PW: &str = "secret";
/// The client certificate's subject as openssl takes it (spaces and a comma, so RFC 2253
/// escaping shows in the x509 id).
pub const CLIENT_SUBJECT: &str =
    "/C=DE/ST=Berlin/L=Berlin/O=Corral Test/OU=Ops, Team/CN=client one";

/// Runs a command in `dir` to success within 2 minutes, or panics with its output.
pub fn run(dir: &Path, what: &str, cmd: &mut Command) {
    output_lines(cmd.current_dir(dir), Duration::from_secs(120), what);
}

/// `openssl` with whitespace-separated arguments, in `dir`.
pub fn openssl(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    run(
        dir,
        &format!("openssl {}", args.join(" ")),
        Command::new("openssl").args(&args),
    );
}

/// A CA; a server certificate for localhost and 127.0.0.1; two client certificates, one from
/// the CA and one self-signed (untrusted); each in the stores ZooKeeper users make.
pub fn make_pki(dir: &Path) {
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(dir, "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=corral-test-CA");
    openssl(
        dir,
        "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
    );
    openssl(dir, "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext");
    // The subject has spaces and a comma: RFC 2253 escaping shows in the x509 id.
    run(
        dir,
        "openssl req (client)",
        Command::new("openssl").args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            CLIENT_SUBJECT,
        ]),
    );
    openssl(dir, "x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client.ext");
    openssl(dir, "req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.crt -days 2 -subj /CN=rogue -addext extendedKeyUsage=clientAuth");
    fs::write(
        dir.join("server.pem"),
        [
            fs::read(dir.join("server.key")).unwrap(),
            fs::read(dir.join("server.crt")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    // The same with the key encrypted under the store password (PKCS#8, PBES2 with AES-256).
    openssl(
        dir,
        &format!(
            "pkcs8 -topk8 -v2 aes-256-cbc -in server.key -out server-enc.key -passout pass:{PW}"
        ),
    );
    fs::write(
        dir.join("server-enc.pem"),
        [
            fs::read(dir.join("server-enc.key")).unwrap(),
            fs::read(dir.join("server.crt")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    for (name, crt, key) in [
        ("server", "server.crt", "server.key"),
        ("client", "client.crt", "client.key"),
        ("rogue", "rogue.crt", "rogue.key"),
    ] {
        openssl(dir, &format!("pkcs12 -export -in {crt} -inkey {key} -out {name}.p12 -passout pass:{PW} -name {name}"));
    }
    run(
        dir,
        "keytool -importkeystore",
        Command::new("keytool").args([
            "-importkeystore",
            "-srckeystore",
            "server.p12",
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            PW,
            "-destkeystore",
            "server.jks",
            "-deststoretype",
            "JKS",
            "-deststorepass",
            PW,
            "-noprompt",
        ]),
    );
    for (file, ty) in [("trust.jks", "JKS"), ("trust.p12", "PKCS12")] {
        run(
            dir,
            "keytool -importcert",
            Command::new("keytool").args([
                "-importcert",
                "-noprompt",
                "-alias",
                "ca",
                "-file",
                "ca.pem",
                "-keystore",
                file,
                "-storetype",
                ty,
                "-storepass",
                PW,
            ]),
        );
    }
}
