//! ZooKeeper's connection throttle (`connectionMaxTokens`, `connectionTokenFillTime`,
//! `connectionTokenFillCount`, `zookeeper.connection_throttle_weight_enabled` and its
//! weights): a token bucket each connect request draws from (one token, or with weights a new
//! session's or a renewal's weight), refilled by `fill_count` per `fill_time` ms. A pure
//! value: the node task asks it with the time and a random draw. With `connectionFreezeTime`
//! set (it is -1, off, by default) ZooKeeper's BLUE dropping runs beside the bucket: at most
//! once per freeze time the drop probability rises by `connectionDropIncrease` while the bucket
//! is empty, and falls by `connectionDropDecrease` once the deficit is at most
//! `connectionDecreaseRatio` of the bucket; each connect request is refused with that
//! probability.

/// BLUE's settings and state.
#[derive(Debug, Clone)]
struct Blue {
    freeze_ms: i64,
    increase: f64,
    decrease: f64,
    decrease_point: f64,
    last_freeze_ms: i64,
    drop: f64,
}

/// The bucket.
#[derive(Debug, Clone)]
pub(crate) struct ConnThrottle {
    blue: Option<Blue>,
    /// 0: no throttling.
    max: i64,
    tokens: i64,
    fill_time_ms: i64,
    fill_count: i64,
    last_ms: i64,
    /// With weights: (new session, renewal); else every connect takes one token.
    weights: Option<(i64, i64)>,
}

/// The settings as ZooKeeper reads them (tokens and fill count are for new sessions: with
/// weights they are multiplied by a new session's weight).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnThrottleSettings {
    pub max_tokens: i64,
    pub fill_time_ms: i64,
    pub fill_count: i64,
    pub weights: Option<(i64, i64)>,
    /// BLUE: (freeze time ms, drop increase, drop decrease, decrease ratio); None (freeze time
    /// -1) is off.
    pub blue: Option<(i64, f64, f64, f64)>,
}

impl ConnThrottle {
    pub(crate) fn new(s: ConnThrottleSettings, now_ms: i64) -> ConnThrottle {
        let scale = s.weights.map_or(1, |(global, _)| global);
        let max = s.max_tokens.max(0) * scale;
        ConnThrottle {
            blue: s
                .blue
                .map(|(freeze_ms, increase, decrease, decrease_point)| Blue {
                    freeze_ms,
                    increase,
                    decrease,
                    decrease_point,
                    last_freeze_ms: now_ms,
                    drop: 0.0,
                }),
            max,
            tokens: max,
            fill_time_ms: s.fill_time_ms.max(1),
            fill_count: s.fill_count * scale,
            last_ms: now_ms,
            weights: s.weights,
        }
    }

    /// Whether a connect request may go on (`renew`: it names an existing session); takes
    /// its tokens if so. `draw` is a uniform random number in [0, 1) for BLUE.
    pub(crate) fn admit(&mut self, renew: bool, now_ms: i64, draw: f64) -> bool {
        if self.max == 0 {
            return true;
        }
        let need = match self.weights {
            None => 1,
            Some((global, renewal)) => {
                if renew {
                    renewal
                } else {
                    global
                }
            }
        };
        let diff = now_ms - self.last_ms;
        if diff > self.fill_time_ms {
            let refill = diff * self.fill_count / self.fill_time_ms;
            self.tokens = (self.tokens + refill).min(self.max);
            self.last_ms = now_ms;
        }
        let (deficit, max) = (self.max - self.tokens, self.max);
        if let Some(b) = self.blue.as_mut() {
            let threshold = (max as f64 * b.decrease_point).round() as i64;
            if now_ms - b.last_freeze_ms > b.freeze_ms {
                if deficit == max && b.drop < 1.0 {
                    b.drop = (b.drop + b.increase).min(1.0);
                } else if deficit <= threshold && b.drop > 0.0 {
                    b.drop = (b.drop - b.decrease).max(0.0);
                }
                b.last_freeze_ms = now_ms;
            }
            if draw < b.drop {
                return false;
            }
        }
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
    }

    /// BLUE's drop probability (`connection_drop_probability`).
    pub(crate) fn drop_probability(&self) -> f64 {
        self.blue.as_ref().map_or(0.0, |b| b.drop)
    }

    /// Tokens missing from a full bucket (`connection_token_deficit`).
    pub(crate) fn deficit(&self) -> i64 {
        self.max - self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(
        max: i64,
        fill_time_ms: i64,
        fill_count: i64,
        weights: Option<(i64, i64)>,
    ) -> ConnThrottle {
        ConnThrottle::new(
            ConnThrottleSettings {
                max_tokens: max,
                fill_time_ms,
                fill_count,
                weights,
                blue: None,
            },
            0,
        )
    }

    #[test]
    fn blue_raises_the_drop_chance_while_the_bucket_is_empty_and_lowers_it_after() {
        let mut b = ConnThrottle::new(
            ConnThrottleSettings {
                max_tokens: 2,
                fill_time_ms: 1000,
                fill_count: 2,
                weights: None,
                blue: Some((100, 0.5, 0.25, 0.0)),
            },
            0,
        );
        // A draw of 0.99 is never dropped unless the chance is 1.
        assert!(b.admit(false, 0, 0.99));
        assert!(b.admit(false, 0, 0.99));
        assert!(!b.admit(false, 50, 0.99), "no tokens");
        assert_eq!(b.drop_probability(), 0.0, "within the freeze time");
        // Past the freeze time with the bucket empty: the chance rises.
        assert!(!b.admit(false, 101, 0.99));
        assert_eq!(b.drop_probability(), 0.5);
        assert!(!b.admit(false, 202, 0.99));
        assert_eq!(b.drop_probability(), 1.0);
        // Refilled (deficit 0 <= the threshold): the chance falls; the draw decides.
        assert!(!b.admit(false, 1500, 0.7));
        assert_eq!(b.drop_probability(), 0.75);
        assert!(b.admit(false, 1500, 0.8), "0.8 >= 0.75: admitted");
    }

    #[test]
    fn takes_a_token_per_connect_and_refills_over_time() {
        let mut b = bucket(2, 1000, 1, None);
        assert!(b.admit(false, 0, 0.0));
        assert!(b.admit(true, 0, 0.0));
        assert_eq!(b.deficit(), 2);
        assert!(!b.admit(false, 10, 0.0));
        // More than one fill time later: one token back.
        assert!(b.admit(false, 1001, 0.0));
        assert!(!b.admit(false, 1002, 0.0));
    }

    #[test]
    fn weights_scale_the_bucket_and_charge_new_sessions_more() {
        // 2 sessions' worth: 6 tokens; a new session takes 3, a renewal 2.
        let mut b = bucket(2, 1000, 1, Some((3, 2)));
        assert!(b.admit(false, 0, 0.0));
        assert!(b.admit(true, 0, 0.0));
        assert!(!b.admit(true, 0, 0.0), "one token left");
        assert_eq!(b.deficit(), 5);
    }

    #[test]
    fn zero_tokens_is_no_throttle() {
        let mut b = bucket(0, 1, 1, None);
        assert!((0..1000).all(|_| b.admit(false, 0, 0.0)));
        assert_eq!(b.deficit(), 0);
    }
}
