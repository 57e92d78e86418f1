//! `corral bench`: a load generator for ZooKeeper-protocol servers (corral or ZooKeeper 3.8),
//! for operators, in the spirit of ZooKeeper's smoketest and latency tools and of the
//! independent `zkbench`.
//!
//! Owns the client side of the protocol needed for load (handshake, pipelined requests matched
//! by xid, pings, closeSession; built on corral-proto), the workloads, the latency recorder and
//! the report. It must stay cheap per request (no allocation per request, one task per
//! session) so that the generator is not what is measured, and it must not depend on any corral
//! server internals: the same run drives the real ZooKeeper.

pub mod conn;
pub mod drive;
pub mod error;
pub mod limits;
pub mod options;
pub mod recorder;
pub mod report;
pub mod run;
pub mod watch;
pub mod workload;

pub use error::BenchError;
pub use options::{BenchArgs, Options};
pub use report::Report;
pub use workload::Op;

/// Run `corral bench` with parsed arguments: progress on stderr, the summary on stdout.
/// Fails with [`BenchError::RequestsFailed`] (exit status 1) when any request failed.
pub fn main(args: BenchArgs) -> Result<(), BenchError> {
    let opts = Options::from_args(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let report = rt.block_on(run::run(&opts))?;
    if opts.json {
        println!("{}", report.json());
    } else {
        println!("{}", report.line());
    }
    if report.errors > 0 {
        return Err(BenchError::RequestsFailed {
            errors: report.errors,
            count: report.count,
            by_code: report.errors_by_code,
        });
    }
    Ok(())
}
