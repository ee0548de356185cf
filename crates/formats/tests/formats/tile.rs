use ct_formats::*;

fn hash_tile(level: u8, index: u64, width: u64) -> TileId {
    TileId {
        kind: TileKind::Hash { level },
        index,
        width,
    }
}

fn data_tile(index: u64, width: u64) -> TileId {
    TileId {
        kind: TileKind::Data,
        index,
        width,
    }
}

#[test]
fn known_paths() {
    assert_eq!(hash_tile(0, 0, 256).path(), "tile/0/000");
    assert_eq!(hash_tile(0, 1000, 256).path(), "tile/0/x001/000");
    assert_eq!(hash_tile(0, 1234067, 256).path(), "tile/0/x001/x234/067");
    assert_eq!(hash_tile(0, 3, 10).path(), "tile/0/003.p/10");
    assert_eq!(hash_tile(1, 0, 3).path(), "tile/1/000.p/3");
    assert_eq!(data_tile(0, 256).path(), "tile/data/000");
    assert_eq!(data_tile(3, 10).path(), "tile/data/003.p/10");
    assert_eq!(data_tile(999, 255).path(), "tile/data/999.p/255");
    assert_eq!(
        hash_tile(63, u64::MAX, 1).path(),
        "tile/63/x018/x446/x744/x073/x709/x551/615.p/1"
    );
    assert!(hash_tile(0, 0, 256).is_full());
    assert!(!hash_tile(0, 0, 255).is_full());
}

fn sample_tiles() -> Vec<TileId> {
    let mut tiles = Vec::new();
    for index in [
        0,
        1,
        999,
        1000,
        1001,
        999_999,
        1_000_000,
        1_234_067,
        u64::MAX,
    ] {
        for width in [1, 10, 255, 256] {
            tiles.push(data_tile(index, width));
            for level in [0, 1, 5, 63] {
                tiles.push(hash_tile(level, index, width));
            }
        }
    }
    tiles
}

#[test]
fn parse_inverts_path() {
    for t in sample_tiles() {
        assert_eq!(TileId::parse(&t.path()), Some(t), "{}", t.path());
    }
}

#[test]
fn paths_match_oracle() {
    for t in sample_tiles() {
        let (level, is_data) = match t.kind {
            TileKind::Hash { level } => (level, false),
            TileKind::Data => (0, true),
        };
        let oracle = tlog_tiles::Tile::new(8, level, t.index, t.width as u32, is_data);
        assert_eq!(t.path(), static_ct_api::tile_path(&oracle));
    }
}

#[test]
fn parse_rejects_malformed() {
    let bad = [
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tile/0/000/",
        "tile//000",
        "tile/0//000",
        "tiles/0/000",
        "tile/0/0001",
        "tile/0/00",
        "tile/0/1",
        "tile/0/x000/001",
        "tile/0/x001/00",
        "tile/0/x001/0000",
        "tile/0/001/000",
        "tile/0/x001",
        "tile/0/xx01/000",
        "tile/0/x01/000",
        "tile/0/x001/x000",
        "tile/0/-01",
        "tile/0/+01",
        "tile/0/ 01",
        "tile/0/00a",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/255/000",
        "tile/256/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile/x/000",
        "tile/Data/000",
        "tile/data",
        "tile/8/0/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/300",
        "tile/0/000.p/010",
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000.p/3/",
        "tile/0/000.p/3.p/4",
        "tile/0/000.p/+3",
        "tile/0/.p/3",
        "tile/data/000.p/0",
        // u64::MAX + 1
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
    ];
    for path in bad {
        assert_eq!(TileId::parse(path), None, "accepted {path:?}");
    }
}

fn paths(tiles: Vec<TileId>) -> Vec<String> {
    tiles.iter().map(TileId::path).collect()
}

#[test]
fn right_edge() {
    assert!(right_edge_tiles(0).is_empty());
    assert_eq!(
        paths(right_edge_tiles(1)),
        ["tile/data/000.p/1", "tile/0/000.p/1"]
    );
    assert_eq!(
        paths(right_edge_tiles(255)),
        ["tile/data/000.p/255", "tile/0/000.p/255"]
    );
    assert_eq!(
        paths(right_edge_tiles(256)),
        ["tile/data/000", "tile/0/000", "tile/1/000.p/1"]
    );
    assert_eq!(
        paths(right_edge_tiles(778)),
        ["tile/data/003.p/10", "tile/0/003.p/10", "tile/1/000.p/3"]
    );
    assert_eq!(
        paths(right_edge_tiles(65536)),
        [
            "tile/data/255",
            "tile/0/255",
            "tile/1/000",
            "tile/2/000.p/1"
        ]
    );
    assert_eq!(
        paths(right_edge_tiles(65537)),
        [
            "tile/data/256.p/1",
            "tile/0/256.p/1",
            "tile/1/000",
            "tile/2/000.p/1"
        ]
    );
    let all = right_edge_tiles(u64::MAX);
    assert_eq!(all.len(), 9, "data + levels 0..=7");
    assert!(all.iter().all(|t| (1..=256).contains(&t.width)));
}

/// Level l of a tree of `size` leaves has floor(size/256^l) hashes; the
/// right-edge tile of that level must end exactly there.
#[test]
fn right_edge_covers_each_level() {
    for size in (1..3000).chain([65535, 65536, 65537, 16_777_216, 16_777_217]) {
        let tiles = right_edge_tiles(size);
        assert_eq!(tiles[0].kind, TileKind::Data);
        assert_eq!(tiles[0].index * 256 + tiles[0].width, size);
        let mut count = size;
        for (level, t) in tiles[1..].iter().enumerate() {
            assert_eq!(t.kind, TileKind::Hash { level: level as u8 });
            assert_eq!(t.index * 256 + t.width, count, "size {size} level {level}");
            count /= 256;
        }
        assert_eq!(count, 0, "size {size}: missing levels");
    }
}
