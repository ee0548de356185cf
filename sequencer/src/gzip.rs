//! gzip of data tiles, with one deflate state per thread reused for every
//! tile.
//!
//! A fresh `GzEncoder` per tile allocates the deflate window and hash
//! chains (a few hundred KiB) and frees them again; the allocator hands
//! that memory back to the kernel in between, so every tile paid for page
//! faults and page zeroing (`clear_page_erms`, 14% of the sequencer's CPU
//! in the profile). Resetting one state keeps the memory.

use std::cell::RefCell;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// The gzip level of data tiles. Compression is most of the sequencer's
/// CPU; on the bench's entries (zlib-rs) level 4 takes 3.2 µs per entry
/// where the default 6 takes 3.8, for tiles 3% larger (21.4% of the raw
/// size instead of 20.8%). Levels 1-3 are faster still but 7-12% larger.
const LEVEL: u32 = 4;

/// RFC 1952 header: deflate, no flags, no mtime, no extra flags, OS
/// unknown (as `flate2::GzBuilder` writes it for this level).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

thread_local! {
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(LEVEL), false));
}

/// `data` as one gzip member.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    // Room for a tile compressed to a quarter, so it rarely regrows.
    let mut out = Vec::with_capacity(HEADER.len() + data.len() / 4 + 1024);
    out.extend_from_slice(&HEADER);
    DEFLATE.with_borrow_mut(|deflate| {
        deflate.reset();
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity());
            }
            let read = deflate.total_in() as usize;
            let status = deflate
                .compress_vec(&data[read..], &mut out, FlushCompress::Finish)
                .expect("deflate into memory cannot fail");
            if status == Status::StreamEnd {
                break;
            }
        }
    });
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Every output is a gzip member that standard decoders read back,
    /// also when the state is reused and the output must grow.
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
            assert_eq!(&gz[..10], &HEADER);
        }
    }
}
