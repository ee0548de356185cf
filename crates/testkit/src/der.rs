//! Hand-made DER for tests that build or pick apart certificates byte by
//! byte, independently of the crates under test (whose own DER code they
//! check). No error handling: test inputs are well-formed by construction.
//! (`fuzz/` keeps a copy of `tlv`: it is a standalone crate that does not
//! pull in this one's dependencies.)

/// One DER element with a minimal length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// (header length, content length) of the DER element at the start of `der`.
pub fn header(der: &[u8]) -> (usize, usize) {
    let first = der[1];
    if first < 0x80 {
        return (2, usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    let len = der[2..2 + n]
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    (2 + n, len)
}

/// The contents of the DER element at the start of `der`.
pub fn content_of(der: &[u8]) -> &[u8] {
    let (h, len) = header(der);
    &der[h..h + len]
}

/// The whole elements concatenated in `content`.
pub fn children(mut content: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (h, len) = header(content);
        out.push(content[..h + len].to_vec());
        content = &content[h + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip_with_short_and_long_lengths() {
        for len in [0, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let der = tlv(0x04, &content);
            assert_eq!(content_of(&der), &content[..], "length {len}");
            let two = [der.clone(), tlv(0x05, &[])].concat();
            assert_eq!(children(&two), vec![der, vec![0x05, 0x00]]);
        }
        assert_eq!(tlv(0x30, &[0; 200])[..3], [0x30, 0x81, 200]);
    }
}
