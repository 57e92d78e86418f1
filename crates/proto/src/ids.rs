//! Newtypes for the integers ZooKeeper's protocols pass side by side: a zxid, an epoch, a
//! server id (`sid`, `myid`) and a session id. All four are `long` on the wire and in Java, and
//! a notification or a vote carries several of them in a row, where a swapped argument still
//! compiles when they are bare `i64`s. Each type here is the bare value (`.0` is public) with
//! no invariant of its own: it marks what the number means, it does not check it.
//!
//! This module owns the zxid's split into epoch and counter (`ZxidUtils`) and how each id
//! prints. It does not read or write bytes: codecs put and take the `.0` as before, so the
//! encoding is unchanged.

use std::fmt;

/// A ZooKeeper transaction id: the epoch in the high 32 bits, a counter in the low 32.
///
/// -1 means "no zxid" (an empty or untrusted log); its epoch is -1, as Java's arithmetic shift
/// gives. Prints in hex with a `0x` prefix (`Display`), as ZooKeeper logs zxids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub i64);

/// A ZAB epoch: the leader generation that a zxid's high half names (`acceptedEpoch`,
/// `currentEpoch`, a vote's `peerEpoch`). Not Fast Leader Election's logical clock, which
/// counts election rounds and is a different number. Prints in decimal, as the epoch files
/// hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub i64);

/// A server's id in the ensemble (`myid`, the `N` of `server.N`). Prints in decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServerId(pub i64);

/// A client session's id. Prints in hex with a `0x` prefix, as ZooKeeper logs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionId(pub i64);

impl Zxid {
    /// `epoch << 32 | counter`, with the counter cut to its low 32 bits as
    /// `ZxidUtils.makeZxid` does (so a counter of -1 gives `0x…ffff_ffff`).
    pub fn new(epoch: Epoch, counter: i64) -> Zxid {
        Zxid((epoch.0 << 32) | (counter & 0xffff_ffff))
    }

    /// The high 32 bits, shifted arithmetically like `ZxidUtils.getEpochFromZxid`, so the
    /// "no zxid" value -1 has epoch -1.
    pub fn epoch(self) -> Epoch {
        Epoch(self.0 >> 32)
    }

    /// The low 32 bits, always in `0..=0xffff_ffff`.
    pub fn counter(self) -> i64 {
        self.0 & 0xffff_ffff
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::LowerHex for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::LowerHex for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::LowerHex for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ZxidUtils` splits a zxid at bit 32 and composes it back; checked on an ordinary zxid,
    /// on the first zxid of an epoch, and at the 32-bit counter's edge.
    #[test]
    fn zxid_splits_and_composes() {
        let z = Zxid::new(Epoch(1), 3);
        assert_eq!(z, Zxid(0x1_0000_0003));
        assert_eq!(z.epoch(), Epoch(1));
        assert_eq!(z.counter(), 3);
        assert_eq!(Zxid::new(Epoch(5), 0), Zxid(0x5_0000_0000));
        assert_eq!(Zxid(0x5_0000_0000).counter(), 0);
        let top = Zxid::new(Epoch(7), 0xffff_ffff);
        assert_eq!((top.epoch(), top.counter()), (Epoch(7), 0xffff_ffff));
        for (epoch, counter) in [
            (0, 0),
            (1, 1),
            (0x7fff_ffff, 0xffff_ffff),
            (42, 0x8000_0000),
        ] {
            let z = Zxid::new(Epoch(epoch), counter);
            assert_eq!((z.epoch(), z.counter()), (Epoch(epoch), counter), "{z}");
        }
    }

    /// -1 ("no zxid") keeps epoch -1 because the shift is arithmetic, and its counter is the
    /// full low half; composing epoch -1 with that counter gives -1 back.
    #[test]
    fn zxid_minus_one_has_epoch_minus_one() {
        assert_eq!(Zxid(-1).epoch(), Epoch(-1));
        assert_eq!(Zxid(-1).counter(), 0xffff_ffff);
        assert_eq!(Zxid::new(Epoch(-1), 0xffff_ffff), Zxid(-1));
    }

    /// `ZxidUtils.makeZxid` keeps only the low 32 bits of the counter: a negative or oversized
    /// counter cannot leak into the epoch half.
    #[test]
    fn zxid_counter_is_truncated_to_32_bits() {
        assert_eq!(Zxid::new(Epoch(2), -1), Zxid(0x2_ffff_ffff));
        assert_eq!(Zxid::new(Epoch(2), 0x1_0000_0005), Zxid(0x2_0000_0005));
        assert_eq!(Zxid::new(Epoch(2), 0x1_0000_0005).epoch(), Epoch(2));
        assert_eq!(Zxid::new(Epoch(0), i64::MIN), Zxid(0));
    }

    /// Zxids and session ids print as ZooKeeper logs them, `0x` and lower-case hex (-1 as its
    /// two's complement, like `Long.toHexString`); `{:x}`/`{:#x}` format the bare value, so a
    /// format string written for the `i64` prints the same. Epochs and sids print in decimal.
    #[test]
    fn ids_print_as_before() {
        assert_eq!(Zxid(0x1_0000_0003).to_string(), "0x100000003");
        assert_eq!(Zxid(0).to_string(), "0x0");
        assert_eq!(Zxid(-1).to_string(), "0xffffffffffffffff");
        assert_eq!(format!("{:x}", Zxid(0x2_0000_000a)), "20000000a");
        assert_eq!(format!("{:#x}", Zxid(0x2_0000_000a)), "0x20000000a");
        assert_eq!(format!("0x{:x}", Zxid(-1)), format!("0x{:x}", -1i64));
        assert_eq!(SessionId(0x1000_0abc_0000).to_string(), "0x10000abc0000");
        assert_eq!(format!("{:x}", SessionId(255)), "ff");
        assert_eq!(Epoch(12).to_string(), "12");
        assert_eq!(Epoch(-1).to_string(), "-1");
        assert_eq!(format!("{:#x}", Epoch(12)), "0xc");
        assert_eq!(ServerId(3).to_string(), "3");
    }

    /// The derived order is the order of the bare values: zxids compare as ZooKeeper compares
    /// `long`s, so -1 sorts below every real zxid.
    #[test]
    fn order_is_the_numeric_order() {
        assert!(Zxid(-1) < Zxid(0));
        assert!(Zxid::new(Epoch(1), 0xffff_ffff) < Zxid::new(Epoch(2), 0));
        assert!(Epoch(-1) < Epoch(0));
        assert!(ServerId(i64::MIN) < ServerId(1));
        assert_eq!(Zxid::default(), Zxid(0));
    }
}
