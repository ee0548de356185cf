//! Tile path parsing (`TileId::parse`) and naming (`TileId::path`,
//! `right_edge_tiles`).
//!
//! Invariants: `parse(p) == Some(t)` implies `t.path() == p` and t is a
//! valid tile (level <= 63, width 1..=256); every valid TileId round-trips
//! through its path; the right edge of any tree size has one data tile and
//! one tile per non-empty level, each ending exactly at that level's count.
#![no_main]

use ct_formats::{right_edge_tiles, TileId, TileKind, TILE_WIDTH};
use libfuzzer_sys::fuzz_target;

fn check_roundtrip(t: TileId) {
    let p = t.path();
    assert_eq!(TileId::parse(&p), Some(t), "{t:?} -> {p:?} does not parse back");
    assert!(!p.starts_with('/') && !p.contains("//"));
}

fuzz_target!(|data: &[u8]| {
    // 1. Text parses only in canonical form.
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(t) = TileId::parse(s) {
            assert_eq!(t.path(), s, "parse({s:?}) = {t:?} is not canonical");
            assert!((1..=TILE_WIDTH).contains(&t.width));
            if let TileKind::Hash { level } = t.kind {
                assert!(level <= 63);
            }
        }
    }
    // 2. Any valid TileId round-trips.
    if data.len() >= 10 {
        let index = u64::from_be_bytes(data[0..8].try_into().unwrap());
        let width = u64::from(data[8]) + 1; // 1..=256
        let kind = if data[9] == 0xff {
            TileKind::Data
        } else {
            TileKind::Hash {
                level: data[9] % 64,
            }
        };
        check_roundtrip(TileId { kind, index, width });
    }
    // 3. The right edge of a tree of `size` leaves.
    if data.len() >= 8 {
        let size = u64::from_be_bytes(data[data.len() - 8..].try_into().unwrap());
        let tiles = right_edge_tiles(size);
        if size == 0 {
            assert!(tiles.is_empty());
            return;
        }
        assert_eq!(tiles[0].kind, TileKind::Data);
        let mut count = size;
        for (level, t) in tiles[1..].iter().enumerate() {
            assert_eq!(t.kind, TileKind::Hash { level: level as u8 });
            assert!(count > 0);
            assert_eq!(t.index * TILE_WIDTH + t.width, count, "{t:?} for size {size}");
            check_roundtrip(*t);
            count /= TILE_WIDTH;
        }
        assert_eq!(count, 0, "missing levels for size {size}");
        assert_eq!(tiles[0].index, tiles[1].index);
        assert_eq!(tiles[0].width, tiles[1].width);
        check_roundtrip(tiles[0]);
    }
});
