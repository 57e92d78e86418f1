//! Latency recorder: an HDR histogram of microseconds (3 significant digits, up to one hour)
//! per session, merged at the end, plus exact counts of requests, reads, writes and errors by
//! ZooKeeper code. The percentiles it reports never exceed the exact maximum, so they are
//! ordered: p50 <= p90 <= p99 <= p999 <= max.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency the histogram resolves; longer ones are recorded as this.
const LATENCY_US_MAX: u64 = 3_600_000_000;

#[derive(Debug, Clone)]
pub struct Recorder {
    hist: Histogram<u64>,
    max_us: u64,
    sum_us: u128,
    pub reads: u64,
    pub writes: u64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<i32, u64>,
}

/// The latency summary of a recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            hist: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                .expect("constant histogram bounds are valid"),
            max_us: 0,
            sum_us: 0,
            reads: 0,
            writes: 0,
            errors: 0,
            errors_by_code: BTreeMap::new(),
        }
    }

    /// Record one completed request: its latency, whether it read, and its error code (0 = ok).
    pub fn record(&mut self, latency: Duration, is_read: bool, err: i32) {
        let us = (latency.as_micros().min(u128::from(LATENCY_US_MAX)) as u64).max(1);
        self.hist.saturating_record(us);
        self.max_us = self.max_us.max(us);
        self.sum_us += u128::from(us);
        if is_read {
            self.reads += 1;
        } else {
            self.writes += 1;
        }
        if err != 0 {
            self.record_error(err);
        }
    }

    /// Count a failure that has no latency (e.g. a request lost with its connection).
    pub fn record_error(&mut self, code: i32) {
        self.errors += 1;
        *self.errors_by_code.entry(code).or_insert(0) += 1;
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.hist
            .add(&other.hist)
            .expect("histograms with equal bounds always merge");
        self.max_us = self.max_us.max(other.max_us);
        self.sum_us += other.sum_us;
        self.reads += other.reads;
        self.writes += other.writes;
        self.errors += other.errors;
        for (code, n) in &other.errors_by_code {
            *self.errors_by_code.entry(*code).or_insert(0) += n;
        }
    }

    pub fn percentiles(&self) -> Percentiles {
        let count = self.hist.len();
        if count == 0 {
            return Percentiles::default();
        }
        // The histogram answers with the top of a bucket, which may exceed the exact maximum.
        let at = |q: f64| self.hist.value_at_quantile(q).min(self.max_us);
        Percentiles {
            count,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.max_us,
            mean_us: (self.sum_us / u128::from(count)) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn percentiles_of_a_uniform_sample() {
        let mut r = Recorder::new();
        for n in 1..=10_000 {
            r.record(us(n), n % 10 != 0, 0);
        }
        let p = r.percentiles();
        assert_eq!(p.count, 10_000);
        assert_eq!(p.max_us, 10_000);
        assert_eq!(p.mean_us, 5_000);
        // Three significant digits: within 0.1% of the exact value.
        for (got, want) in [
            (p.p50_us, 5_000),
            (p.p90_us, 9_000),
            (p.p99_us, 9_900),
            (p.p999_us, 9_990),
        ] {
            assert!(got.abs_diff(want) <= want / 1000 + 1, "{got} vs {want}");
        }
        assert_eq!((r.reads, r.writes, r.errors), (9_000, 1_000, 0));
    }

    #[test]
    fn percentiles_are_ordered_and_capped_by_the_exact_max() {
        // One value: every percentile is that value, not the top of its bucket.
        let mut r = Recorder::new();
        r.record(us(123_457), false, 0);
        let p = r.percentiles();
        assert_eq!(
            [p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us],
            [123_457; 5]
        );
        // A long tail.
        let mut r = Recorder::new();
        for n in 0..100_000u64 {
            r.record(us(100 + (n * n) % 7919), true, 0);
        }
        r.record(us(5_000_000), true, 0);
        let p = r.percentiles();
        assert!(p.p50_us <= p.p90_us);
        assert!(p.p90_us <= p.p99_us);
        assert!(p.p99_us <= p.p999_us);
        assert!(p.p999_us <= p.max_us);
        assert_eq!(p.max_us, 5_000_000);
    }

    #[test]
    fn zero_and_huge_latencies_are_clamped() {
        let mut r = Recorder::new();
        r.record(Duration::ZERO, true, 0);
        r.record(Duration::from_secs(100_000), true, 0);
        let p = r.percentiles();
        assert_eq!(p.count, 2);
        assert_eq!(p.p50_us, 1);
        assert_eq!(p.max_us, LATENCY_US_MAX);
        assert_eq!(Recorder::new().percentiles(), Percentiles::default());
    }

    #[test]
    fn merge_adds_counts_errors_and_samples() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.record(us(10), true, 0);
        a.record(us(20), false, -110);
        b.record(us(30), false, -110);
        b.record(us(40), false, -101);
        b.record_error(-4);
        a.merge(&b);
        assert_eq!(a.count(), 4);
        assert_eq!((a.reads, a.writes, a.errors), (1, 3, 4));
        assert_eq!(
            a.errors_by_code.into_iter().collect::<Vec<_>>(),
            vec![(-110, 2), (-101, 1), (-4, 1)]
        );
        assert_eq!(a.max_us, 40);
        assert_eq!(a.sum_us, 100);
    }
}
