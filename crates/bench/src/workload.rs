//! What each request of a run is: the ops, the mix of reads and writes, the key choice, and the
//! exact bytes of each request body (encoded straight into the send buffer, so a request costs
//! no allocation).
//!
//! Layout under the prefix `P` (all persistent, world-open ACL):
//! `P/k-<i>` the key space (created first, not measured), `P/c-<ticket>` nodes of the `create`
//! op, `P/m-<ticket>` created and deleted again inside each `multi`, `P/w` the watched node.

use corral_proto::jute::WriteJute;
use corral_proto::records::{op, perms};
use serde::{Deserialize, Serialize};

/// The operation a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// create `P/c-<n>` with the value (a new node per request).
    Create,
    /// setData of a random key, any version.
    Set,
    /// getData of a random key.
    Get,
    /// exists of a random key.
    Exists,
    /// getChildren of `P`, which holds the key space.
    Children,
    /// multi of create, setData and delete of `P/m-<n>` (three writes in one txn).
    Multi,
    /// getData or setData of a random key, `--read-percent` reads.
    Mixed,
    /// watch fan-out: watchers set a data watch on `P/w`, one writer sets it.
    Watch,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Set => "set",
            Op::Get => "get",
            Op::Exists => "exists",
            Op::Children => "children",
            Op::Multi => "multi",
            Op::Mixed => "mixed",
            Op::Watch => "watch",
        }
    }

    /// Whether the op works on the key space, which is then created before the run.
    pub fn needs_keys(self) -> bool {
        matches!(
            self,
            Op::Set | Op::Get | Op::Exists | Op::Children | Op::Mixed
        )
    }
}

/// A job for the pipelined driver: a measured op, or one of the unmeasured setup and cleanup
/// passes over the node names the run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Load(Op),
    /// create `P/k-<ticket>`.
    CreateKeys,
    /// delete `P/k-<ticket>`.
    DeleteKeys,
    /// delete `P/c-<ticket>` (what a `create` run made).
    DeleteCreated,
}

/// One request, chosen but not yet encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create(u64),
    CreateKey(u64),
    Set(u64),
    Get(u64),
    Exists(u64),
    Children,
    Multi(u64),
    DeleteKey(u64),
    DeleteCreated(u64),
}

impl Step {
    pub fn op_code(self) -> i32 {
        match self {
            Step::Create(_) | Step::CreateKey(_) => op::CREATE,
            Step::Set(_) => op::SET_DATA,
            Step::Get(_) => op::GET_DATA,
            Step::Exists(_) => op::EXISTS,
            Step::Children => op::GET_CHILDREN,
            Step::Multi(_) => op::MULTI,
            Step::DeleteKey(_) | Step::DeleteCreated(_) => op::DELETE,
        }
    }

    pub fn is_read(self) -> bool {
        matches!(self, Step::Get(_) | Step::Exists(_) | Step::Children)
    }
}

/// Whether the `nth` request of a session is a read when `read_percent` of them should be.
/// Spread evenly (Bresenham): every run of 100 consecutive requests holds exactly
/// `read_percent` reads, so short runs get the ratio asked for and no rng is involved.
pub fn is_read(nth: u64, read_percent: u32) -> bool {
    let p = u64::from(read_percent.min(100));
    (nth + 1) * p / 100 > nth * p / 100
}

/// The workload of one run: the op and what its requests carry.
#[derive(Debug, Clone)]
pub struct Workload {
    pub prefix: String,
    pub keys: u64,
    pub value: Vec<u8>,
    pub read_percent: u32,
}

impl Workload {
    /// The request for `ticket` (the run-wide request number) that is the `nth` of its session.
    pub fn step(&self, job: Job, ticket: u64, nth: u64, rng: &mut Rng) -> Step {
        match job {
            Job::Load(Op::Create) => Step::Create(ticket),
            Job::Load(Op::Set) => Step::Set(rng.below(self.keys)),
            Job::Load(Op::Get) => Step::Get(rng.below(self.keys)),
            Job::Load(Op::Exists) => Step::Exists(rng.below(self.keys)),
            Job::Load(Op::Children) => Step::Children,
            Job::Load(Op::Multi) => Step::Multi(ticket),
            // The watch op runs its own rounds (see `watch`); its writer's request is a set.
            Job::Load(Op::Watch) => Step::Set(rng.below(self.keys)),
            Job::Load(Op::Mixed) => {
                let key = rng.below(self.keys);
                if is_read(nth, self.read_percent) {
                    Step::Get(key)
                } else {
                    Step::Set(key)
                }
            }
            Job::CreateKeys => Step::CreateKey(ticket),
            Job::DeleteKeys => Step::DeleteKey(ticket),
            Job::DeleteCreated => Step::DeleteCreated(ticket),
        }
    }

    /// Append the request record of `step` (the body after the RequestHeader).
    pub fn write_body(&self, step: Step, out: &mut Vec<u8>) {
        let p = &self.prefix;
        match step {
            Step::Create(n) => write_create(out, p, "/c-", n, &self.value),
            Step::CreateKey(n) => write_create(out, p, "/k-", n, &self.value),
            Step::Set(n) => write_set(out, p, "/k-", n, &self.value),
            Step::Get(n) | Step::Exists(n) => {
                put_path(out, p, "/k-", Some(n));
                out.put_bool(false);
            }
            Step::Children => {
                put_path(out, p, "", None);
                out.put_bool(false);
            }
            Step::Multi(n) => {
                write_multi_header(out, op::CREATE, false);
                write_create(out, p, "/m-", n, &self.value);
                write_multi_header(out, op::SET_DATA, false);
                write_set(out, p, "/m-", n, &self.value);
                write_multi_header(out, op::DELETE, false);
                put_path(out, p, "/m-", Some(n));
                out.put_i32(-1);
                write_multi_header(out, -1, true);
            }
            Step::DeleteKey(n) => {
                put_path(out, p, "/k-", Some(n));
                out.put_i32(-1);
            }
            Step::DeleteCreated(n) => {
                put_path(out, p, "/c-", Some(n));
                out.put_i32(-1);
            }
        }
    }
}

/// The path of key `n`.
pub fn key_path(prefix: &str, n: u64) -> String {
    format!("{prefix}/k-{n}")
}

/// CreateRequest: path, data, acl (one entry: world:anyone, all perms), flags 0 (persistent).
fn write_create(out: &mut Vec<u8>, prefix: &str, tag: &str, n: u64, value: &[u8]) {
    put_path(out, prefix, tag, Some(n));
    out.put_buffer(Some(value));
    out.put_i32(1);
    out.put_i32(perms::ALL);
    out.put_ustring(Some("world"));
    out.put_ustring(Some("anyone"));
    out.put_i32(0);
}

/// SetDataRequest: path, data, version -1 (any).
fn write_set(out: &mut Vec<u8>, prefix: &str, tag: &str, n: u64, value: &[u8]) {
    put_path(out, prefix, tag, Some(n));
    out.put_buffer(Some(value));
    out.put_i32(-1);
}

/// MultiHeader: type, done, err (-1 in requests).
fn write_multi_header(out: &mut Vec<u8>, r#type: i32, done: bool) {
    out.put_i32(r#type);
    out.put_bool(done);
    out.put_i32(-1);
}

/// A jute ustring `prefix + tag + n` written in place, without building a String.
fn put_path(out: &mut Vec<u8>, prefix: &str, tag: &str, n: Option<u64>) {
    let at = out.len();
    out.put_i32(0);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(tag.as_bytes());
    if let Some(n) = n {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[i..]);
    }
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Key choice: a seeded generator per session (rand's `StdRng`), so a run's key sequence is
/// reproducible and sessions do not share state.
#[derive(Debug, Clone)]
pub struct Rng(rand::rngs::StdRng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(rand::SeedableRng::seed_from_u64(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        rand::Rng::gen_range(&mut self.0, 0..n)
    }
}

#[cfg(test)]
mod tests {
    use corral_proto::jute::{Jute, Reader};
    use corral_proto::records::{CreateRequest, PathWatchRequest, SetDataRequest};
    use corral_proto::request::{MultiDecode, MultiOp, Request};

    use super::*;

    fn workload() -> Workload {
        Workload {
            prefix: "/b".into(),
            keys: 10,
            value: b"xyz".to_vec(),
            read_percent: 90,
        }
    }

    /// The mix is exact over every window of 100 requests, for every percentage.
    #[test]
    fn read_percent_is_exact_per_hundred() {
        for p in 0..=100 {
            for start in [0u64, 7, 1000] {
                let reads = (start..start + 100).filter(|&n| is_read(n, p)).count();
                assert_eq!(reads as u32, p, "p={p} start={start}");
            }
        }
        // Over any 10 consecutive requests 90% is 9 reads, so short runs are mixed too.
        let reads = (0..10).filter(|&n| is_read(n, 90)).count();
        assert_eq!(reads, 9);
        assert!(!is_read(5, 0));
        assert!(is_read(5, 100));
        assert!(is_read(5, 1000), "percentages above 100 mean all reads");
    }

    #[test]
    fn mixed_job_gives_gets_and_sets_in_ratio() {
        let w = workload();
        let mut rng = Rng::new(1);
        let steps: Vec<Step> = (0..1000)
            .map(|n| w.step(Job::Load(Op::Mixed), n, n, &mut rng))
            .collect();
        let gets = steps.iter().filter(|s| matches!(s, Step::Get(_))).count();
        let sets = steps.iter().filter(|s| matches!(s, Step::Set(_))).count();
        assert_eq!((gets, sets), (900, 100));
        assert!(steps
            .iter()
            .all(|s| matches!(s, Step::Get(k) | Step::Set(k) if *k < 10)));
        // Every key is used over 1000 picks from 10.
        let mut seen = [false; 10];
        for s in &steps {
            if let Step::Get(k) | Step::Set(k) = s {
                seen[*k as usize] = true;
            }
        }
        assert!(seen.iter().all(|&b| b));
    }

    #[test]
    fn rng_below_stays_in_range_and_is_seeded() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for n in [1u64, 2, 3, 10, 1 << 40] {
            for _ in 0..100 {
                let x = a.below(n);
                assert!(x < n);
                assert_eq!(x, b.below(n));
            }
        }
        assert_eq!(Rng::new(1).below(0), 0);
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    /// The bodies written in place decode with corral-proto's own request decoder.
    #[test]
    fn bodies_decode_as_the_requests_meant() {
        let w = workload();
        let decode = |step: Step| {
            let mut out = Vec::new();
            w.write_body(step, &mut out);
            let mut r = Reader::new(&out);
            let req = Request::read(step.op_code(), &mut r).unwrap();
            assert!(r.is_empty(), "{step:?} left {} bytes", r.remaining());
            req
        };
        let Request::Create(c) = decode(Step::Create(1234567)) else {
            panic!()
        };
        assert_eq!(c.path, "/b/c-1234567");
        assert_eq!(c.data.as_deref(), Some(&b"xyz"[..]));
        assert_eq!(
            c.acl,
            vec![corral_proto::records::Acl::new(31, "world", "anyone")]
        );
        assert_eq!(c.flags, 0);
        assert_eq!(
            decode(Step::Set(0)),
            Request::SetData(SetDataRequest {
                path: "/b/k-0".into(),
                data: Some(b"xyz".to_vec()),
                version: -1
            })
        );
        assert_eq!(
            decode(Step::Exists(9)),
            Request::Exists(PathWatchRequest {
                path: "/b/k-9".into(),
                watch: false
            })
        );
        assert_eq!(
            decode(Step::Children),
            Request::GetChildren(PathWatchRequest {
                path: "/b".into(),
                watch: false
            })
        );
        let Request::Multi(MultiDecode::Ops(ops)) = decode(Step::Multi(7)) else {
            panic!("multi did not decode")
        };
        assert_eq!(ops.len(), 3);
        assert!(
            matches!(&ops[0], MultiOp::Create { req: CreateRequest { path, .. }, .. } if path == "/b/m-7")
        );
        assert!(matches!(&ops[1], MultiOp::SetData(s) if s.path == "/b/m-7"));
        assert!(matches!(&ops[2], MultiOp::Delete(d) if d.path == "/b/m-7" && d.version == -1));
        let Request::Delete(d) = decode(Step::DeleteCreated(3)) else {
            panic!()
        };
        assert_eq!(d.path, "/b/c-3");
        assert_eq!(key_path("/b", 3), "/b/k-3");
        // put_path writes the same bytes as a jute string of the formatted path.
        let mut a = Vec::new();
        put_path(&mut a, "/p", "/k-", Some(0));
        assert_eq!(a, "/p/k-0".to_string().to_bytes());
    }
}
