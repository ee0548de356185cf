//! `ct-log reindex`: rebuilds a log's leaf-hash index (and its dedup
//! records) from its data tiles, for a log created before the RFC 6962
//! read API existed, a lost dedup database, or records lost in a crash
//! (the batchers write them just after each round).
//!
//! It reads the published tree, never changes it: each data tile is
//! decoded, every entry's leaf hash is checked against its level-0 tile,
//! and the records go to the store the server uses (a key already there
//! keeps its first location). It may run while the log is served.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{bail, Context};
use ct_dedup::{Location, PersistentDedup, Record};
use ct_formats::{leaf_hash, open_checkpoint, Hash, TileKind, TILE_WIDTH};
use ct_storage::ObjectStore;
use futures_util::{stream, StreamExt, TryStreamExt};

use crate::audit::progress_bar;
use crate::config::{Config, LogConfig, LogsArgs};
use crate::keys::load_key;
use crate::log::Log;
use crate::tree::{decode_data_tile, tile_at};
use crate::wiring::{open_store, shared_dedup, DedupChoice};

/// Data tiles read and decoded at once.
const TILES_IN_FLIGHT: usize = 8;
/// At start, the newest entries are reindexed back over at most this many
/// data tiles: more than a crash can lose of the batchers' records (a few
/// rounds), and few enough to read in a moment.
const REPAIR_TILES: u64 = 64;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    logs: LogsArgs,
    /// Begin at this entry (rounded down to its tile) instead of the first:
    /// to resume an interrupted run, or to repair only the newest entries.
    #[arg(long, default_value_t = 0)]
    start: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(&args.logs.config)?;
    let logs = args.logs.select(&config)?;
    for log in logs {
        let entries = reindex(&config, log, args.start)
            .await
            .with_context(|| format!("reindexing log {:?}", log.name))?;
        println!("{}: indexed {entries} entries", log.name);
    }
    Ok(())
}

/// Reindexes one log from entry `start`; returns the entries indexed.
async fn reindex(config: &Config, log: &LogConfig, start: u64) -> anyhow::Result<u64> {
    let key = load_key(log)?;
    let store = open_store(log).await?;
    let note = store
        .get("checkpoint")
        .await?
        .context("storage holds no checkpoint: nothing to index")?;
    let size = open_checkpoint(&note, &log.origin(), key.verifying_key())
        .context("the stored checkpoint")?
        .checkpoint
        .size;
    let dedup = DedupChoice::of(log, shared_dedup(config).as_ref())
        .open(key.log_id())
        .await?;
    let first_tile = start.min(size) / TILE_WIDTH;
    let tiles = first_tile..size.div_ceil(TILE_WIDTH);
    let bar = std::io::stderr().is_terminal().then(progress_bar);
    if let Some(bar) = &bar {
        bar.set_length(size - first_tile * TILE_WIDTH);
    }
    let records = stream::iter(tiles)
        .map(|index| tile_records(store.clone(), index, size))
        .buffered(TILES_IN_FLIGHT);
    let indexed = write_all(records, &dedup, bar.as_ref()).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    indexed
}

/// Makes sure the newest entries are in the leaf-hash index, as the
/// process starts: a crash may have lost the batchers' last records. Going
/// back from the newest data tile, each tile whose last entry is missing
/// is indexed again, up to [`REPAIR_TILES`] tiles; a longer gap is left to
/// `ct-log reindex`, and said so.
pub async fn repair_tail(log: Arc<Log>) {
    let Some(size) = log.published.borrow().as_ref().map(|c| c.checkpoint.size) else {
        return;
    };
    let result = async {
        let (tiles, mut repaired) = (size.div_ceil(TILE_WIDTH), 0);
        for index in (tiles.saturating_sub(REPAIR_TILES)..tiles).rev() {
            let records = tile_records(log.store.clone(), index, size).await?;
            let newest = records.last().map(|r| r.leaf_hash).unwrap_or_default();
            if log.leaf_hashes.leaf_index(newest).await?.is_some() {
                return Ok::<_, anyhow::Error>(repaired);
            }
            repaired += records.len();
            log.leaf_hashes.insert(records).await?;
        }
        if tiles > REPAIR_TILES {
            bail!("entries before the newest {repaired} may be missing too");
        }
        Ok(repaired)
    };
    match result.await {
        Ok(0) => {}
        Ok(repaired) => {
            tracing::info!(log = %log.info.name, repaired, "indexed the newest entries again")
        }
        Err(e) => tracing::warn!(
            log = %log.info.name,
            error = %format!("{e:#}"),
            "the leaf-hash index may lack entries (get-proof-by-hash answers 404 for them): run ct-log reindex"
        ),
    }
}

/// Writes each tile's records in order as they come.
async fn write_all(
    records: impl futures_util::Stream<Item = anyhow::Result<Vec<Record>>>,
    dedup: &PersistentDedup,
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<u64> {
    let mut records = std::pin::pin!(records);
    let mut indexed = 0;
    while let Some(tile) = records.try_next().await? {
        let count = tile.len() as u64;
        dedup.insert(tile).await?;
        indexed += count;
        if let Some(bar) = bar {
            bar.inc(count);
        }
    }
    Ok(indexed)
}

/// The records of data tile `index` in the tree of `size` leaves, each leaf
/// hash checked against the level-0 tile.
async fn tile_records(
    store: Arc<dyn ObjectStore>,
    index: u64,
    size: u64,
) -> anyhow::Result<Vec<Record>> {
    let data = tile_at(TileKind::Data, index, size);
    let level0 = tile_at(TileKind::Hash { level: 0 }, index, size);
    let gzipped = must_get(&*store, &data.path()).await?;
    let hashes = must_get(&*store, &level0.path()).await?;
    let leaves = tokio::task::spawn_blocking(move || decode_data_tile(data, &gzipped)).await??;
    let first = index * TILE_WIDTH;
    leaves
        .iter()
        .zip(0..)
        .map(|(leaf, i)| {
            let hash = leaf_hash(&leaf.merkle_tree_leaf());
            let stored: Option<Hash> = hashes
                .get(i as usize * 32..i as usize * 32 + 32)
                .and_then(|h| h.try_into().ok());
            if stored != Some(hash) {
                bail!(
                    "entry {} does not hash to its level-0 hash in {}",
                    first + i,
                    level0.path()
                );
            }
            let location = Location {
                leaf_index: first + i,
                timestamp: leaf.timestamp,
            };
            Ok(Record {
                key: leaf.entry.dedup_key(),
                location,
                leaf_hash: hash,
            })
        })
        .collect()
}

async fn must_get(store: &dyn ObjectStore, key: &str) -> anyhow::Result<bytes::Bytes> {
    store
        .get(key)
        .await?
        .with_context(|| format!("{key} is missing from storage"))
}
