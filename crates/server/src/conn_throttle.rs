//! ZooKeeper's connection throttle (`connectionMaxTokens`, `connectionTokenFillTime`,
//! `connectionTokenFillCount`, `zookeeper.connection_throttle_weight_enabled` and its
//! weights): a token bucket each connect request draws from (one token, or with weights a new
//! session's or a renewal's weight), refilled by `fill_count` per `fill_time` ms. A pure
//! value: the node task asks it with the time. (ZooKeeper's randomized BLUE dropping,
//! `connectionFreezeTime` and the drop rates, is not here: those settings are refused.)

/// The bucket.
#[derive(Debug, Clone)]
pub(crate) struct ConnThrottle {
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
}

impl ConnThrottle {
    pub(crate) fn new(s: ConnThrottleSettings, now_ms: i64) -> ConnThrottle {
        let scale = s.weights.map_or(1, |(global, _)| global);
        let max = s.max_tokens.max(0) * scale;
        ConnThrottle {
            max,
            tokens: max,
            fill_time_ms: s.fill_time_ms.max(1),
            fill_count: s.fill_count * scale,
            last_ms: now_ms,
            weights: s.weights,
        }
    }

    /// Whether a connect request may go on (`renew`: it names an existing session); takes
    /// its tokens if so.
    pub(crate) fn admit(&mut self, renew: bool, now_ms: i64) -> bool {
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
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
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
            },
            0,
        )
    }

    #[test]
    fn takes_a_token_per_connect_and_refills_over_time() {
        let mut b = bucket(2, 1000, 1, None);
        assert!(b.admit(false, 0));
        assert!(b.admit(true, 0));
        assert_eq!(b.deficit(), 2);
        assert!(!b.admit(false, 10));
        // More than one fill time later: one token back.
        assert!(b.admit(false, 1001));
        assert!(!b.admit(false, 1002));
    }

    #[test]
    fn weights_scale_the_bucket_and_charge_new_sessions_more() {
        // 2 sessions' worth: 6 tokens; a new session takes 3, a renewal 2.
        let mut b = bucket(2, 1000, 1, Some((3, 2)));
        assert!(b.admit(false, 0));
        assert!(b.admit(true, 0));
        assert!(!b.admit(true, 0), "one token left");
        assert_eq!(b.deficit(), 5);
    }

    #[test]
    fn zero_tokens_is_no_throttle() {
        let mut b = bucket(0, 1, 1, None);
        assert!((0..1000).all(|_| b.admit(false, 0)));
        assert_eq!(b.deficit(), 0);
    }
}
