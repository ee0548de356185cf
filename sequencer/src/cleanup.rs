//! Partial-tile cleanup. Every round writes the partial tiles of its right
//! edge (`.p/W`), at every level, so a busy log leaves up to 255 partial
//! versions behind each full tile: tens of millions of objects a year.
//! Once a full tile has been published for a grace period (monitors may
//! still be fetching the partial versions of older checkpoints), its
//! partials are deleted.
//!
//! - **Only superseded partials.** A partial version goes once a wider
//!   version of its tile (full, or partial but wider) has been published for
//!   the grace period: every partial of a full tile, and the narrower
//!   partials of the right-edge tile at each level. The right edge of the
//!   published tree (and of the lock's, at least as large) is never
//!   touched. Readers that ask for a deleted partial find the same hashes
//!   and entries at the start of the wider version.
//! - **Grace by observation.** The cleaner notes the published size when it
//!   sees it; a size becomes eligible once it was seen at least the grace
//!   period ago, on this process's clock. After a restart it starts
//!   counting again: at worst a grace period later than needed.
//! - **Crash-safe and resumable.** Deleting is idempotent. Progress (per
//!   level, the first full tile not yet cleaned) is kept in storage under
//!   [`PROGRESS_KEY`], written after each tile, so a restart or a failover
//!   resumes there instead of listing every tile again.
//! - **Rate-limited**, and only while this sequencer is active.
//!
//! Metrics: `ct_partial_tiles_deleted_total{log}` and
//! `ct_partial_tiles_backlog{log}` (full tiles whose partials may remain).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ct_formats::{right_edge_tiles, SignedCheckpoint, TileId, TileKind, TILE_WIDTH};
use ct_storage::{ObjectStore, StorageError};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::edge::level_count;

/// Where the cleaner keeps its progress.
pub const PROGRESS_KEY: &str = "_partials_cleaned";

/// How the cleanup runs.
#[derive(Clone, Copy, Debug)]
pub struct Cleanup {
    /// How long a full tile stays published before its partials go.
    pub grace: Duration,
    /// Deletes per second, at most.
    pub deletes_per_s: u32,
}

/// The longest between two passes.
const MAX_PASS_INTERVAL: Duration = Duration::from_secs(60);

/// What the cleaner task watches and cleans.
pub(crate) struct Cleaner {
    pub store: Arc<dyn ObjectStore>,
    pub log: String,
    pub config: Cleanup,
    pub published: watch::Receiver<SignedCheckpoint>,
    pub active: watch::Receiver<bool>,
}

/// A level of tiles: the data tiles, or hash level `l`.
fn levels(size: u64) -> impl Iterator<Item = TileKind> {
    let hash_levels = (0u8..).take_while(move |&l| level_count(size, l as usize) >= TILE_WIDTH);
    std::iter::once(TileKind::Data).chain(hash_levels.map(|level| TileKind::Hash { level }))
}

/// Full tiles at `kind` in a tree of `size` leaves.
fn full_tiles(kind: TileKind, size: u64) -> u64 {
    match kind {
        TileKind::Data => size / TILE_WIDTH,
        TileKind::Hash { level } => level_count(size, level as usize) / TILE_WIDTH,
    }
}

fn level_name(kind: TileKind) -> String {
    match kind {
        TileKind::Data => "data".into(),
        TileKind::Hash { level } => level.to_string(),
    }
}

/// The prefix of every partial version of tile `index` at `kind`.
fn partials_prefix(kind: TileKind, index: u64) -> String {
    let one = TileId {
        kind,
        index,
        width: 1,
    };
    one.path().trim_end_matches('1').to_string()
}

/// Per level, the first full tile whose partials were not cleaned yet.
#[derive(Debug, Default, PartialEq, Eq)]
struct Progress(Vec<(String, u64)>);

impl Progress {
    fn parse(text: &[u8]) -> Progress {
        let text = String::from_utf8_lossy(text);
        let lines = text.lines().filter_map(|line| {
            let (level, next) = line.split_once(' ')?;
            Some((level.to_string(), next.parse().ok()?))
        });
        Progress(lines.collect())
    }

    fn encode(&self) -> Bytes {
        let lines: String = self.0.iter().map(|(l, n)| format!("{l} {n}\n")).collect();
        Bytes::from(lines)
    }

    fn next(&self, kind: TileKind) -> u64 {
        let name = level_name(kind);
        self.0
            .iter()
            .find(|(l, _)| *l == name)
            .map_or(0, |(_, n)| *n)
    }

    fn set(&mut self, kind: TileKind, next: u64) {
        let name = level_name(kind);
        match self.0.iter_mut().find(|(l, _)| *l == name) {
            Some(entry) => entry.1 = next,
            None => self.0.push((name, next)),
        }
    }
}

impl Cleaner {
    /// Runs passes until the sequencer is gone.
    pub async fn run(mut self) {
        let pass = (self.config.grace / 4).clamp(Duration::from_secs(1), MAX_PASS_INTERVAL);
        let mut seen: VecDeque<(Instant, u64)> = VecDeque::new();
        loop {
            tokio::select! {
                changed = self.published.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(pass) => {}
            }
            let size = self.published.borrow().checkpoint.size;
            seen.push_back((Instant::now(), size));
            let eligible = eligible_size(&mut seen, self.config.grace);
            if !*self.active.borrow() || eligible == 0 {
                continue;
            }
            if let Err(e) = self.clean(eligible, size).await {
                tracing::warn!(error = %e, "cleaning partial tiles failed; trying again later");
            }
        }
    }

    /// Deletes the partials of every tile full in a tree of `eligible`
    /// leaves, from where the last pass stopped.
    async fn clean(&self, eligible: u64, size: u64) -> Result<(), StorageError> {
        let stored = self.store.get(PROGRESS_KEY).await?;
        let mut progress = stored.map(|b| Progress::parse(&b)).unwrap_or_default();
        for kind in levels(eligible).collect::<Vec<_>>() {
            for index in progress.next(kind)..full_tiles(kind, eligible) {
                if !*self.active.borrow() {
                    return Ok(());
                }
                self.delete_partials(kind, index).await?;
                progress.set(kind, index + 1);
                self.store.put(PROGRESS_KEY, progress.encode()).await?;
                self.report_backlog(&progress, size);
            }
        }
        self.report_backlog(&progress, size);
        for edge in right_edge_tiles(eligible)
            .into_iter()
            .filter(|t| !t.is_full())
        {
            self.delete_narrower(edge).await?;
        }
        Ok(())
    }

    /// Deletes the partial versions of `edge`'s tile narrower than it.
    async fn delete_narrower(&self, edge: TileId) -> Result<(), StorageError> {
        let prefix = partials_prefix(edge.kind, edge.index);
        for key in self.store.list(&prefix, TILE_WIDTH as usize).await? {
            if TileId::parse(&key).is_some_and(|t| t.width < edge.width) {
                self.delete_one(&key).await?;
            }
        }
        Ok(())
    }

    async fn delete_one(&self, key: &str) -> Result<(), StorageError> {
        self.store.delete(key).await?;
        metrics::counter!("ct_partial_tiles_deleted_total", "log" => self.log.clone()).increment(1);
        let pause = Duration::from_secs(1) / self.config.deletes_per_s.max(1);
        tokio::time::sleep(pause).await;
        Ok(())
    }

    async fn delete_partials(&self, kind: TileKind, index: u64) -> Result<(), StorageError> {
        let prefix = partials_prefix(kind, index);
        for key in self.store.list(&prefix, TILE_WIDTH as usize).await? {
            self.delete_one(&key).await?;
        }
        Ok(())
    }

    /// Full tiles of the tree of `size` whose partials may remain.
    fn report_backlog(&self, progress: &Progress, size: u64) {
        let backlog: u64 = levels(size)
            .map(|kind| full_tiles(kind, size).saturating_sub(progress.next(kind)))
            .sum();
        metrics::gauge!("ct_partial_tiles_backlog", "log" => self.log.clone()).set(backlog as f64);
    }
}

/// The largest size seen at least `grace` ago, dropping the sightings it
/// makes useless.
fn eligible_size(seen: &mut VecDeque<(Instant, u64)>, grace: Duration) -> u64 {
    let now = Instant::now();
    let mut eligible = None;
    while let Some(&(at, size)) = seen.front() {
        if now.duration_since(at) < grace {
            break;
        }
        eligible = Some((at, size));
        seen.pop_front();
    }
    match eligible {
        Some(sighting) => {
            // Keep the answer for the next pass, which may see nothing older.
            seen.push_front(sighting);
            sighting.1
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_and_progress() {
        assert_eq!(partials_prefix(TileKind::Data, 3), "tile/data/003.p/");
        assert_eq!(
            partials_prefix(TileKind::Hash { level: 1 }, 1234),
            "tile/1/x001/234.p/"
        );
        let kinds: Vec<TileKind> = levels(70_000).collect();
        assert_eq!(
            kinds,
            [
                TileKind::Data,
                TileKind::Hash { level: 0 },
                TileKind::Hash { level: 1 }
            ]
        );
        assert_eq!(full_tiles(TileKind::Hash { level: 1 }, 70_000), 1);
        assert_eq!(full_tiles(TileKind::Data, 255), 0);
        let mut progress = Progress::default();
        progress.set(TileKind::Data, 4);
        progress.set(TileKind::Hash { level: 0 }, 2);
        progress.set(TileKind::Data, 5);
        let parsed = Progress::parse(&progress.encode());
        assert_eq!(parsed, progress);
        assert_eq!(
            (
                parsed.next(TileKind::Data),
                parsed.next(TileKind::Hash { level: 3 })
            ),
            (5, 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_size_is_eligible_once_seen_a_grace_period_ago() {
        let grace = Duration::from_secs(60);
        let mut seen = VecDeque::new();
        seen.push_back((Instant::now(), 100));
        assert_eq!(eligible_size(&mut seen, grace), 0);
        tokio::time::advance(Duration::from_secs(30)).await;
        seen.push_back((Instant::now(), 300));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(eligible_size(&mut seen, grace), 100);
        assert_eq!(
            eligible_size(&mut seen, grace),
            100,
            "kept for the next pass"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(eligible_size(&mut seen, grace), 300);
    }
}
