//! A minimal DER TLV reader and writer: just enough to walk a
//! TBSCertificate and re-encode it with one extension removed.
//!
//! Only single-byte tags are supported (X.509 never needs more), and
//! lengths of up to four bytes; indefinite lengths are refused. Writing
//! always produces minimal (DER) lengths.

use thiserror::Error;

/// One decoded element: its tag byte, its contents, and the whole
/// encoding (header plus contents) as it appeared in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Why a DER element could not be read.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub(crate) enum DerError {
    #[error("DER element is truncated")]
    Truncated,
    #[error("DER element uses a multi-byte tag")]
    HighTagNumber,
    #[error("DER element has an indefinite or oversized length")]
    BadLength,
    #[error("expected DER tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("trailing bytes after a DER element")]
    TrailingBytes,
}

/// Reads one element from the front of `input`, returning it and the rest.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, after_tag) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTagNumber);
    }
    let (len, after_len) = read_length(after_tag)?;
    if after_len.len() < len {
        return Err(DerError::Truncated);
    }
    let header_len = input.len() - after_len.len();
    let (content, rest) = after_len.split_at(len);
    let raw = &input[..header_len + len];
    Ok((Tlv { tag, content, raw }, rest))
}

/// Reads exactly one element with the given tag; nothing may follow it.
pub(crate) fn read_only(input: &[u8], expected: u8) -> Result<Tlv<'_>, DerError> {
    let (tlv, rest) = read_tlv(input)?;
    if tlv.tag != expected {
        return Err(DerError::UnexpectedTag {
            expected,
            found: tlv.tag,
        });
    }
    if !rest.is_empty() {
        return Err(DerError::TrailingBytes);
    }
    Ok(tlv)
}

/// Iterates over the elements concatenated in `input` (a constructed
/// element's contents). Stops after the first error.
pub(crate) fn children(input: &[u8]) -> Children<'_> {
    Children { rest: input }
}

pub(crate) struct Children<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Tlv<'a>, DerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match read_tlv(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Appends `tag`, the minimal length of `content`, and `content` to `out`.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    write_length(out, content.len());
    out.extend_from_slice(content);
}

/// Decodes a short- or long-form length (long form up to four bytes).
fn read_length(input: &[u8]) -> Result<(usize, &[u8]), DerError> {
    let (&first, rest) = input.split_first().ok_or(DerError::Truncated)?;
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 {
        return Err(DerError::BadLength);
    }
    if rest.len() < count {
        return Err(DerError::Truncated);
    }
    let (bytes, rest) = rest.split_at(count);
    let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let len = usize::try_from(len).map_err(|_| DerError::BadLength)?;
    Ok((len, rest))
}

fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Fits in the short form; the cast cannot truncate.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = &bytes[skip..];
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_tlv(&mut out, tag, content);
        out
    }

    #[test]
    fn lengths_use_minimal_forms() {
        assert_eq!(encode(0x04, &[7; 3])[..2], [0x04, 0x03]);
        assert_eq!(encode(0x04, &[0; 0x7f])[..2], [0x04, 0x7f]);
        assert_eq!(encode(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(encode(0x04, &[0; 0xff])[..3], [0x04, 0x81, 0xff]);
        assert_eq!(encode(0x04, &[0; 0x100])[..4], [0x04, 0x82, 0x01, 0x00]);
        assert_eq!(
            encode(0x04, &[0; 0x10000])[..5],
            [0x04, 0x83, 0x01, 0x00, 0x00]
        );
    }

    #[test]
    fn round_trips_long_form() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let content = vec![0xab; len];
            let encoded = encode(0x30, &content);
            let (tlv, rest) = read_tlv(&encoded).unwrap();
            assert!(rest.is_empty());
            assert_eq!(tlv.tag, 0x30);
            assert_eq!(tlv.content, &content[..]);
            assert_eq!(tlv.raw, &encoded[..]);
        }
    }

    #[test]
    fn accepts_non_minimal_lengths_when_reading() {
        let (tlv, _) = read_tlv(&[0x04, 0x82, 0x00, 0x01, 0xaa]).unwrap();
        assert_eq!(tlv.content, [0xaa]);
    }

    #[test]
    fn refuses_malformed_input() {
        assert_eq!(read_tlv(&[]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x30]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x30, 0x02, 0x00]), Err(DerError::Truncated));
        assert_eq!(
            read_tlv(&[0x30, 0x80, 0x00, 0x00]),
            Err(DerError::BadLength)
        );
        assert_eq!(
            read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(DerError::BadLength)
        );
        assert_eq!(read_tlv(&[0x30, 0x82, 0x01]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x1f, 0x01, 0x00]), Err(DerError::HighTagNumber));
        assert_eq!(
            read_tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(DerError::Truncated)
        );
    }

    #[test]
    fn read_only_checks_tag_and_trailing_bytes() {
        assert!(read_only(&[0x05, 0x00], 0x05).is_ok());
        assert_eq!(
            read_only(&[0x05, 0x00], 0x30),
            Err(DerError::UnexpectedTag {
                expected: 0x30,
                found: 0x05
            })
        );
        assert_eq!(
            read_only(&[0x05, 0x00, 0x00], 0x05),
            Err(DerError::TrailingBytes)
        );
    }

    #[test]
    fn children_walks_and_stops_on_error() {
        let items: Vec<_> = children(&[0x02, 0x01, 0x05, 0x05, 0x00]).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].unwrap().content, [0x05]);
        assert_eq!(items[1].unwrap().tag, 0x05);
        let items: Vec<_> = children(&[0x02, 0x05, 0x00, 0x05, 0x00]).collect();
        assert_eq!(items, vec![Err(DerError::Truncated)]);
    }
}
