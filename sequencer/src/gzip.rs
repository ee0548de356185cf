//! gzip of data tiles: libdeflate, whole tile at once, with one compressor
//! per thread reused for every tile.
//!
//! Compression is most of the sequencer's CPU. A tile is compressed from
//! one buffer into another, which is the case libdeflate is built for: at
//! the same level of compression it takes 15-20% less CPU than zlib-rs
//! streaming (BENCHMARKS.md, "gzip of data tiles"). A fresh compressor per
//! tile would allocate its hash tables and free them again, and the
//! allocator hands that memory back to the kernel in between, so every
//! tile would pay for page faults and page zeroing; one per thread keeps it.

use std::cell::RefCell;

use libdeflater::{CompressionLvl, Compressor};

/// The compression level of data tiles. On the bench's entries libdeflate
/// level 5 makes tiles as small as zlib-rs level 4 did (21.3% of the raw
/// size) in 2.7 µs per entry instead of 3.2-3.4. Level 1 would take 1.7 µs
/// but make every tile, served to every monitor for ever, 2.3% larger.
const LEVEL: i32 = 5;

thread_local! {
    /// The compressor and a scratch buffer as large as the largest tile's
    /// bound so far; the tile is then copied out at its compressed size.
    static COMPRESSOR: RefCell<(Compressor, Vec<u8>)> = RefCell::new((
        Compressor::new(CompressionLvl::new(LEVEL).expect("a level libdeflate supports")),
        Vec::new(),
    ));
}

/// `data` as one gzip member.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|(compressor, scratch)| {
        let bound = compressor.gzip_compress_bound(data.len());
        if scratch.len() < bound {
            scratch.resize(bound, 0);
        }
        let written = compressor
            .gzip_compress(data, scratch)
            .expect("the bound always has room");
        scratch[..written].to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Every output is a gzip member that standard decoders read back,
    /// also when the compressor is reused.
    #[test]
    fn round_trips_through_a_standard_decoder() {
        let mut x = 1u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let inputs = [&b""[..], b"a", &[7u8; 100_000], &noise];
        for input in inputs.iter().chain(inputs.iter()) {
            let gz = gzip(input);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(&back, input);
            assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "a gzip member of deflate data");
        }
    }
}
