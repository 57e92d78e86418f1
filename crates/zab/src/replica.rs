//! One server's replicated history as the ZAB roles see it, independent of the role: epochs,
//! the last logged / durable / applied zxids, the logged-but-uncommitted tail, the in-memory
//! committed log used for DIFF, and the output queue. Every storage output (`Append`,
//! `Truncate`, `LoadSnapshot`, `Commit`, epoch writes) is emitted here, so the invariants
//! that tie them together (zxids rise, commits follow the log, applied never passes logged)
//! are checked in one place. It holds no data tree: txns are opaque bytes.

use std::collections::VecDeque;

use corral_proto::{Epoch, Zxid};
use tracing::{debug, info, warn};

use crate::types::{bare_log, Durable, Output, PeerConfig};

/// Something a role tells the peer (not the glue) about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The role finished synchronisation in this epoch (leader: quorum of NEWLEADER ACKs;
    /// learner: UPTODATE).
    Established { epoch: Epoch },
    /// `cfg.config` changed: notifications must carry the new string.
    ConfigChanged,
}

#[derive(Debug)]
pub(crate) struct Replica {
    pub cfg: PeerConfig,
    pub accepted_epoch: Epoch,
    pub current_epoch: Epoch,
    /// Last zxid logged (or handed to the log with `Append`).
    pub last_zxid: i64,
    /// Every `Append` up to here is durable.
    pub synced_zxid: i64,
    /// Last zxid the glue's tree reflects (the last `Commit`, snapshot or replayed txn).
    pub last_applied: i64,
    /// Logged txns after `last_applied`, in zxid order; ends at `last_zxid` when non-empty.
    pub tail: VecDeque<(i64, Vec<u8>)>,
    /// The last `commit_log_count` applied txns, ending at `last_applied` when non-empty.
    pub committed_log: VecDeque<(i64, Vec<u8>)>,
    pub serving: bool,
    pub out: VecDeque<Output>,
    pub events: VecDeque<Event>,
}

impl Replica {
    pub fn new(cfg: PeerConfig, d: Durable) -> Replica {
        let last_applied = d.last_applied_zxid.0;
        let tail: VecDeque<(i64, Vec<u8>)> = bare_log(d.log_tail)
            .filter(|(z, _)| *z > last_applied)
            .collect();
        let last_zxid = tail.back().map_or(last_applied, |(z, _)| *z);
        if last_zxid != d.last_zxid.0 {
            warn!(
                sid = cfg.my_sid.0,
                given = format_args!("{:#x}", d.last_zxid),
                derived = format_args!("{:#x}", last_zxid),
                "last logged zxid does not match the applied zxid plus the log tail"
            );
        }
        let mut committed_log: VecDeque<(i64, Vec<u8>)> = bare_log(d.committed_log)
            .filter(|(z, _)| *z <= last_applied)
            .collect();
        while committed_log.len() > cfg.commit_log_count {
            committed_log.pop_front();
        }
        Replica {
            cfg,
            accepted_epoch: d.accepted_epoch,
            current_epoch: d.current_epoch,
            last_zxid,
            synced_zxid: last_zxid,
            last_applied,
            tail,
            committed_log,
            serving: false,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn my_sid(&self) -> i64 {
        self.cfg.my_sid.0
    }

    pub fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }

    pub fn tick_ms(&self) -> u64 {
        self.cfg.tick_ms.max(2)
    }

    pub fn write_accepted_epoch(&mut self, epoch: Epoch) {
        info!(sid = self.my_sid(), %epoch, "accepted epoch");
        self.accepted_epoch = epoch;
        self.emit(Output::WriteAcceptedEpoch(epoch));
    }

    pub fn write_current_epoch(&mut self, epoch: Epoch) {
        info!(sid = self.my_sid(), %epoch, "current epoch");
        self.current_epoch = epoch;
        self.emit(Output::WriteCurrentEpoch(epoch));
    }

    /// Hand a txn to the log. The caller has checked that `zxid` is new.
    pub fn append(&mut self, zxid: i64, txn: Vec<u8>) {
        assert!(
            zxid > self.last_zxid,
            "append {zxid:#x} not above last logged {:#x}",
            self.last_zxid
        );
        self.last_zxid = zxid;
        self.tail.push_back((zxid, txn.clone()));
        self.emit(Output::Append {
            zxid: Zxid(zxid),
            txn,
        });
    }

    pub fn handle_synced(&mut self, zxid: i64) {
        self.synced_zxid = self.synced_zxid.max(zxid.min(self.last_zxid));
    }

    /// The oldest uncommitted logged txn.
    pub fn tail_head(&self) -> Option<i64> {
        self.tail.front().map(|(z, _)| *z)
    }

    /// Apply the oldest tail txn, which must be `zxid`. Returns its bytes.
    pub fn commit_head(&mut self, zxid: i64) -> Vec<u8> {
        let (z, txn) = self.tail.pop_front().expect("commit with an empty tail");
        assert_eq!(z, zxid, "commit out of log order");
        assert!(z > self.last_applied, "commit {z:#x} not above applied");
        self.last_applied = z;
        self.committed_log.push_back((z, txn.clone()));
        while self.committed_log.len() > self.cfg.commit_log_count {
            self.committed_log.pop_front();
        }
        self.emit(Output::Commit {
            zxid: Zxid(z),
            txn: txn.clone(),
        });
        txn
    }

    /// Apply every tail txn up to and including `zxid`.
    pub fn commit_through(&mut self, zxid: i64) {
        while let Some(z) = self.tail_head() {
            if z > zxid {
                break;
            }
            self.commit_head(z);
        }
    }

    /// TRUNC: cut the log after `zxid`. If the tree reflects more than that, the glue rebuilds
    /// it from the log up to `zxid`, so everything kept becomes applied.
    pub fn truncate(&mut self, zxid: i64) {
        debug!(
            sid = self.my_sid(),
            zxid = format_args!("{zxid:#x}"),
            "truncate"
        );
        self.tail.retain(|(z, _)| *z <= zxid);
        if self.last_applied > zxid {
            warn!(
                sid = self.my_sid(),
                applied = format_args!("{:#x}", self.last_applied),
                "truncating below the applied zxid: the tree is reloaded"
            );
            self.last_applied = zxid;
            self.tail.clear();
            self.committed_log.retain(|(z, _)| *z <= zxid);
        }
        // What remains of the log: the kept tail, else the applied zxid. It ends below `zxid`
        // when our log never had `zxid` (the learner checks).
        self.last_zxid = self.tail.back().map_or(self.last_applied, |(z, _)| *z);
        self.synced_zxid = self.last_zxid;
        self.emit(Output::Truncate { zxid: Zxid(zxid) });
    }

    /// `Input::Reloaded`: after a `Truncate`, the glue's rebuild ended at `last_zxid`, below
    /// the truncation point. The tree reflects `last_zxid` and the log holds nothing after it.
    pub fn reloaded(&mut self, last_zxid: i64, committed_log: Vec<(i64, Vec<u8>)>) {
        warn!(
            sid = self.my_sid(),
            zxid = format_args!("{last_zxid:#x}"),
            "the reload after TRUNC ended below the truncation point"
        );
        self.tail.clear();
        self.last_applied = last_zxid;
        self.last_zxid = last_zxid;
        self.synced_zxid = last_zxid;
        self.committed_log = committed_log
            .into_iter()
            .filter(|(z, _)| *z <= last_zxid)
            .collect();
        while self.committed_log.len() > self.cfg.commit_log_count {
            self.committed_log.pop_front();
        }
    }

    /// SNAP: the leader's tree at `zxid` replaces ours and the old log.
    pub fn load_snapshot(&mut self, zxid: i64, blob: Vec<u8>) {
        debug!(
            sid = self.my_sid(),
            zxid = format_args!("{zxid:#x}"),
            "load snapshot"
        );
        self.tail.clear();
        self.committed_log.clear();
        self.last_applied = zxid;
        self.last_zxid = zxid;
        self.synced_zxid = zxid;
        self.emit(Output::LoadSnapshot {
            zxid: Zxid(zxid),
            blob,
        });
    }

    /// Make `config` the committed config string (`QuorumPeer.setQuorumVerifier`): from now on
    /// in NEWLEADER and notifications; the glue shows and persists it.
    pub fn commit_config(&mut self, config: Vec<u8>) {
        info!(
            sid = self.my_sid(),
            from = format_args!("{:#x}", self.cfg.config_version()),
            to = format_args!(
                "{:#x}",
                corral_proto::quorum::QuorumConfig::version_in(&config)
            ),
            "config version"
        );
        self.cfg.config = config.clone();
        self.emit(Output::ConfigChanged { config });
        self.events.push_back(Event::ConfigChanged);
    }

    pub fn start_serving(&mut self) {
        if !self.serving {
            self.serving = true;
            self.emit(Output::StartServing);
        }
    }

    pub fn stop_serving(&mut self) {
        if self.serving {
            self.serving = false;
            self.emit(Output::StopServing);
        }
    }
}
