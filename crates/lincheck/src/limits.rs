//! Bounds for the checker's search. Kept in one place, as STYLE.md asks.

/// Most search steps (one step = one event replayed or one placement tried) the bounded DFS
/// over unknown writes may take before the checker gives up with `Outcome::Inconclusive`.
/// A history with no unknown writes needs exactly one step per event, so this only bites when
/// several unknown writes have long, overlapping windows and the history is inconsistent
/// (the search must then refute every placement). At roughly 1 µs per step this caps a check at
/// a few seconds, which keeps thousands of CI seeds affordable.
pub const SEARCH_STEPS_MAX: u64 = 2_000_000;

/// Most unknown writes one history may contain. Each one doubles the worst-case search; past
/// this the checker reports `Inconclusive` without searching.
pub const UNKNOWN_WRITES_MAX: usize = 256;

const _: () = assert!(SEARCH_STEPS_MAX >= 100_000);
const _: () = assert!(UNKNOWN_WRITES_MAX > 0 && UNKNOWN_WRITES_MAX <= 4096);
