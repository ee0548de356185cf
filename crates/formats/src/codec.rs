//! TLS-style (RFC 8446 §3) big-endian integers and length-prefixed vectors:
//! a bounds-checked reader for untrusted input and matching writers, plus
//! canonical decimal parsing for text formats.

use crate::{FormatError, Hash};

/// Reads fields off the front of a byte slice; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    /// Names the structure being read, for error messages.
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.buf.len() < n {
            return Err(FormatError::Truncated(self.what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Reads an unsigned big-endian integer of `n` (at most 8) bytes.
    pub(crate) fn uint(&mut self, n: usize) -> Result<u64, FormatError> {
        debug_assert!(n <= 8);
        let bytes = self.take(n)?;
        Ok(bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b)))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, FormatError> {
        // Two bytes always fit in a u16.
        Ok(self.uint(2)? as u16)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FormatError> {
        self.uint(8)
    }

    pub(crate) fn hash(&mut self) -> Result<Hash, FormatError> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    /// Reads a vector preceded by a `len_bytes`-byte length.
    pub(crate) fn prefixed(&mut self, len_bytes: usize) -> Result<&'a [u8], FormatError> {
        let len = self.uint(len_bytes)?;
        let len = usize::try_from(len).map_err(|_| FormatError::Truncated(self.what))?;
        self.take(len)
    }

    /// Succeeds only if the whole input has been consumed.
    pub(crate) fn finish(self) -> Result<(), FormatError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FormatError::TrailingBytes(self.what))
        }
    }
}

/// Appends `bytes` with a `len_bytes`-byte big-endian length prefix.
///
/// Panics if `bytes` does not fit the prefix: callers bound every field
/// (certificates by the request size limit), so an oversized field is a bug,
/// and writing a wrapped length would corrupt the log forever.
pub(crate) fn put_prefixed(out: &mut Vec<u8>, len_bytes: usize, bytes: &[u8]) {
    let len = bytes.len() as u64;
    assert!(
        len < 1u64 << (8 * len_bytes),
        "field of {len} bytes does not fit a {len_bytes}-byte length prefix"
    );
    out.extend_from_slice(&len.to_be_bytes()[8 - len_bytes..]);
    out.extend_from_slice(bytes);
}

/// Parses a decimal without sign or leading zeros ("0" itself is fine).
pub(crate) fn parse_canonical(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}
