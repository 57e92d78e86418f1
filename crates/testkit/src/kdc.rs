//! A private MIT Kerberos KDC (Debian `krb5-kdc`, `krb5-admin-server`) on a free loopback
//! port, for tests of Kerberos (SASL GSSAPI): its own realm, database and configuration in a
//! temporary directory (no root, nothing under /etc), principals with keytabs, and `krb5kdc`
//! in the foreground as a child that is killed by pid when the [`Kdc`] is dropped.
//!
//! ```text
//! <tmp>/krb5.conf          realm, kdc = 127.0.0.1:PORT, TCP only, no reverse DNS
//! <tmp>/kdc.conf           ports, database and stash in <tmp>
//! <tmp>/<name>.keytab      one keytab per principal (name: the principal with '/' and '@'
//!                          replaced by '_')
//! <tmp>/kdc.log            krb5kdc's output
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::free_port;

/// The Debian packages the KDC needs.
pub const KDC_PACKAGES: &str = "krb5-kdc krb5-admin-server krb5-user";
/// The KDC binary; its absence means the packages are missing.
pub const KRB5KDC: &str = "/usr/sbin/krb5kdc";

/// A running KDC.
pub struct Kdc {
    pub realm: String,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Kdc {
    /// Creates the realm and its database and starts the KDC; waits until it accepts TCP.
    pub fn start(realm: &str) -> anyhow::Result<Kdc> {
        let dir = tempfile::Builder::new()
            .prefix("corral-testkit-kdc-")
            .tempdir()
            .context("creating the KDC's directory")?;
        let port = free_port();
        let d = dir.path();
        let krb5_conf = format!(
            "[libdefaults]\n  default_realm = {realm}\n  udp_preference_limit = 1\n  \
             rdns = false\n  dns_lookup_kdc = false\n  dns_lookup_realm = false\n  \
             dns_canonicalize_hostname = false\n\
             [realms]\n  {realm} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n\
             [domain_realm]\n  localhost = {realm}\n  .localhost = {realm}\n"
        );
        fs::write(d.join("krb5.conf"), krb5_conf).context("writing krb5.conf")?;
        let kdc_conf = format!(
            "[kdcdefaults]\n  kdc_ports = {port}\n  kdc_tcp_ports = {port}\n\
             [realms]\n  {realm} = {{\n    database_name = {db}\n    \
             key_stash_file = {stash}\n    acl_file = {acl}\n    \
             max_life = 1h\n  }}\n",
            db = d.join("principal").display(),
            stash = d.join("stash").display(),
            acl = d.join("kadm5.acl").display(),
        );
        fs::write(d.join("kdc.conf"), kdc_conf).context("writing kdc.conf")?;
        fs::write(d.join("kadm5.acl"), "").context("writing kadm5.acl")?;
        let mut kdc = Kdc {
            realm: realm.to_string(),
            port,
            child: Command::new("true").spawn().context("spawning true")?,
            dir,
        };
        kdc.run(
            "/usr/sbin/kdb5_util",
            &["create", "-s", "-r", realm, "-P", "master-pw"],
        )?;
        let log = fs::File::create(kdc.path("kdc.log")).context("creating kdc.log")?;
        let err = log.try_clone()?;
        let _ = kdc.child.wait();
        kdc.child = kdc
            .command(KRB5KDC)
            .args(["-n", "-r", realm])
            .stdout(log)
            .stderr(err)
            .spawn()
            .context("starting krb5kdc")?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                bail!("krb5kdc does not listen on {port}: {}", kdc.log());
            }
            if let Ok(Some(status)) = kdc.child.try_wait() {
                bail!("krb5kdc exited ({status}): {}", kdc.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(kdc)
    }

    /// A file in the KDC's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The krb5.conf clients and servers must use (`KRB5_CONFIG`, `-Djava.security.krb5.conf`).
    pub fn krb5_conf(&self) -> PathBuf {
        self.path("krb5.conf")
    }

    /// `name@REALM`.
    pub fn principal(&self, name: &str) -> String {
        format!("{name}@{}", self.realm)
    }

    /// Adds principal `name` (`alice`, `zookeeper/localhost`) with a random key and returns
    /// the keytab holding it.
    pub fn add(&self, name: &str) -> anyhow::Result<PathBuf> {
        let principal = self.principal(name);
        let keytab = self.path(&format!("{}.keytab", principal.replace(['/', '@'], "_")));
        self.run(
            "/usr/sbin/kadmin.local",
            &["-q", &format!("addprinc -randkey {principal}")],
        )?;
        self.run(
            "/usr/sbin/kadmin.local",
            &["-q", &format!("ktadd -k {} {principal}", keytab.display())],
        )?;
        Ok(keytab)
    }

    /// The KDC's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.path("kdc.log")).unwrap_or_default()
    }

    /// A command that sees this KDC's configuration (and a credential cache of its own).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.path("kdc.conf"))
            .env(
                "KRB5CCNAME",
                format!("FILE:{}", self.path("ccache").display()),
            )
            .current_dir(self.dir.path());
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {program}"))?;
        // kadmin.local reports failures on stderr with a zero exit status.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.contains("while ") {
            bail!("{program} {args:?}: {}\n{stderr}", out.status);
        }
        Ok(())
    }

    /// The directory everything is in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
