//! tlog-tiles / static-ct-api tile naming (height 8, width 256): tile IDs,
//! their paths, and which tiles form the right edge of a tree.

use crate::codec::parse_canonical;

/// Tile height: each tile covers 8 levels of the tree.
pub const TILE_HEIGHT: u32 = 8;
/// Tile width: hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// Highest hash level a tile path may name.
const MAX_LEVEL: u8 = 63;

/// Which kind of tile: hashes at a tile level, or data (log entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileKind {
    Hash { level: u8 },
    Data,
}

/// One tile: `index` counts tiles from the left at its level; `width` is
/// 1..=256 and 256 means full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileId {
    pub kind: TileKind,
    pub index: u64,
    pub width: u64,
}

impl TileId {
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// "tile/0/x001/x234/067", "tile/1/000.p/3", "tile/data/000" (no leading slash).
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hash { level } => level.to_string(),
            TileKind::Data => "data".to_string(),
        };
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("tile/{level}/{}{partial}", index_path(self.index))
    }

    /// Inverse of [`TileId::path`]; None for anything not in canonical form.
    pub fn parse(path: &str) -> Option<TileId> {
        let rest = path.strip_prefix("tile/")?;
        let (level, rest) = rest.split_once('/')?;
        let kind = if level == "data" {
            TileKind::Data
        } else {
            let level = u8::try_from(parse_canonical(level)?).ok()?;
            (level <= MAX_LEVEL).then_some(TileKind::Hash { level })?
        };
        let (index, width) = match rest.split_once(".p/") {
            // A partial tile is 1..=255 wide; a full one has no suffix.
            Some((index, width)) => {
                let width = parse_canonical(width)?;
                (index, (1..TILE_WIDTH).contains(&width).then_some(width)?)
            }
            None => (rest, TILE_WIDTH),
        };
        let index = parse_index_path(index)?;
        Some(TileId { kind, index, width })
    }
}

/// The index in 3-digit groups, all but the last prefixed with 'x'.
fn index_path(mut n: u64) -> String {
    let mut path = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        path = format!("x{:03}/{path}", n % 1000);
    }
    path
}

/// Inverse of `index_path`: every group exactly 3 digits, no leading zero group.
fn parse_index_path(s: &str) -> Option<u64> {
    let groups: Vec<&str> = s.split('/').collect();
    let (last, upper) = groups.split_last()?;
    let mut n = 0u64;
    for (i, group) in upper.iter().enumerate() {
        let digits = parse_group(group.strip_prefix('x')?)?;
        if i == 0 && digits == 0 {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(digits)?;
    }
    n.checked_mul(1000)?.checked_add(parse_group(last)?)
}

fn parse_group(s: &str) -> Option<u64> {
    if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The last (rightmost) tile of each kind for a tree of `size` leaves: the
/// data tile first, then hash levels 0, 1, ... while the level is non-empty.
/// Each is full or partial (`.p/W`); empty tiles never appear.
pub fn right_edge_tiles(size: u64) -> Vec<TileId> {
    let mut tiles = Vec::new();
    if size == 0 {
        return tiles;
    }
    tiles.push(last_tile(TileKind::Data, size));
    // `count` is the number of hashes stored at this tile level.
    let mut count = size;
    let mut level = 0u8;
    while count > 0 {
        tiles.push(last_tile(TileKind::Hash { level }, count));
        count /= TILE_WIDTH;
        level += 1;
    }
    tiles
}

/// The rightmost tile holding `count` (> 0) items at one level.
fn last_tile(kind: TileKind, count: u64) -> TileId {
    let width = count % TILE_WIDTH;
    if width == 0 {
        TileId {
            kind,
            index: count / TILE_WIDTH - 1,
            width: TILE_WIDTH,
        }
    } else {
        TileId {
            kind,
            index: count / TILE_WIDTH,
            width,
        }
    }
}
