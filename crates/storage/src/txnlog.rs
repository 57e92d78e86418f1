//! The txn log file format (`log.<first zxid hex>`, reference §6.2), byte by byte:
//!
//! ```text
//! header  i32 magic 0x5A4B4C47 "ZKLG" | i32 version 2 | i64 dbid 0           (16 bytes)
//! entry   i64 adler32(txn) | i32 txn length | txn bytes (§5.1) | u8 0x42 'B'
//! ...     zero padding up to the preallocated size
//! ```
//!
//! Pure: encodes entries into buffers and walks a file's bytes. Deciding what to do with a bad
//! entry (cut a torn tail, or refuse to start) is the caller's, with the facts given here.

use corral_proto::txn::Txn;

pub const MAGIC: i32 = 0x5A4B_4C47;
pub const VERSION: i32 = 2;
pub const HEADER_LEN: usize = 16;
/// End-of-record marker after each entry.
pub const EOR: u8 = 0x42;
/// Per-entry framing: checksum, length, EOR.
pub const ENTRY_OVERHEAD: usize = 8 + 4 + 1;

pub fn file_header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    h[4..8].copy_from_slice(&VERSION.to_be_bytes());
    h
}

pub fn adler32(bytes: &[u8]) -> u32 {
    let mut a = adler::Adler32::new();
    a.write_slice(bytes);
    a.checksum()
}

/// Append one framed entry for the serialized txn `txn` to `out`.
pub fn encode_entry(txn: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(adler32(txn) as i64).to_be_bytes());
    out.extend_from_slice(&(txn.len() as i32).to_be_bytes());
    out.extend_from_slice(txn);
    out.push(EOR);
}

/// One valid entry found in a file.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Offset of the entry's checksum field in the file.
    pub offset: usize,
    pub txn: &'a [u8],
}

/// How a walk through a log file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// End of file, or zero padding from `offset` to the end: a normal end.
    Clean { offset: usize },
    /// A bad entry at `offset` with nothing but zeros after the bytes it claims: what a write
    /// cut short by a crash leaves. Safe to cut back to `offset` in the newest log.
    Torn { offset: usize, reason: String },
    /// A bad entry at `offset` followed by other data: real corruption.
    Corrupt { offset: usize, reason: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("file is shorter than the 16-byte header")]
    Short,
    #[error("bad magic 0x{0:08x} (expected 0x5a4b4c47 \"ZKLG\")")]
    Magic(i32),
    #[error("unsupported log version {0}")]
    Version(i32),
}

pub fn check_header(bytes: &[u8]) -> Result<(), HeaderError> {
    if bytes.len() < HEADER_LEN {
        return Err(HeaderError::Short);
    }
    let magic = i32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if magic != MAGIC {
        return Err(HeaderError::Magic(magic));
    }
    let version = i32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(HeaderError::Version(version));
    }
    Ok(())
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Walk the entries of a whole log file (header included). `max_txn_len` is jute.maxbuffer.
pub fn walk(bytes: &[u8], max_txn_len: usize) -> (Vec<Entry<'_>>, End) {
    let mut entries = Vec::new();
    let mut off = HEADER_LEN.min(bytes.len());
    loop {
        let rest = &bytes[off..];
        if rest.is_empty() || all_zero(rest) {
            return (entries, End::Clean { offset: off });
        }
        let bad = |reason: String, claimed_end: usize| {
            // A torn write leaves a prefix of the entry and zeros. A damaged length field can
            // also point into the zeros, over entries that are fine: those make it corruption.
            let torn = claimed_end >= bytes.len() || all_zero(&bytes[claimed_end..]);
            if torn && valid_entry_after(bytes, off, max_txn_len).is_none() {
                End::Torn {
                    offset: off,
                    reason,
                }
            } else {
                End::Corrupt {
                    offset: off,
                    reason,
                }
            }
        };
        if rest.len() < 12 {
            return (entries, bad("entry header cut short".into(), bytes.len()));
        }
        let sum = i64::from_be_bytes(rest[0..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        if len <= 0 || len as usize > max_txn_len {
            let end = off + 12;
            return (entries, bad(format!("invalid txn length {len}"), end));
        }
        let len = len as usize;
        let claimed_end = off + ENTRY_OVERHEAD + len;
        if rest.len() < ENTRY_OVERHEAD + len {
            return (
                entries,
                bad(
                    format!("entry of {len} bytes runs past the end of the file"),
                    claimed_end,
                ),
            );
        }
        let txn = &rest[12..12 + len];
        let actual = adler32(txn) as i64;
        if actual != sum {
            return (
                entries,
                bad(
                    format!("checksum mismatch: stored 0x{sum:x}, computed 0x{actual:x}"),
                    claimed_end,
                ),
            );
        }
        if rest[12 + len] != EOR {
            return (
                entries,
                bad(
                    format!("end-of-record byte is 0x{:02x}, not 0x42", rest[12 + len]),
                    claimed_end,
                ),
            );
        }
        entries.push(Entry { offset: off, txn });
        off = claimed_end;
    }
}

/// The offset of the first complete, checksummed entry that starts after `from`, if any.
/// Only used on a bad entry, to tell a torn tail (nothing valid after it) from corruption.
fn valid_entry_after(bytes: &[u8], from: usize, max_txn_len: usize) -> Option<usize> {
    // An entry ends with the non-zero EOR byte, so none starts after the last non-zero byte.
    let last = bytes.iter().rposition(|&b| b != 0)?;
    let stop = (last + 1).saturating_sub(ENTRY_OVERHEAD);
    (from + 1..=stop).find(|&o| {
        // The checksum is an Adler-32 zero-extended to 64 bits: its first 4 bytes are zero.
        if bytes[o..o + 4] != [0, 0, 0, 0] {
            return false;
        }
        let len = i32::from_be_bytes(bytes[o + 8..o + 12].try_into().expect("4 bytes"));
        if len <= 0 || len as usize > max_txn_len || o + ENTRY_OVERHEAD + len as usize > last + 1 {
            return false;
        }
        let end = o + ENTRY_OVERHEAD + len as usize;
        let sum = u32::from_be_bytes(bytes[o + 4..o + 8].try_into().expect("4 bytes"));
        bytes[end - 1] == EOR && adler32(&bytes[o + 12..end - 1]) == sum
    })
}

/// Decode an entry's txn; the zxid is in its header.
pub fn decode(entry: &Entry<'_>) -> Result<Txn, corral_proto::DecodeError> {
    Txn::from_bytes(entry.txn)
}

/// File name of a log whose first txn is `zxid`.
pub fn file_name(zxid: i64) -> String {
    format!("log.{zxid:x}")
}

/// The zxid in a `log.<hex>` name.
pub fn parse_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix("log.")?;
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// Size to extend a preallocated file to so that `position` plus 4 KiB fits (FilePadding).
pub fn padded_size(position: u64, current_size: u64, prealloc: u64) -> u64 {
    if prealloc == 0 || position + 4096 < current_size {
        return current_size;
    }
    if position > current_size {
        let s = position + prealloc;
        s - s % prealloc
    } else {
        current_size + prealloc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[&[u8]]) -> Vec<u8> {
        let mut f = file_header().to_vec();
        for e in entries {
            encode_entry(e, &mut f);
        }
        f
    }

    // The verified fresh-log header (reference §7).
    #[test]
    fn header_bytes() {
        let hex: String = file_header().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5a4b4c47000000020000000000000000");
    }

    // Entries followed by zero padding end cleanly.
    #[test]
    fn clean_walk_with_padding() {
        let mut f = file(&[b"abc", b"defg"]);
        let data_end = f.len();
        f.resize(f.len() + 1000, 0);
        let (e, end) = walk(&f, 1 << 20);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].txn, b"defg");
        assert_eq!(end, End::Clean { offset: data_end });
    }

    // A last entry cut short by a crash (a prefix, then zeros) is a torn tail, at any cut.
    #[test]
    fn every_truncation_of_the_last_entry_is_torn() {
        let full = file(&[b"first entry", b"second entry here"]);
        let second = HEADER_LEN + ENTRY_OVERHEAD + 11;
        for cut in second + 1..full.len() {
            let mut f = full[..cut].to_vec();
            f.resize(full.len() + 64, 0);
            let (e, end) = walk(&f, 1 << 20);
            assert_eq!(e.len(), 1, "cut {cut}");
            if full[second..cut].iter().all(|&b| b == 0) {
                // Only leading zero bytes of the checksum made it: indistinguishable from padding.
                assert_eq!(end, End::Clean { offset: second }, "cut {cut}");
            } else {
                assert!(
                    matches!(end, End::Torn { offset, .. } if offset == second),
                    "cut {cut}: {end:?}"
                );
            }
        }
    }

    // A damaged entry with valid data after it is corruption, not a torn tail.
    #[test]
    fn corruption_in_the_middle_is_reported() {
        let mut f = file(&[b"first entry", b"second entry", b"third entry"]);
        let second = HEADER_LEN + ENTRY_OVERHEAD + 11;
        f[second + 14] ^= 0xff;
        let (e, end) = walk(&f, 1 << 20);
        assert_eq!(e.len(), 1);
        assert!(
            matches!(end, End::Corrupt { offset, .. } if offset == second),
            "{end:?}"
        );
    }

    // Regression: a damaged length field that points past the data (into the preallocated
    // zeros or past the end of the file) looked like a torn last entry, so start-up cut the log
    // there and silently dropped the acknowledged entries after it (faults.rs seed 235 of
    // corruption_is_refused_with_file_and_offset). A valid entry after the bad one now makes it
    // corruption.
    #[test]
    fn a_damaged_length_is_corruption_not_a_torn_tail() {
        let good = file(&[b"first entry", b"second entry", b"third entry"]);
        let second = HEADER_LEN + ENTRY_OVERHEAD + 11;
        for (byte, padding) in [(9, 0), (9, 100_000), (10, 4096), (8, 0)] {
            let mut f = good.clone();
            f[second + byte] ^= 0x01;
            f.resize(f.len() + padding, 0);
            let (e, end) = walk(&f, 1 << 24);
            assert_eq!(e.len(), 1);
            assert!(
                matches!(end, End::Corrupt { offset, .. } if offset == second),
                "byte {byte}: {end:?}"
            );
        }
    }

    // Names carry the first zxid in lowercase hex without padding.
    #[test]
    fn names() {
        assert_eq!(file_name(0x100000001), "log.100000001");
        assert_eq!(parse_name("log.1a"), Some(0x1a));
        assert_eq!(parse_name("snapshot.1"), None);
    }

    // A fresh log is extended to header + 64 MiB right after the header is written.
    #[test]
    fn preallocation() {
        let mb64 = 64 << 20;
        assert_eq!(padded_size(16, 16, mb64), mb64 + 16);
        assert_eq!(padded_size(100, mb64, mb64), mb64);
        assert_eq!(padded_size(mb64 - 100, mb64, mb64), 2 * mb64);
        assert_eq!(padded_size(3 * mb64 + 5, mb64, mb64), 4 * mb64);
    }
}
