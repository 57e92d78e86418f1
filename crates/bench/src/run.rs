//! One run, start to end: connect an admin session, create the prefix and the key space, open
//! the sessions (round-robin over the servers), run the measured phase with a progress line per
//! second, close every session, clean up if asked, and build the report.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_proto::jute::WriteJute;
use corral_proto::records::{op, perms};
use tokio::task::JoinSet;

use crate::conn::Conn;
use crate::drive::{drive, Budget, Plan, Progress};
use crate::error::BenchError;
use crate::limits::{CLEANUP_TIMEOUT, SETUP_TIMEOUT, SETUP_WINDOW};
use crate::options::Options;
use crate::recorder::Recorder;
use crate::report::Report;
use crate::watch::{fan_out, CONNECTION_LOSS};
use crate::workload::{Job, Op, Workload};

const NODE_EXISTS: i32 = -110;
const NO_NODE: i32 = -101;

/// Run the benchmark the options describe. Failed requests are counted in the report; an `Err`
/// means the run itself could not be done (no server, setup failed, a deadline passed).
pub async fn run(o: &Options) -> Result<Report, BenchError> {
    let setup_started = Instant::now();
    let setup_deadline = setup_started + SETUP_TIMEOUT;
    let mut admin = Conn::connect(&o.servers[0], o.session_timeout_ms).await?;
    let created_paths = ensure_path(&mut admin, &o.prefix, setup_deadline).await?;
    let workload = Workload {
        prefix: o.prefix.clone(),
        keys: o.keys,
        value: vec![b'x'; o.value_bytes as usize],
        read_percent: o.read_percent,
    };
    let watched = format!("{}/w", o.prefix);
    if o.op.needs_keys() {
        pass(
            &mut admin,
            &workload,
            Job::CreateKeys,
            o.keys,
            setup_deadline,
            &[NODE_EXISTS],
        )
        .await
        .map_err(|e| setup_failed("creating the keys", e))?;
    }
    if o.op == Op::Watch {
        let code = create(&mut admin, &watched, setup_deadline).await?;
        if code != 0 && code != NODE_EXISTS {
            return Err(BenchError::Server {
                what: format!("create {watched}"),
                code,
            });
        }
    }
    let sessions = if o.op == Op::Watch {
        o.watchers + 1
    } else {
        o.sessions
    };
    // The admin session would sit idle (no pings) through the measured phase; cleanup opens
    // a new one.
    let _ = admin.close().await;
    let mut conns = connect_all(o, sessions).await?;
    let setup_s = setup_started.elapsed().as_secs_f64();

    let started = Instant::now();
    let plan = Arc::new(Plan {
        workload: workload.clone(),
        job: Job::Load(o.op),
        window: if o.op == Op::Watch { 1 } else { o.window },
        budget: Budget::new(o.count, o.duration.map(|d| started + d)),
        progress: Progress::default(),
        deadline: started + o.timeout,
    });
    let ticker = (!o.quiet).then(|| tokio::spawn(progress_lines(plan.clone(), o.op)));
    let mut rec = Recorder::new();
    let mut watch_outcome = None;
    let mut failures = Vec::new();
    let survivors = if o.op == Op::Watch {
        let writer = conns.remove(0);
        let (outcome, survivors, result) = fan_out(
            writer,
            conns,
            &watched,
            &workload.value,
            &plan.budget,
            &plan.progress,
            plan.deadline,
            &mut rec,
        )
        .await;
        watch_outcome = Some(outcome);
        if let Err(e) = result {
            failures.push(e.to_string());
        }
        survivors
    } else {
        load(conns, &plan, &mut rec, &mut failures).await
    };
    let elapsed = started.elapsed();
    if let Some(t) = ticker {
        t.abort();
    }
    for f in &failures {
        eprintln!("corral bench: {f}");
    }
    let mut closing = JoinSet::new();
    for c in survivors {
        closing.spawn(c.close());
    }
    while closing.join_next().await.is_some() {}

    let cleaned = if o.cleanup {
        let mut admin = Conn::connect(&o.servers[0], o.session_timeout_ms).await?;
        let n = cleanup(&mut admin, o, &workload, &plan.budget, created_paths).await;
        let _ = admin.close().await;
        Some(n)
    } else {
        None
    };

    let p = rec.percentiles();
    let from_write = watch_outcome.as_ref().map(|w| w.from_write.percentiles());
    let elapsed_s = elapsed.as_secs_f64();
    Ok(Report {
        op: o.op.name().to_string(),
        count: p.count,
        sessions,
        window: plan.window,
        bytes: o.value_bytes,
        ops_per_s: if elapsed_s > 0.0 {
            p.count as f64 / elapsed_s
        } else {
            0.0
        },
        p50_us: p.p50_us,
        p90_us: p.p90_us,
        p99_us: p.p99_us,
        p999_us: p.p999_us,
        max_us: p.max_us,
        mean_us: p.mean_us,
        errors: rec.errors,
        errors_by_code: rec.errors_by_code.clone(),
        reads: rec.reads,
        writes: if o.op == Op::Watch {
            plan.budget.issued()
        } else {
            rec.writes
        },
        elapsed_s,
        setup_s,
        servers: o.servers.clone(),
        prefix: o.prefix.clone(),
        keys: if o.op.needs_keys() { o.keys } else { 0 },
        read_percent: (o.op == Op::Mixed).then_some(o.read_percent),
        watchers: (o.op == Op::Watch).then_some(o.watchers),
        notified_before_reply: watch_outcome.as_ref().map(|w| w.notified_before_reply),
        from_write_p50_us: from_write.map(|p| p.p50_us),
        from_write_p99_us: from_write.map(|p| p.p99_us),
        from_write_max_us: from_write.map(|p| p.max_us),
        requested_count: o.count,
        duration_s: o.duration.map(|d| d.as_secs_f64()),
        cleaned,
    })
}

fn setup_failed(what: &str, e: BenchError) -> BenchError {
    BenchError::Server {
        what: format!("{what}: {e}"),
        code: match e {
            BenchError::Server { code, .. } => code,
            _ => CONNECTION_LOSS,
        },
    }
}

/// Open `n` sessions concurrently, session `i` on server `i mod servers`.
async fn connect_all(o: &Options, n: u32) -> Result<Vec<Conn>, BenchError> {
    let mut set = JoinSet::new();
    for i in 0..n {
        let addr = o.servers[i as usize % o.servers.len()].clone();
        let timeout_ms = o.session_timeout_ms;
        set.spawn(async move { (i, Conn::connect(&addr, timeout_ms).await) });
    }
    let mut conns: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, conn) = joined.expect("connect tasks do not panic");
        conns[i as usize] = Some(conn?);
    }
    Ok(conns.into_iter().flatten().collect())
}

/// The measured phase of the pipelined ops: one task per session. A session that fails counts
/// its unanswered requests as connection losses; the others go on. Returns the sessions left
/// to close.
async fn load(
    conns: Vec<Conn>,
    plan: &Arc<Plan>,
    rec: &mut Recorder,
    failures: &mut Vec<String>,
) -> Vec<Conn> {
    let mut set = JoinSet::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let plan = plan.clone();
        set.spawn(async move {
            let mut rec = Recorder::new();
            let result = drive(&mut conn, &plan, i as u64 + 1, &mut rec).await;
            (conn, rec, result)
        });
    }
    let mut survivors = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (conn, r, result) = joined.expect("session tasks do not panic");
        rec.merge(&r);
        match result {
            Ok(()) => survivors.push(conn),
            Err(e) => {
                for _ in 0..e.unanswered {
                    rec.record_error(CONNECTION_LOSS);
                }
                failures.push(format!(
                    "session 0x{:x}: {} ({} requests unanswered)",
                    conn.session_id(),
                    e.error,
                    e.unanswered
                ));
            }
        }
    }
    survivors
}

/// One line per second on stderr: seconds, completed requests, the last second's rate, errors.
async fn progress_lines(plan: Arc<Plan>, op: Op) {
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = 0u64;
    let mut n = 0u64;
    loop {
        tick.tick().await;
        n += 1;
        let done = plan.progress.done.load(Ordering::Relaxed);
        let errors = plan.progress.errors.load(Ordering::Relaxed);
        eprintln!(
            "corral bench: {n:>4}s op={} ops={done} ops/s={} errors={errors}",
            op.name(),
            done - last
        );
        last = done;
    }
}

/// Run an unmeasured pass of `count` requests on the admin session; error codes in `allowed`
/// are fine, any other fails the pass. Returns the successful requests.
async fn pass(
    admin: &mut Conn,
    workload: &Workload,
    job: Job,
    count: u64,
    deadline: Instant,
    allowed: &[i32],
) -> Result<u64, BenchError> {
    if count == 0 {
        return Ok(0);
    }
    let plan = Plan {
        workload: workload.clone(),
        job,
        window: SETUP_WINDOW,
        budget: Budget::new(Some(count), None),
        progress: Progress::default(),
        deadline,
    };
    let mut rec = Recorder::new();
    drive(admin, &plan, 0, &mut rec)
        .await
        .map_err(|e| e.error)?;
    let mut ok = rec.count();
    for (&code, &n) in &rec.errors_by_code {
        if !allowed.contains(&code) {
            return Err(BenchError::Server {
                what: format!("{n} requests"),
                code,
            });
        }
        ok -= n;
    }
    Ok(ok)
}

/// Create a persistent node with no data; returns the error code (0 when created).
async fn create(conn: &mut Conn, path: &str, deadline: Instant) -> Result<i32, BenchError> {
    let reply = conn
        .call(
            op::CREATE,
            |out| {
                out.put_ustring(Some(path));
                out.put_buffer(Some(&[]));
                out.put_i32(1);
                out.put_i32(perms::ALL);
                out.put_ustring(Some("world"));
                out.put_ustring(Some("anyone"));
                out.put_i32(0);
            },
            deadline,
        )
        .await?;
    Ok(reply.err)
}

/// Create `path` and any missing ancestor. Returns the nodes created, parents first (so that
/// cleanup removes only what the run made).
async fn ensure_path(
    conn: &mut Conn,
    path: &str,
    deadline: Instant,
) -> Result<Vec<String>, BenchError> {
    let mut created = Vec::new();
    for (i, _) in path.match_indices('/').skip(1).chain([(path.len(), "")]) {
        let code = create(conn, &path[..i], deadline).await?;
        match code {
            0 => created.push(path[..i].to_string()),
            NODE_EXISTS => {}
            code => {
                return Err(BenchError::Server {
                    what: format!("create {}", &path[..i]),
                    code,
                })
            }
        }
    }
    Ok(created)
}

async fn delete(conn: &mut Conn, path: &str, deadline: Instant) -> Result<i32, BenchError> {
    let reply = conn
        .call(
            op::DELETE,
            |out| {
                out.put_ustring(Some(path));
                out.put_i32(-1);
            },
            deadline,
        )
        .await?;
    Ok(reply.err)
}

/// Delete what the run created, within [`CLEANUP_TIMEOUT`]; problems are reported on stderr
/// and do not fail the run. Returns the nodes deleted.
async fn cleanup(
    admin: &mut Conn,
    o: &Options,
    workload: &Workload,
    budget: &Budget,
    created_paths: Vec<String>,
) -> u64 {
    let deadline = Instant::now() + CLEANUP_TIMEOUT;
    let mut deleted = 0;
    let mut passes = Vec::new();
    if o.op == Op::Create {
        passes.push((Job::DeleteCreated, budget.issued()));
    }
    if o.op.needs_keys() {
        passes.push((Job::DeleteKeys, o.keys));
    }
    for (job, count) in passes {
        match pass(admin, workload, job, count, deadline, &[NO_NODE]).await {
            Ok(n) => deleted += n,
            Err(e) => eprintln!("corral bench: cleanup incomplete: {e}"),
        }
    }
    let mut last = Vec::new();
    if o.op == Op::Watch {
        last.push(format!("{}/w", o.prefix));
    }
    last.extend(created_paths.into_iter().rev());
    for path in last {
        match delete(admin, &path, deadline).await {
            Ok(0) => deleted += 1,
            Ok(code) => eprintln!("corral bench: cleanup: delete {path}: error {code}"),
            Err(e) => eprintln!("corral bench: cleanup: delete {path}: {e}"),
        }
    }
    deleted
}
