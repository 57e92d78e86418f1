//! What corral does with every setting ZooKeeper 3.8 documents: honours it, refuses it at
//! start-up (when it asks for something corral does not do), or accepts it with one log line
//! saying it has no effect and why (settings that only tune a JVM: thread pools, JMX, GC, and
//! Java classes corral cannot load). A setting is never accepted and then quietly ignored.
//!
//! The table [`SETTINGS`] is the one source: the loader checks every zoo.cfg key and `-D`
//! property against it, and `docs/configuration.md` holds [`markdown_table`]'s output (a test
//! compares the two).

use super::value::parse_bool;

/// Where ZooKeeper reads a setting from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `QuorumPeerConfig` parses the zoo.cfg key itself; there is no `-D` form.
    Cfg,
    /// The zoo.cfg key `K` becomes the system property `zookeeper.K`, which may also be given
    /// as `-Dzookeeper.K=…` (the file wins).
    Both,
    /// Only the system property named by the key (`-Djute.maxbuffer=…`); written in zoo.cfg it
    /// becomes `zookeeper.K`, which nothing reads.
    PropertyOnly,
}

/// What corral does with a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Acted on as ZooKeeper acts on it; the text is a note (often empty).
    Honoured(&'static str),
    /// Start-up stops if it is set to anything but its default; the text says why and what to
    /// do instead.
    Refused(&'static str),
    /// Accepted with one warning at start-up saying so; the text says why it has no effect.
    NoEffect(&'static str),
}

/// One documented setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The zoo.cfg key, or for [`Source::PropertyOnly`] the system property's name.
    pub key: &'static str,
    pub source: Source,
    /// ZooKeeper's default as it would be written (`""`: unset). A refused setting given its
    /// default value is accepted: it asks for nothing corral does not do.
    pub default: &'static str,
    pub support: Support,
    /// `(key, value)`: when that other setting has that value, this one means nothing in
    /// ZooKeeper either and is not refused (the AdminServer's port when the AdminServer is
    /// off).
    pub moot_when: Option<(&'static str, &'static str)>,
    /// The system properties ZooKeeper's code reads, comma-separated, when they are not
    /// `zookeeper.K` (zoo.cfg's `connectionMaxTokens` is `zookeeper.connection_throttle_tokens`
    /// to the code that reads it); empty otherwise.
    pub aka: &'static str,
    /// For a refused setting whose default corral cannot honour either: the one value corral
    /// accepts (`admin.enableServer=false`); empty when it is the default.
    pub accepts: &'static str,
}

impl Setting {
    const fn aka(mut self, names: &'static str) -> Setting {
        self.aka = names;
        self
    }

    /// Whether corral can run with this value of a refused setting: its default, or the one
    /// value it accepts instead.
    pub fn accepted(&self, value: &str) -> bool {
        if self.accepts.is_empty() {
            is_default(value, self.default)
        } else {
            is_default(value, self.accepts)
        }
    }

    /// Every system property name that sets this setting.
    pub fn properties(&self) -> Vec<String> {
        let mut names = match self.source {
            Source::Cfg => Vec::new(),
            Source::Both => vec![format!("zookeeper.{}", self.key)],
            Source::PropertyOnly => vec![self.key.to_string()],
        };
        names.extend(
            self.aka
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        );
        names
    }
}

const fn s(key: &'static str, source: Source, default: &'static str, support: Support) -> Setting {
    Setting {
        key,
        source,
        default,
        support,
        moot_when: None,
        aka: "",
        accepts: "",
    }
}

use Source::{Both, Cfg, PropertyOnly as Only};
use Support::{NoEffect as N, Refused as R};
const H: Support = Support::Honoured("");

const NO_TLS: &str = "not supported yet with corral's TLS; remove it";
const NO_QUORUM_TLS: &str = "not supported yet with corral's quorum TLS (sslQuorum is); remove it";
const NO_SASL: &str = "not supported yet with corral's SASL; remove it";
const THREADS: &str = "a JVM thread pool size; corral's I/O runs on its own small runtime";
const NO_THROTTLE: &str = "corral does not throttle requests yet; remove it";
const NO_LOCAL_SESSIONS: &str =
    "local sessions are not supported yet; remove it (every session is global)";
const NO_MULTI_ADDRESS: &str = "several addresses per member are not supported yet; remove it";
const ELECTION_TIMING: &str = "corral's election timing is fixed; remove it";

/// Every setting ZooKeeper 3.8's administrator's guide documents, in the guide's order.
pub const SETTINGS: &[Setting] = &[
    // Minimum configuration.
    s("clientPort", Cfg, "", H),
    s("secureClientPort", Cfg, "", H),
    s("observerMasterPort", Cfg, "", R("followers serving observers are not supported yet; remove it (observers sync from the leader)")),
    s("dataDir", Cfg, "", H),
    s("tickTime", Cfg, "3000", H),
    // Advanced configuration.
    s("dataLogDir", Cfg, "", H),
    s("globalOutstandingLimit", Both, "1000", Support::Honoured("past it, connections with requests outstanding stop being read until replies go out (a follower takes limit/(quorum size-1))")),
    s("preAllocSize", Both, "65536", H),
    s("snapCount", Both, "100000", H),
    s("commitLogCount", Both, "500", Support::Honoured("the leader's in-memory txns for DIFF; older ones are read from the log")),
    s("snapSizeLimitInKb", Both, "4194304", R("corral decides between DIFF and SNAP with snapshotSizeFactor only; remove it")),
    s("txnLogSizeLimitInKb", Both, "-1", R("corral starts a new log file only after a snapshot; remove it")),
    s("maxCnxns", Both, "0", Support::Honoured("connections past it are closed at once and counted in zk_connection_rejected")),
    s("maxClientCnxns", Cfg, "60", H),
    s("clientPortAddress", Cfg, "", H),
    s("secureClientPortAddress", Cfg, "", H),
    s("minSessionTimeout", Cfg, "-1", H),
    s("maxSessionTimeout", Cfg, "-1", H),
    s("fsync.warningthresholdms", Both, "1000", H),
    s("maxResponseCacheSize", Both, "400", N("corral keeps no cache of serialized replies")),
    s("maxGetChildrenResponseCacheSize", Both, "400", N("corral keeps no cache of serialized replies")),
    s("autopurge.snapRetainCount", Cfg, "3", H),
    s("autopurge.purgeInterval", Cfg, "0", H),
    s("syncEnabled", Cfg, "true", R("corral observers always log to disk; remove it")).aka("zookeeper.observer.syncEnabled"),
    s("extendedTypesEnabled", Both, "false", H),
    s("emulate353TTLNodes", Both, "false", R("corral does not emulate ZooKeeper 3.5.3's TTL encoding; remove it")),
    s("watchManagerName", Both, "", N("corral has one watch table; both of ZooKeeper's managers behave the same to clients")),
    s("watcherCleanThreadsNum", Both, "2", N(THREADS)),
    s("watcherCleanThreshold", Both, "1000", N("corral removes a closed connection's watches at once, not in batches")),
    s("watcherCleanIntervalInSeconds", Both, "600", N("corral removes a closed connection's watches at once, not in batches")),
    s("maxInProcessingDeadWatchers", Both, "-1", N("corral removes a closed connection's watches at once, not in batches")),
    s("bitHashCacheSize", Both, "10", N("a cache inside ZooKeeper's optimized watch manager")),
    s("fastleader.minNotificationInterval", Both, "200", R(ELECTION_TIMING)),
    s("fastleader.maxNotificationInterval", Both, "60000", R(ELECTION_TIMING)),
    s("connectionMaxTokens", Both, "0", Support::Honoured("the connection throttle's bucket: each connect request takes a token (or its weight); none left, the connection is closed and counted in zk_connection_rejected")).aka("zookeeper.connection_throttle_tokens"),
    s("connectionTokenFillTime", Both, "1", Support::Honoured("the connection throttle's refill period (ms)")).aka("zookeeper.connection_throttle_fill_time"),
    s("connectionTokenFillCount", Both, "1", Support::Honoured("tokens added per refill period")).aka("zookeeper.connection_throttle_fill_count"),
    s("connectionFreezeTime", Both, "-1", Support::Honoured("BLUE dropping (-1: off): at most once per this many ms the drop chance moves")).aka("zookeeper.connection_throttle_freeze_time"),
    s("connectionDropIncrease", Both, "0.02", Support::Honoured("BLUE: how much the drop chance rises while no tokens are left")).aka("zookeeper.connection_throttle_drop_increase"),
    s("connectionDropDecrease", Both, "0.002", Support::Honoured("BLUE: how much the drop chance falls once the deficit is small")).aka("zookeeper.connection_throttle_drop_decrease"),
    s("connectionDecreaseRatio", Both, "0", Support::Honoured("BLUE: the deficit, as a share of the bucket, under which the drop chance falls")).aka("zookeeper.connection_throttle_decrease_ratio"),
    s("clientPortListenBacklog", Cfg, "-1", R("corral listens with the operating system's default backlog; remove it")),
    s("serverCnxnFactory", Both, "", N("selects a Java networking library; corral has one connection layer")),
    s("clientCnxnSocket", Both, "", N("a Java client setting; the server does not read it")),
    s("flushDelay", Both, "0", N("corral joins every write waiting when an fsync starts to that fsync")),
    s("maxWriteQueuePollTime", Both, "", N("corral joins every write waiting when an fsync starts to that fsync")),
    s("maxBatchSize", Both, "1000", N("corral joins every write waiting when an fsync starts to that fsync")),
    s("enforceQuota", Both, "false", Support::Honoured("creates and setData over a hard quota limit (countHardLimit, byteHardLimit) get QuotaExceeded; soft limits log a warning")),
    s("connection_throttle_weight_enabled", Both, "false", Support::Honoured("connect requests take their weight: a new session's, a renewal's")),
    s("connection_throttle_global_session_weight", Both, "3", Support::Honoured("a new session's weight (and the bucket's scale)")),
    s("connection_throttle_local_session_weight", Both, "1", Support::Honoured("a local session's weight (every session is global in corral; it bounds the others as ZooKeeper does)")),
    s("connection_throttle_renew_session_weight", Both, "2", Support::Honoured("a renewal's weight")),
    s("request_throttler.shutdownTimeout", Both, "10000", N("corral stops without a request throttler to drain")),
    s("requestThrottleLimit", Both, "0", Support::Honoured("with this many requests in process no connection is read until replies go out (requests wait in their clients' TCP buffers, not in the server)")).aka("zookeeper.request_throttle_max_requests"),
    s("requestThrottleStallTime", Both, "100", Support::Honoured("the longest a held connection waits before it looks again (each reply also wakes it)")).aka("zookeeper.request_throttle_stall_time"),
    s("requestThrottleDropStale", Both, "true", Support::Honoured("held requests are never read, so none goes stale in the server; true and false alike")).aka("zookeeper.request_throttle_drop_stale,request_throttle_drop_stale"),
    s("requestStaleLatencyCheck", Both, "false", R(NO_THROTTLE)).aka("zookeeper.request_stale_latency_check"),
    s("requestStaleConnectionCheck", Both, "true", R(NO_THROTTLE)).aka("zookeeper.request_stale_connection_check"),
    s("advancedFlowControlEnabled", Both, "false", R(NO_THROTTLE)).aka("zookeeper.netty.advancedFlowControl.enabled"),
    s("enableEagerACLCheck", Both, "false", R("corral checks ACLs where ZooKeeper does by default; remove it")),
    s("maxConcurrentSnapSyncs", Both, "10", R("corral does not limit concurrent learner syncs yet; remove it")).aka("zookeeper.leader.maxConcurrentSnapSyncs"),
    s("maxConcurrentDiffSyncs", Both, "100", R("corral does not limit concurrent learner syncs yet; remove it")).aka("zookeeper.leader.maxConcurrentDiffSyncs"),
    s("digest.enabled", Both, "true", R("corral always keeps the tree digest; remove it")),
    s("snapshot.compression.method", Both, "", H),
    s("snapshot.trust.empty", Both, "false", H),
    s("audit.enable", Both, "false", Support::Honoured("ZooKeeper's audit lines, logged at INFO under the `audit` target")),
    s("audit.impl.class", Both, "", R("corral writes the audit lines to its log (ZooKeeper's default Slf4jAuditLogger); other audit logger classes are Java code; remove it")),
    s("largeRequestMaxBytes", Both, "104857600", R(NO_THROTTLE)),
    s("largeRequestThreshold", Both, "-1", R(NO_THROTTLE)),
    s("outstandingHandshake.limit", Both, "0", Support::Honoured("TLS handshakes under way at once on the client ports (secure or unified); past it a new connection is closed and counted in zk_tls_handshake_exceeded")).aka("zookeeper.netty.server.outstandingHandshake.limit"),
    s("netty.server.earlyDropSecureConnectionHandshakes", Both, "true", R(NO_TLS)),
    s("throttledOpWaitTime", Both, "0", R(NO_THROTTLE)).aka("zookeeper.throttled_op_wait_time"),
    s("learner.closeSocketAsync", Both, "false", N("corral never blocks a role change on closing a socket")).aka("learner.closeSocketAsync"),
    s("leader.closeSocketAsync", Both, "false", N("corral never blocks a role change on closing a socket")).aka("leader.closeSocketAsync"),
    s("learner.asyncSending", Both, "false", N("corral's learners always send from their own I/O task")).aka("learner.asyncSending"),
    s("forward_learner_requests_to_commit_processor_disabled", Both, "false", R("remove it; corral's leader always processes forwarded requests")),
    s("closeSessionTxn.enabled", Both, "true", H),
    s("snapshotSizeFactor", Both, "0.33", H),
    // Cluster options.
    s("electionAlg", Cfg, "3", H),
    s("maxTimeToWaitForEpoch", Both, "", R("corral waits for the epoch as long as initLimit allows; remove it")).aka("zookeeper.leader.maxTimeToWaitForEpoch"),
    s("initLimit", Cfg, "", H),
    s("connectToLearnerMasterLimit", Cfg, "0", R("corral uses initLimit for the connection to the leader; remove it")),
    s("leaderServes", Both, "yes", R("corral's leader always serves clients; remove it")),
    s("server.", Cfg, "", Support::Honoured("one address per member; several (multiAddress) are refused")),
    s("syncLimit", Cfg, "", H),
    s("group.", Cfg, "", R("hierarchical quorums are not supported yet; remove the group.N and weight.N lines (every member then has one vote)")),
    s("weight.", Cfg, "", R("hierarchical quorums are not supported yet; remove the group.N and weight.N lines (every member then has one vote)")),
    s("cnxTimeout", Both, "5000", R(ELECTION_TIMING)),
    s("quorumCnxnTimeoutMs", Both, "-1", R(ELECTION_TIMING)),
    s("standaloneEnabled", Cfg, "true", H),
    s("reconfigEnabled", Cfg, "false", H),
    s("4lw.commands.whitelist", Both, "srvr", H),
    s("tcpKeepAlive", Both, "false", R("corral does not set TCP keep-alive on quorum sockets; remove it")),
    s("clientTcpKeepAlive", Both, "false", R("corral does not set TCP keep-alive on client sockets; remove it")),
    s("electionPortBindRetry", Both, "3", R("corral gives up at once when the election port is taken; remove it")),
    s("observer.reconnectDelayMs", Both, "0", R("remove it; corral observers reconnect at once")),
    s("observer.election.DelayMs", Both, "200", R("remove it; corral observers look for the leader at once")),
    s("localSessionsEnabled", Cfg, "false", R(NO_LOCAL_SESSIONS)),
    s("localSessionsUpgradingEnabled", Cfg, "false", R(NO_LOCAL_SESSIONS)),
    s("peerType", Cfg, "participant", H),
    s("dynamicConfigFile", Cfg, "", H),
    s("oraclePath", Cfg, "", R("the two-member oracle is not supported; remove it")),
    // Encryption, authentication, authorization.
    s("DigestAuthenticationProvider.enabled", Both, "true", H),
    s("DigestAuthenticationProvider.superDigest", Both, "", H),
    s("DigestAuthenticationProvider.digestAlg", Both, "SHA1", Support::Honoured("SHA1, SHA-256 or SHA3-256; digest ids and superDigest use it")),
    s("X509AuthenticationProvider.superUser", Both, "", H),
    s("ssl.authProvider", Both, "x509", R("only the built-in x509 provider is available (corral loads no Java classes); remove it")),
    s("sessionRequireClientSASLAuth", Both, "false", Support::Honoured("as enforce.auth.enabled=true with enforce.auth.schemes=sasl")),
    s("requireClientAuthScheme", Both, "", Support::Honoured("=sasl as sessionRequireClientSASLAuth=true (the spelling of patched 3.4/3.5 builds; ZooKeeper 3.8 ignores it, corral enforces it)")),
    s("enforce.auth.enabled", Both, "false", Support::Honoured("requests other than auth and SASL get SessionClosedRequireAuth (-124) until the connection holds an id of one of the schemes")),
    s("enforce.auth.schemes", Both, "", Support::Honoured("each must have a provider (digest, ip, x509 with TLS, sasl with its authProvider)")),
    s("sslQuorum", Cfg, "false", Support::Honoured("election and quorum connections over TLS; needs ssl.quorum.keyStore and trustStore")),
    s("sslQuorumReloadCertFiles", Cfg, "false", Support::Honoured("the quorum key and trust stores are checked as each member connection opens and reloaded when they changed")),
    s("portUnification", Cfg, "false", Support::Honoured("the quorum and election ports take TLS and plaintext (the first byte tells them apart), for the rolling upgrade to sslQuorum; needs ssl.quorum.* stores")),
    s("ssl.keyStore.location", Both, "", Support::Honoured("JKS, PKCS12 or PEM (an unencrypted PKCS#8 key and its chain)")),
    s("ssl.keyStore.password", Both, "", H),
    s("ssl.keyStore.passwordPath", Both, "", H),
    s("ssl.keyStore.type", Both, "", H),
    s("ssl.trustStore.location", Both, "", Support::Honoured("needed unless ssl.clientAuth=none (corral has no JVM cacerts to fall back on)")),
    s("ssl.trustStore.password", Both, "", H),
    s("ssl.trustStore.passwordPath", Both, "", H),
    s("ssl.trustStore.type", Both, "", H),
    s("ssl.protocol", Both, "TLSv1.2", Support::Honoured("TLSv1.2, TLSv1.3 or TLS (both); older versions are refused")),
    s("ssl.enabledProtocols", Both, "", H),
    s("ssl.ciphersuites", Both, "", Support::Honoured("suites corral's TLS library lacks (the CBC ones) are dropped with a warning; none left is refused")),
    s("ssl.context.supplier.class", Both, "", R("corral loads no Java classes; configure the key and trust stores instead")),
    s("ssl.hostnameVerification", Both, "true", Support::Honoured("ZooKeeper checks no client host names on the client port either (ClientX509Util)")),
    s("ssl.crl", Both, "false", Support::Honoured("client certificates are checked against the CRLs (http) their distribution points name, fetched and cached 30 s; a certificate whose status cannot be told is refused, as Java's PKIX checker refuses it")),
    s("ssl.ocsp", Both, "false", R("corral does not query OCSP responders yet; use ssl.crl (CRL distribution points) or remove it")),
    s("ssl.clientAuth", Both, "need", H),
    s("ssl.handshakeDetectionTimeoutMillis", Both, "5000", R(NO_TLS)),
    s("ssl.quorum.keyStore.location", Both, "", H),
    s("ssl.quorum.keyStore.password", Both, "", H),
    s("ssl.quorum.keyStore.passwordPath", Both, "", H),
    s("ssl.quorum.keyStore.type", Both, "", H),
    s("ssl.quorum.trustStore.location", Both, "", H),
    s("ssl.quorum.trustStore.password", Both, "", H),
    s("ssl.quorum.trustStore.passwordPath", Both, "", H),
    s("ssl.quorum.trustStore.type", Both, "", H),
    s("ssl.quorum.protocol", Both, "TLSv1.2", H),
    s("ssl.quorum.enabledProtocols", Both, "", H),
    s("ssl.quorum.ciphersuites", Both, "", H),
    s("ssl.quorum.context.supplier.class", Both, "", R(NO_QUORUM_TLS)),
    s("ssl.quorum.hostnameVerification", Both, "true", Support::Honoured("a member's certificate must name the IP address it is reached at or connects from, as QuorumX509Util checks")),
    s("ssl.quorum.crl", Both, "false", R(NO_QUORUM_TLS)),
    s("ssl.quorum.ocsp", Both, "false", R(NO_QUORUM_TLS)),
    s("ssl.quorum.clientAuth", Both, "need", H),
    s("ssl.quorum.handshakeDetectionTimeoutMillis", Both, "5000", R(NO_QUORUM_TLS)),
    s("client.portUnification", Both, "false", H),
    s("authProvider.", Both, "", Support::Honoured("only the built-in digest, ip, x509 and sasl provider classes; any other class is refused (corral loads no Java classes)")),
    s("superUser", Both, "", Support::Honoured("the SASL user that is also super; so is each zookeeper.superUser.* property")),
    s("superUser.", Both, "", Support::Honoured("more SASL super users")),
    s("SASLAuthenticationProvider.superPassword", Both, "", R("corral takes the super user's password from the JAAS file only; remove it")),
    s("ensembleAuthName", Both, "", R("ensemble authentication is not supported yet; remove it")),
    s("ssl.allowReverseDnsLookup", Both, "false", R(NO_TLS)),
    s("ssl.quorum.allowReverseDnsLookup", Both, "true", R(NO_QUORUM_TLS)),
    s("client.certReload", Both, "false", Support::Honoured("checked as each TLS connection arrives; a store that no longer loads keeps the last good one")),
    s("fips-mode", Both, "false", R(NO_TLS)),
    s("allowSaslFailedClients", Both, "false", Support::Honoured("a client whose SASL exchange fails keeps its connection, without a sasl id, unless SASL is required")),
    s("sasl.client.canonicalize.hostname", Both, "true", R(NO_SASL)),
    s("kerberos.removeHostFromPrincipal", Both, "false", Support::Honoured("drops /host from a Kerberos principal's sasl id")),
    s("kerberos.removeRealmFromPrincipal", Both, "false", Support::Honoured("drops @REALM from a Kerberos principal's sasl id")),
    s("kerberos.canonicalizeHostNames", Both, "false", R(NO_SASL)),
    s("multiAddress.enabled", Both, "false", Support::Honoured("allows several addresses per server.N line, which corral then refuses")),
    s("multiAddress.reachabilityCheckTimeoutMs", Both, "1000", R(NO_MULTI_ADDRESS)),
    s("multiAddress.reachabilityCheckEnabled", Both, "true", R(NO_MULTI_ADDRESS)),
    s("quorum.auth.enableSasl", Cfg, "false", Support::Honoured("members check the SASL credentials (DIGEST-MD5 or Kerberos) of members that offer them; needs the JAAS file's QuorumServer and QuorumLearner sections")),
    s("quorum.auth.learnerRequireSasl", Cfg, "false", Support::Honoured("this member authenticates to every member it connects to")),
    s("quorum.auth.serverRequireSasl", Cfg, "false", Support::Honoured("members that do not authenticate, or fail, are refused")),
    s("quorum.auth.learner.saslLoginContext", Cfg, "QuorumLearner", H),
    s("quorum.auth.server.saslLoginContext", Cfg, "QuorumServer", H),
    s("quorum.auth.kerberos.servicePrincipal", Cfg, "zkquorum/localhost", Support::Honoured("the principal a member asks for with Kerberos, _HOST replaced by the other member's host")),
    s("zookeeper.server.realm", Only, "", Support::Honoured("the realm of quorum.auth.kerberos.servicePrincipal when it names none")),
    s("quorum.cnxn.threads.size", Cfg, "20", N(THREADS)),
    // Unsafe options.
    s("forceSync", Both, "yes", H),
    s("jute.maxbuffer", Only, "1048575", H),
    s("jute.maxbuffer.extrasize", Both, "", Support::Honoured("how far past jute.maxbuffer a member's packet may go (default jute.maxbuffer, at least 1024)")),
    s("skipACL", Both, "no", H),
    s("quorumListenOnAllIPs", Cfg, "false", R("corral listens on the member's own quorum and election addresses; remove it")),
    // SASL's JAAS file (system properties only; ZooKeeper's SASL documentation).
    s("java.security.auth.login.config", Only, "", Support::Honoured("its Server section: DigestLoginModule users (DIGEST-MD5) or a Krb5LoginModule with a keytab (GSSAPI)")),
    s("zookeeper.security.auth_to_local", Only, "DEFAULT", R("corral applies only the DEFAULT rule (the first component of a principal in the default realm); remove it")),
    s("java.security.krb5.conf", Only, "", Support::Honoured("the Kerberos configuration MIT Kerberos reads for GSSAPI (as KRB5_CONFIG); default /etc/krb5.conf")),
    s("zookeeper.sasl.serverconfig", Only, "Server", H),
    // Containers and read-only mode (system properties only).
    s("znode.container.checkIntervalMs", Only, "60000", H),
    s("znode.container.maxPerMinute", Only, "10000", H),
    s("znode.container.maxNeverUsedIntervalMs", Only, "0", H),
    s("readonlymode.enabled", Only, "false", R("read-only mode is not supported yet; remove it")),
    // Experimental, data directory, performance and debugging.
    s("follower.skipLearnerRequestToNextProcessor", Both, "false", R("remove it; corral's followers pass every learner request on")),
    s("datadir.autocreate", Both, "true", R("corral creates a missing dataDir; remove it")),
    s("db.autocreate", Both, "true", R("corral starts an empty database in an empty dataDir; remove it")),
    s("nio.numSelectorThreads", Both, "", N(THREADS)),
    s("nio.numWorkerThreads", Both, "", N(THREADS)),
    s("nio.sessionlessCnxnTimeout", Both, "10000", R("corral gives a connection without a session the same time as one with; remove it")),
    s("nio.shutdownTimeout", Both, "5000", N(THREADS)),
    s("commitProcessor.numWorkerThreads", Both, "", N(THREADS)),
    s("commitProcessor.shutdownTimeout", Both, "5000", N(THREADS)),
    s("commitProcessor.maxReadBatchSize", Both, "-1", N("schedules ZooKeeper's commit processor threads; corral applies commits in order on one task")),
    s("commitProcessor.maxCommitBatchSize", Both, "1", N("schedules ZooKeeper's commit processor threads; corral applies commits in order on one task")),
    s("messageTracker.BufferSize", Both, "10", N("a debugging buffer inside ZooKeeper's learner handler")),
    s("messageTracker.Enabled", Both, "false", N("a debugging buffer inside ZooKeeper's learner handler")),
    // AdminServer.
    s("admin.enableServer", Both, "true", Support::Honoured("ZooKeeper 3.8's commands as JSON over HTTP; a port that cannot be bound is logged and the server goes on without it, as ZooKeeper does")),
    s("admin.serverAddress", Both, "0.0.0.0", H),
    s("admin.serverPort", Both, "8080", H),
    s("admin.idleTimeout", Both, "30000", Support::Honoured("an AdminServer connection waiting this long for its next request is closed")),
    s("admin.commandURL", Both, "/commands", H),
    s("admin.forceHttps", Both, "false", Support::Honoured("HTTPS only, with ssl.quorum.keyStore's certificate, as ZooKeeper's Jetty")),
    s("admin.portUnification", Both, "false", Support::Honoured("HTTPS and HTTP on the AdminServer's port, told apart by the first byte")),
    // ZooKeeper 3.9's backup commands on the AdminServer (corral serves them beside 3.8's).
    s("zookeeper.admin.snapshot.enabled", Only, "true", Support::Honoured("ZooKeeper 3.9: the AdminServer's snapshot command (503 when false)")),
    s("zookeeper.admin.restore.enabled", Only, "true", Support::Honoured("ZooKeeper 3.9: the AdminServer's restore command (503 when false)")),
    s("zookeeper.admin.rateLimiterIntervalInMS", Only, "300000", Support::Honoured("ZooKeeper 3.9: one snapshot per interval (read as microseconds, as 3.9 does) and one restore per interval (milliseconds)")),
    // Metrics.
    s("metricsProvider.className", Cfg, "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider", Support::Honoured("ZooKeeper's DefaultMetricsProvider (mntr) or PrometheusMetricsProvider (/metrics); other classes stop start-up")),
    s("metricsProvider.httpHost", Cfg, "0.0.0.0", Support::Honoured("the Prometheus endpoint's address")),
    s("metricsProvider.httpPort", Cfg, "7000", Support::Honoured("the Prometheus endpoint's port")),
    s("metricsProvider.exportJvmInfo", Cfg, "true", Support::Honoured("exports the process_* metrics (CPU, memory, file descriptors, start time) in place of the JVM's")),
    s("metricsProvider.", Cfg, "", N("a tuning knob of the Prometheus provider's JVM worker pool")),
    // JVM pause monitor.
    s("jvm.pause.monitor", Cfg, "false", N("watches for JVM garbage-collection pauses; corral has no garbage collector")),
    s("jvm.pause.info-threshold.ms", Cfg, "1000", N("watches for JVM garbage-collection pauses; corral has no garbage collector")),
    s("jvm.pause.warn-threshold.ms", Cfg, "10000", N("watches for JVM garbage-collection pauses; corral has no garbage collector")),
    s("jvm.pause.sleep.time.ms", Cfg, "500", N("watches for JVM garbage-collection pauses; corral has no garbage collector")),
];

/// The setting a zoo.cfg key or property name belongs to (prefix families end in `.`).
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key).or_else(|| {
        SETTINGS
            .iter()
            .find(|s| s.key.ends_with('.') && key.starts_with(s.key) && key.len() > s.key.len())
    })
}

/// The setting a system property sets, if it is one of a setting's [`Setting::properties`].
pub fn by_property(name: &str) -> Option<&'static Setting> {
    SETTINGS
        .iter()
        .find(|s| s.properties().iter().any(|p| p == name))
}

/// Whether `value` asks for what `default` would give: booleans and numbers compare by value,
/// anything else as text. An unset default matches nothing.
pub fn is_default(value: &str, default: &str) -> bool {
    if default.is_empty() {
        return false;
    }
    let (v, d) = (value.trim(), default.trim());
    if let (Ok(a), Ok(b)) = (parse_bool("", None, v), parse_bool("", None, d)) {
        return a == b;
    }
    if let (Ok(a), Ok(b)) = (v.parse::<i64>(), d.parse::<i64>()) {
        return a == b;
    }
    if let (Ok(a), Ok(b)) = (v.parse::<f64>(), d.parse::<f64>()) {
        return a == b;
    }
    v == d
}

/// The authentication provider classes corral has built in; any other `authProvider.N` class
/// is refused (corral cannot load Java classes).
pub const BUILT_IN_AUTH_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
    X509_PROVIDER,
    SASL_PROVIDER,
];

/// ZooKeeper's SASL provider class: the `sasl` ACL scheme.
pub const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// ZooKeeper's x509 provider class: registered by the secure client port, or by name.
pub const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

fn source_text(s: &Setting) -> String {
    match s.source {
        Source::Cfg => "zoo.cfg".to_string(),
        Source::Both => {
            let names: Vec<String> = s.properties().iter().map(|n| format!("`-D{n}`")).collect();
            format!("zoo.cfg, {}", names.join(", "))
        }
        Source::PropertyOnly => format!("`-D{}` only", s.key),
    }
}

/// The table in `docs/configuration.md`, one row per setting.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Setting | Set in | ZooKeeper's default | corral | Notes |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let key = if s.key.ends_with('.') {
            format!("`{}N`", s.key)
        } else {
            format!("`{}`", s.key)
        };
        let default = if s.default.is_empty() {
            "unset".to_string()
        } else {
            format!("`{}`", s.default)
        };
        let (what, note) = match s.support {
            Support::Honoured(note) => ("honoured".to_string(), note.to_string()),
            Support::Refused(why) if !s.accepts.is_empty() => {
                (format!("refused unless `{}`", s.accepts), why.to_string())
            }
            Support::Refused(why) => ("refused unless default".to_string(), why.to_string()),
            Support::NoEffect(why) => ("no effect".to_string(), why.to_string()),
        };
        let note = match s.moot_when {
            Some((k, v)) => format!("{note} (accepted when `{k}={v}`)"),
            None => note,
        };
        out.push_str(&format!(
            "| {key} | {} | {default} | {what} | {note} |\n",
            source_text(s)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, ServerConfig};

    /// A value that differs from `default` and parses where the default does.
    fn other_value(default: &str) -> String {
        if let Ok(b) = parse_bool("", None, default) {
            return (!b).to_string();
        }
        if default.parse::<std::net::IpAddr>().is_ok() {
            return "127.0.0.1".to_string();
        }
        match default {
            "" => "1".to_string(),
            "yes" => "no".to_string(),
            "no" => "yes".to_string(),
            d if d.parse::<i64>().is_ok() => (d.parse::<i64>().unwrap() + 1).to_string(),
            d if d.parse::<f64>().is_ok() => (d.parse::<f64>().unwrap() * 2.0 + 1.0).to_string(),
            d => format!("{d}x"),
        }
    }

    fn key_of(s: &Setting) -> String {
        if s.key.ends_with('.') {
            format!("{}7", s.key)
        } else {
            s.key.to_string()
        }
    }

    fn load(file: &str, defines: &[(String, String)]) -> Result<ServerConfig, ConfigError> {
        ServerConfig::load(Some((Path::new("zoo.cfg"), file)), defines).map(|(c, _)| c)
    }

    fn warnings(file: &str) -> Vec<String> {
        let (_, w) = ServerConfig::load(Some((Path::new("zoo.cfg"), file)), &[]).unwrap();
        w.into_iter().map(|w| w.to_string()).collect()
    }

    // The loader does what the table says, key by key: every refused setting stops start-up
    // when it asks for something else than its default, from zoo.cfg (naming the line) and
    // from each -D property it has; given its default it is accepted; a no-effect setting
    // earns exactly one warning saying so.
    #[test]
    fn loader_agrees_with_the_table() {
        let mut checked = 0;
        for s in SETTINGS {
            let key = key_of(s);
            match s.support {
                Support::Refused(why) => {
                    let bad = match s.key {
                        "authProvider." => "org.example.Provider".to_string(),
                        _ if !s.accepts.is_empty() => other_value(s.accepts),
                        _ => other_value(s.default),
                    };
                    if s.source != Source::PropertyOnly {
                        let file = format!("dataDir=/d\n{key}={bad}\n");
                        match load(&file, &[]) {
                            Err(ConfigError::Unsupported {
                                key: k,
                                line: Some(2),
                                value,
                                reason,
                            }) => {
                                assert_eq!((k.as_str(), value.as_str()), (key.as_str(), &*bad));
                                assert_eq!(reason, why);
                            }
                            other => panic!("{key}={bad} in zoo.cfg: {other:?}"),
                        }
                    }
                    for name in s.properties() {
                        let d = vec![(name.clone(), bad.clone())];
                        match load("dataDir=/d\n", &d) {
                            Err(ConfigError::Unsupported {
                                key: k, line: None, ..
                            }) => {
                                assert_eq!(k, name)
                            }
                            other => panic!("-D{name}={bad}: {other:?}"),
                        }
                    }
                    let good = if s.accepts.is_empty() {
                        s.default
                    } else {
                        s.accepts
                    };
                    if !good.is_empty() && s.source != Source::PropertyOnly {
                        let file = format!("dataDir=/d\n{key}={good}\n");
                        if let Err(e) = load(&file, &[]) {
                            panic!("{key}={good} is accepted by the table: {e}");
                        }
                    }
                }
                Support::NoEffect(why) => {
                    if s.source != Source::PropertyOnly {
                        let value = if s.default.is_empty() { "1" } else { s.default };
                        let w = warnings(&format!("dataDir=/d\n{key}={value}\n"));
                        assert_eq!(
                            w,
                            vec![format!(
                                "zoo.cfg line 2: {key} has no effect in corral: {why}"
                            )]
                        );
                    }
                }
                Support::Honoured(_) => {}
            }
            checked += 1;
        }
        assert_eq!(checked, SETTINGS.len());
        // Built-in auth providers are honoured.
        for class in BUILT_IN_AUTH_PROVIDERS {
            load(&format!("dataDir=/d\nauthProvider.9={class}\n"), &[]).unwrap();
        }
        // The AdminServer's settings mean nothing once it is off, here as in ZooKeeper.
        for s in SETTINGS.iter().filter(|s| s.moot_when.is_some()) {
            let (k, v) = s.moot_when.unwrap();
            let bad = other_value(s.default);
            let file = format!("dataDir=/d\n{k}={v}\n{}={bad}\n", s.key);
            if let Err(e) = load(&file, &[]) {
                panic!("{}={bad} with {k}={v}: {e}", s.key);
            }
        }
        // Several addresses for one member are refused, not half-used.
        let file = "dataDir=/d\nmultiAddress.enabled=true\ninitLimit=5\nsyncLimit=2\n\
                    server.1=127.0.0.1:2888:3888|127.0.0.2:2888:3888\n\
                    server.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n";
        assert!(matches!(
            load(file, &[]),
            Err(ConfigError::Unsupported { line: Some(5), .. })
        ));
    }

    // The error says what was refused, where, and what to do.
    #[test]
    fn refusal_names_key_line_and_remedy() {
        let err = load(
            "dataDir=/d\nclientPort=2181\nquorumListenOnAllIPs=true\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "zoo.cfg line 3: quorumListenOnAllIPs=true is not supported by corral: corral listens \
             on the member's own quorum and election addresses; remove it"
        );
        // Spelling out a default is fine.
        load(
            "dataDir=/d\nsslQuorum=false\nenforceQuota=FALSE\nmaxCnxns=0\n",
            &[],
        )
        .unwrap();
    }

    // docs/configuration.md holds the table as the code has it. CORRAL_BLESS=1 rewrites it.
    #[test]
    fn docs_table_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let doc = std::fs::read_to_string(path).expect("docs/configuration.md");
        const START: &str =
            "<!-- settings table: generated by crates/server/src/config/support.rs -->\n";
        const END: &str = "<!-- end of settings table -->";
        let start = doc.find(START).expect("start marker") + START.len();
        let end = doc.find(END).expect("end marker");
        let table = markdown_table();
        if doc[start..end] != table {
            if std::env::var_os("CORRAL_BLESS").is_some() {
                let new = format!("{}{table}{}", &doc[..start], &doc[end..]);
                std::fs::write(path, new).unwrap();
                return;
            } else {
                panic!(
                    "docs/configuration.md's table differs from SETTINGS; rerun with CORRAL_BLESS=1 \
                     to rewrite it"
                );
            }
        }
        // Every key the doc's table names is in the code, and the other way round.
        let doc_keys: Vec<&str> = doc[start..end]
            .lines()
            .skip(2)
            .filter_map(|l| l.split('`').nth(1))
            .collect();
        let code_keys: Vec<String> = SETTINGS
            .iter()
            .map(|s| {
                if s.key.ends_with('.') {
                    format!("{}N", s.key)
                } else {
                    s.key.to_string()
                }
            })
            .collect();
        assert_eq!(doc_keys, code_keys);
    }
}
