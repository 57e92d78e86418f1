//! Jute binary encoding (ZooKeeper's `BinaryInputArchive`/`BinaryOutputArchive`).
//!
//! Owns the primitive encodings only: big-endian integers, booleans, length-prefixed buffers and
//! strings (length -1 = null), and vectors. Records are plain concatenations of their fields with
//! no header or tag, so a record type is just a `Jute` impl that reads and writes its fields in
//! IDL order (see the `record!` macro). This module does no I/O: it works over byte slices.

use crate::error::DecodeError;

/// Default `jute.maxbuffer`: the largest frame and the largest single buffer a peer may send.
pub const JUTE_MAX_BUFFER_DEFAULT: usize = 0xfffff;

/// A cursor over a byte slice that decodes jute primitives.
///
/// `max_len` bounds every buffer/string length read, as ZooKeeper's reader does
/// (`jute.maxbuffer + zookeeper.jute.maxbuffer.extrasize`); vector counts are bounded by the
/// bytes that remain, so a hostile count cannot make us allocate more than the frame holds.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    max_len: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            max_len: 2 * JUTE_MAX_BUFFER_DEFAULT,
        }
    }

    pub fn with_max_len(buf: &'a [u8], max_len: usize) -> Self {
        Reader {
            buf,
            pos: 0,
            max_len,
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not read yet (without consuming them).
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEof {
                offset: self.pos,
                needed: n,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        // ZooKeeper's reader treats any non-zero byte as true.
        Ok(self.read_u8()? != 0)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn read_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let offset = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.max_len {
            return Err(DecodeError::BadLength {
                offset,
                len: len as i64,
            });
        }
        Ok(Some(len as usize))
    }

    /// A jute `buffer`; `None` is the null buffer (length -1).
    pub fn read_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// A jute `buffer` borrowed from the input (no copy); `None` is the null buffer.
    pub fn read_buffer_ref(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?)),
        }
    }

    /// A jute `ustring` borrowed from the input when it is valid UTF-8 (replaced as
    /// `read_ustring` does otherwise); `None` is the null string.
    pub fn read_ustring_ref(&mut self) -> Result<Option<std::borrow::Cow<'a, str>>, DecodeError> {
        Ok(self.read_buffer_ref()?.map(String::from_utf8_lossy))
    }

    /// A jute `ustring`; `None` is the null string. Malformed UTF-8 is replaced by U+FFFD, like
    /// Java's decoder.
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => {
                let bytes = self.take(n)?;
                Ok(Some(match std::str::from_utf8(bytes) {
                    Ok(s) => s.to_owned(),
                    Err(_) => String::from_utf8_lossy(bytes).into_owned(),
                }))
            }
        }
    }

    /// A vector count; `None` for a null vector. Each element needs at least one byte, so a count
    /// larger than the remaining bytes is rejected up front.
    pub fn read_count(&mut self) -> Result<Option<usize>, DecodeError> {
        let offset = self.pos;
        let n = self.read_i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as usize > self.remaining() {
            return Err(DecodeError::BadLength {
                offset,
                len: n as i64,
            });
        }
        Ok(Some(n as usize))
    }
}

/// Append jute primitives to a byte vector.
pub trait WriteJute {
    fn put_u8(&mut self, v: u8);
    fn put_bool(&mut self, v: bool);
    fn put_i32(&mut self, v: i32);
    fn put_i64(&mut self, v: i64);
    fn put_buffer(&mut self, v: Option<&[u8]>);
    fn put_ustring(&mut self, v: Option<&str>);
}

impl WriteJute for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_bool(&mut self, v: bool) {
        self.push(v as u8);
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(b.len() as i32);
                self.extend_from_slice(b);
            }
        }
    }
    fn put_ustring(&mut self, v: Option<&str>) {
        // Paths can never hold surrogates, so Java's CESU-8 quirk for supplementary characters
        // does not arise for anything we compare; plain UTF-8 is written.
        self.put_buffer(v.map(str::as_bytes));
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    fn write(&self, out: &mut Vec<u8>);
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(&mut v);
        v
    }

    /// Decode a whole slice; trailing bytes are allowed (ZooKeeper ignores them too).
    fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(b))
    }
}

impl Jute for i32 {
    fn write(&self, out: &mut Vec<u8>) {
        out.put_i32(*self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Jute for i64 {
    fn write(&self, out: &mut Vec<u8>) {
        out.put_i64(*self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Jute for bool {
    fn write(&self, out: &mut Vec<u8>) {
        out.put_bool(*self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// A non-null `ustring`. A null string on the wire decodes as empty: ZooKeeper itself would
/// fail on a null path, and every such path is then rejected by validation.
impl Jute for String {
    fn write(&self, out: &mut Vec<u8>) {
        out.put_ustring(Some(self))
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_ustring()?.unwrap_or_default())
    }
}

/// A nullable `buffer`.
impl Jute for Option<Vec<u8>> {
    fn write(&self, out: &mut Vec<u8>) {
        out.put_buffer(self.as_deref())
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
}

/// A `vector<T>`; a null vector decodes as empty and an empty one encodes as count 0.
impl<T: Jute> Jute for Vec<T> {
    fn write(&self, out: &mut Vec<u8>) {
        out.put_i32(self.len() as i32);
        for x in self {
            x.write(out);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.read_count()?.unwrap_or(0);
        // The count is only bounded by the remaining bytes, but an element in memory can be
        // far larger than its smallest encoding (an Acl is 56 bytes, encoded in as few as 12;
        // a count is only checked against one byte per element): pre-allocating `n` would let
        // a 1 MB frame with a hostile count reserve ~56 MB before the first element fails.
        let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
        for _ in 0..n {
            v.push(T::read(r)?);
        }
        Ok(v)
    }
}

/// The most vector elements reserved up front; longer vectors grow as they decode.
const MAX_PREALLOC: usize = 1024;

/// Declare a jute record: a struct whose fields are encoded in declaration order.
#[macro_export]
macro_rules! record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }

        impl $crate::jute::Jute for $name {
            fn write(&self, _out: &mut Vec<u8>) {
                $( $crate::jute::Jute::write(&self.$f, _out); )*
            }
            fn read(_r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::error::DecodeError> {
                Ok($name { $( $f: <$t as $crate::jute::Jute>::read(_r)? ),* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_buffers_differ() {
        let mut v = Vec::new();
        v.put_buffer(None);
        v.put_buffer(Some(b""));
        assert_eq!(v, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let mut r = Reader::new(&v);
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_buffer().unwrap(), Some(vec![]));
    }

    #[test]
    fn oversized_and_negative_lengths_are_errors() {
        let mut v = Vec::new();
        v.put_i32(2 * JUTE_MAX_BUFFER_DEFAULT as i32 + 1);
        assert!(matches!(
            Reader::new(&v).read_buffer(),
            Err(DecodeError::BadLength { .. })
        ));
        let v = (-2i32).to_be_bytes();
        assert!(matches!(
            Reader::new(&v).read_ustring(),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn vector_count_beyond_frame_is_rejected_without_allocating() {
        let v = i32::MAX.to_be_bytes();
        assert!(Vec::<i64>::from_bytes(&v).is_err());
    }

    #[test]
    fn any_nonzero_byte_is_true() {
        assert!(Reader::new(&[7]).read_bool().unwrap());
    }
}
