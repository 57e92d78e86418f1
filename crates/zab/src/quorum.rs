//! The majority quorum verifier used by Fast Leader Election (ZooKeeper's `flexible/QuorumMaj`
//! together with the ack filtering of `SyncedLearnerTracker.addAck`). It owns the set of voting
//! sids and answers "is this set of sids a quorum?". It knows nothing about observers,
//! hierarchical weights or pending reconfigurations.

use std::borrow::Borrow;
use std::collections::BTreeSet;

use corral_proto::ServerId;

/// A strict majority of the voting members. ZooKeeper computes `half = voters / 2` and accepts
/// an ack set when `size > half`; acks from sids that are not voters are never counted
/// (`SyncedLearnerTracker.addAck` only adds voting members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMaj {
    voters: BTreeSet<ServerId>,
    half: usize,
}

impl QuorumMaj {
    /// Builds the verifier over the voting members; duplicate sids count once.
    pub fn new<I, S>(voters: I) -> QuorumMaj
    where
        I: IntoIterator<Item = S>,
        S: Borrow<ServerId>,
    {
        let voters: BTreeSet<ServerId> = voters.into_iter().map(|s| *s.borrow()).collect();
        let half = voters.len() / 2;
        QuorumMaj { voters, half }
    }

    /// True if `sid` is a voting member (`validVoter` in FastLeaderElection).
    pub fn is_voter(&self, sid: ServerId) -> bool {
        self.voters.contains(&sid)
    }

    /// The voting members in ascending sid order.
    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().copied()
    }

    /// `voters / 2`: a quorum needs strictly more acks than this.
    pub fn half(&self) -> usize {
        self.half
    }

    /// True if more than half of the voters are in `acks`. Non-voters and duplicates in `acks`
    /// are ignored.
    pub fn contains_quorum<I, S>(&self, acks: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: Borrow<ServerId>,
    {
        let counted: BTreeSet<ServerId> = acks
            .into_iter()
            .map(|s| *s.borrow())
            .filter(|sid| self.is_voter(*sid))
            .collect();
        counted.len() > self.half
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn sids<const N: usize>(ids: [i64; N]) -> [ServerId; N] {
        ids.map(ServerId)
    }

    /// Pins QuorumMaj's `size > voters / 2` rule for odd and even ensembles.
    #[test]
    fn majority_of_odd_and_even_ensembles() {
        let three = QuorumMaj::new(sids([1, 2, 3]));
        assert!(!three.contains_quorum(sids([1])));
        assert!(three.contains_quorum(sids([1, 3])));
        let four = QuorumMaj::new(sids([1, 2, 3, 4]).to_vec());
        assert!(!four.contains_quorum(sids([1, 2])));
        assert!(four.contains_quorum(HashSet::from(sids([1, 2, 4])).iter()));
        let one = QuorumMaj::new(sids([7]));
        assert!(one.contains_quorum(sids([7])));
        assert!(!one.contains_quorum(Vec::<ServerId>::new()));
    }

    /// An observer's or stranger's ack never helps, as in `SyncedLearnerTracker.addAck`, and a
    /// repeated sid counts once.
    #[test]
    fn non_voters_and_duplicates_do_not_count() {
        let q = QuorumMaj::new(sids([1, 2, 3]).iter());
        assert!(!q.contains_quorum(sids([1, 9, 10])));
        assert!(!q.contains_quorum(sids([2, 2, 2])));
        assert!(q.is_voter(ServerId(2)));
        assert!(!q.is_voter(ServerId(9)));
        assert_eq!(q.voters().collect::<Vec<_>>(), sids([1, 2, 3]));
        assert_eq!(q.half(), 1);
    }
}
