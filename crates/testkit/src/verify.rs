//! Verification of SCTs and of a whole published log through its read path,
//! with the Azul crates (`static_ct_api`, `tlog_tiles`, `signed_note`) as the
//! oracle.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use p256::ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256};
use signed_note::{Note, VerifierList};
use static_ct_api::{
    load_pem_chain, rfc6962_signature_timestamp, tile_path, validate_chain, CertPool, Extensions,
    LogEntry, RFC6962Verifier, TileIterator,
};
use tlog_tiles::{record_hash, Hash, Tile, TileHashReader, TileReader};

use crate::client::{get, monitoring_url, Resp, Submission};
use crate::server::LogHandle;

/// `Cache-Control` every object but the checkpoint must carry (SPEC.md).
pub const IMMUTABLE: &str = "public, max-age=604800, immutable";
/// The largest `max-age` accepted on the checkpoint ("a few seconds").
pub const CHECKPOINT_MAX_AGE: u64 = 10;

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Normalized media type: lowercase, without spaces.
fn norm(s: &str) -> String {
    s.to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Asserts the `Content-Type` of a response (case and spaces ignored).
pub fn assert_content_type(r: &Resp, expected: &str, what: &str) {
    assert_eq!(
        norm(&r.header("content-type")),
        norm(expected),
        "{what}: Content-Type"
    );
}

/// Asserts `Cache-Control: public, max-age=604800, immutable` (token order
/// and spacing ignored).
pub fn assert_immutable(r: &Resp, what: &str) {
    let got: BTreeSet<String> = r
        .header("cache-control")
        .split(',')
        .map(norm)
        .filter(|s| !s.is_empty())
        .collect();
    let want: BTreeSet<String> = IMMUTABLE.split(',').map(norm).collect();
    assert_eq!(
        got,
        want,
        "{what}: Cache-Control {:?}",
        r.header("cache-control")
    );
}

/// Asserts the checkpoint's `Cache-Control` is `no-store`/`no-cache` or a
/// `max-age` of at most [`CHECKPOINT_MAX_AGE`] seconds, and not immutable.
pub fn assert_checkpoint_cache(r: &Resp) {
    let cc = norm(&r.header("cache-control"));
    let toks: Vec<&str> = cc.split(',').collect();
    assert!(
        !toks.contains(&"immutable"),
        "checkpoint must not be immutable: {cc:?}"
    );
    let ok = toks.iter().any(|t| *t == "no-store" || *t == "no-cache")
        || toks.iter().any(|t| {
            t.strip_prefix("max-age=")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v <= CHECKPOINT_MAX_AGE)
        });
    assert!(
        ok,
        "checkpoint Cache-Control {cc:?}: expected no-store or a max-age of at most {CHECKPOINT_MAX_AGE} s"
    );
}

/// Decompresses a whole gzip member, refusing trailing bytes.
fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut decoder = flate2::read::GzDecoder::new(data);
    let mut out = Vec::new();
    decoder.read_to_end(&mut out).map_err(|e| e.to_string())?;
    match decoder.into_inner() {
        [] => Ok(out),
        rest => Err(format!(
            "{} trailing bytes after the gzip member",
            rest.len()
        )),
    }
}

/// The body of a response, gunzipped if it says `Content-Encoding: gzip`.
pub fn decoded_body(r: &Resp, what: &str) -> Vec<u8> {
    match norm(&r.header("content-encoding")).as_str() {
        "" | "identity" => r.body.clone(),
        "gzip" => gunzip(&r.body).unwrap_or_else(|e| {
            panic!("{what}: Content-Encoding gzip but body does not gunzip: {e}")
        }),
        other => panic!("{what}: unexpected Content-Encoding {other:?}"),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The oracle's root pool for a log.
pub fn root_pool(log: &LogHandle) -> CertPool {
    CertPool::new(load_pem_chain(&log.roots_pem).expect("roots PEM")).expect("root pool")
}

/// DER of each root in the log's roots file.
pub fn roots_der(log: &LogHandle) -> Vec<Vec<u8>> {
    static_ct_api::certs_to_bytes(&load_pem_chain(&log.roots_pem).expect("roots PEM")).unwrap()
}

/// Checks one SCT against the oracle and returns the log entry it promises:
/// `id` is the LogID, `extensions` is exactly one leaf_index extension, and
/// `signature` is a DigitallySigned (SHA-256, ECDSA) by the log key over the
/// MerkleTreeLeaf that the oracle builds from the submitted chain (issuer key
/// hash and poison-free TBS for precertificates). The returned entry's
/// `chain_fingerprints` are those of the chain the log must store (submitted
/// issuers, plus the root if it was omitted).
pub fn verify_sct(log: &LogHandle, pool: &CertPool, sub: &Submission) -> LogEntry {
    let what = format!("SCT for leaf {}", hex(&sha256(&sub.chain[0])[..8]));
    assert_eq!(sub.sct.id, log.log_id, "{what}: id is not the LogID");
    let ext = Extensions::from_bytes(&sub.sct.extensions)
        .unwrap_or_else(|e| panic!("{what}: extensions do not decode: {e}"));
    assert_eq!(
        sub.sct.extensions,
        Extensions {
            leaf_index: ext.leaf_index
        }
        .to_bytes(),
        "{what}: extensions must be exactly one leaf_index extension"
    );
    let vc = validate_chain(
        &sub.chain,
        pool,
        Some(log.not_after_start_ms),
        Some(log.not_after_limit_ms),
        sub.precert,
        true,
    )
    .unwrap_or_else(|e| panic!("{what}: the log accepted a chain the oracle rejects: {e}"));
    let entry = LogEntry {
        certificate: vc.certificate,
        is_precert: vc.is_precert,
        issuer_key_hash: vc.issuer_key_hash,
        chain_fingerprints: vc.issuers.iter().map(|c| sha256(c)).collect(),
        pre_certificate: vc.pre_certificate,
        leaf_index: ext.leaf_index,
        timestamp: sub.sct.timestamp,
    };
    let sig = &sub.sct.signature;
    assert!(
        sig.len() > 4 && sig[0] == 4 && sig[1] == 3,
        "{what}: DigitallySigned must start with 04 03, got {:02x?}",
        &sig[..sig.len().min(4)]
    );
    let len = usize::from(u16::from_be_bytes([sig[2], sig[3]]));
    assert_eq!(sig.len(), 4 + len, "{what}: DigitallySigned length prefix");
    let der = p256::ecdsa::Signature::from_der(&sig[4..])
        .unwrap_or_else(|e| panic!("{what}: signature is not DER ECDSA: {e}"));
    log.verifying_key
        .verify(&entry.merkle_tree_leaf(), &der)
        .unwrap_or_else(|_| {
            panic!(
                "{what}: signature does not verify over the MerkleTreeLeaf (index {}, ts {})",
                entry.leaf_index, entry.timestamp
            )
        });
    entry
}

/// A verified checkpoint.
#[derive(Clone, Debug)]
pub struct CheckpointInfo {
    pub size: u64,
    pub root: [u8; 32],
    /// From the RFC6962NoteSignature.
    pub timestamp: u64,
}

/// Parses and verifies a checkpoint body: signed note with a valid
/// RFC6962NoteSignature by the log key under the origin, origin line, no
/// extension lines, exact text layout, timestamp not ahead of our clock.
pub fn parse_checkpoint(log: &LogHandle, body: &[u8]) -> CheckpointInfo {
    let text = String::from_utf8(body.to_vec()).expect("checkpoint is not UTF-8");
    let note = Note::from_bytes(body)
        .unwrap_or_else(|e| panic!("checkpoint is not a signed note: {e:?}\n{text}"));
    let verifier = RFC6962Verifier::new(&log.origin, &log.verifying_key).expect("RFC6962Verifier");
    let key_id = signed_note::Verifier::key_id(&verifier);
    let (verified, _unknown) = note
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .unwrap_or_else(|e| {
            panic!(
                "checkpoint signature does not verify for origin {:?}: {e:?}\n{text}",
                log.origin
            )
        });
    let sig = verified
        .iter()
        .find(|s| s.id() == key_id)
        .expect("verified RFC 6962 signature");
    let timestamp = rfc6962_signature_timestamp(sig).expect("signature timestamp");
    let cp = tlog_tiles::Checkpoint::from_bytes(note.text())
        .unwrap_or_else(|_| panic!("malformed checkpoint body\n{text}"));
    assert_eq!(cp.origin(), log.origin, "checkpoint origin");
    assert!(
        cp.extension().is_empty(),
        "checkpoint must have no extension lines\n{text}"
    );
    let root = cp.hash().0;
    let expected_body = format!(
        "{}\n{}\n{}\n",
        log.origin,
        cp.size(),
        base64::Engine::encode(&base64::prelude::BASE64_STANDARD, root)
    );
    assert!(
        text.starts_with(&format!("{expected_body}\n\u{2014} {} ", log.origin)),
        "checkpoint layout:\n{text}"
    );
    assert!(
        timestamp <= now_ms() + 1000,
        "checkpoint timestamp {timestamp} is ahead of the clock ({})",
        now_ms()
    );
    CheckpointInfo {
        size: cp.size(),
        root,
        timestamp,
    }
}

/// GETs and verifies `<monitoring prefix>/checkpoint`, including its
/// Content-Type and Cache-Control.
pub async fn fetch_checkpoint(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
) -> CheckpointInfo {
    let r = get(http, &monitoring_url(base, log, "checkpoint")).await;
    assert_eq!(r.status, 200, "GET checkpoint: {}", r.text());
    assert_content_type(&r, "text/plain; charset=utf-8", "checkpoint");
    assert_checkpoint_cache(&r);
    parse_checkpoint(log, &decoded_body(&r, "checkpoint"))
}

/// RFC 6962 Merkle tree hash of a list of leaf hashes, computed here
/// independently of the server and of tlog_tiles.
pub fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(b""),
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(mth(&leaves[..k]));
            h.update(mth(&leaves[k..]));
            h.finalize().into()
        }
    }
}

/// `(level, n, width)` of every hash tile of a tree of `size` (SPEC.md).
pub fn tiles_for(size: u64) -> Vec<(u8, u64, u32)> {
    let mut out = Vec::new();
    let mut l = 0u8;
    while size >> (8 * u32::from(l)) > 0 {
        let m = size >> (8 * u32::from(l));
        for n in 0..(m >> 8) {
            out.push((l, n, 256));
        }
        if m & 255 > 0 {
            out.push((l, m >> 8, (m & 255) as u32));
        }
        l += 1;
    }
    out
}

/// Static-ct path of a tile, through the oracle (`tile/0/x001/000.p/5`).
pub fn path_of(level: u8, n: u64, w: u32, data: bool) -> String {
    tile_path(&Tile::new(8, level, n, w, data))
}

/// Serves fetched hash tiles to `tlog_tiles::TileHashReader`.
struct MemTiles(HashMap<(u8, u64), Vec<u8>>);

impl TileReader for MemTiles {
    fn height(&self) -> u8 {
        8
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let d = self
                    .0
                    .get(&(t.level(), t.level_index()))
                    .ok_or(tlog_tiles::Error::InvalidTile)?;
                let want = t.width() as usize * 32;
                if t.is_data() || d.len() < want {
                    return Err(tlog_tiles::Error::InvalidTile);
                }
                Ok(d[..want].to_vec())
            })
            .collect()
    }
    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// The result of [`verify_log`].
pub struct VerifiedTree {
    pub checkpoint: CheckpointInfo,
    /// Level-0 hashes, index = leaf index.
    pub leaf_hashes: Vec<[u8; 32]>,
    /// Parsed data-tile entries, index = leaf index.
    pub entries: Vec<LogEntry>,
    /// Hash tiles as fetched, by (level, n).
    hash_tiles: HashMap<(u8, u64), Vec<u8>>,
}

impl VerifiedTree {
    /// The bytes tile `(level, n, w)` must hold in this tree, computed from
    /// the verified level-0 hashes and entries (not from the served hash
    /// tiles): for a hash tile, hash `i` is the Merkle root of the
    /// `256^level` leaves under it; for a data tile (level 0 only), the `w`
    /// entries' tile leaves. Err if the tile reaches past this tree.
    pub fn expected_tile(&self, level: u8, n: u64, w: u32, data: bool) -> Result<Vec<u8>, String> {
        let span = 1u64 << (8 * u32::from(level));
        let first = n * 256;
        let end = (first + u64::from(w)) * span;
        if end > self.checkpoint.size || (data && level != 0) || w == 0 || w > 256 {
            return Err(format!(
                "tile ({level}, {n}, w{w}, data {data}) is not part of a tree of size {}",
                self.checkpoint.size
            ));
        }
        let (first, w, span) = (first as usize, w as usize, span as usize);
        Ok(if data {
            self.entries[first..first + w]
                .iter()
                .flat_map(|e| e.tile_leaf())
                .collect()
        } else {
            (first..first + w)
                .flat_map(|i| mth(&self.leaf_hashes[i * span..(i + 1) * span]))
                .collect()
        })
    }

    /// Checks that this tree extends an earlier checkpoint: the first
    /// `old.size` leaves hash to `old.root` (independently and with a
    /// `tlog_tiles` consistency proof over the served tiles), and the
    /// timestamp did not go backwards.
    pub fn assert_extends(&self, old: &CheckpointInfo) {
        assert!(
            self.checkpoint.size >= old.size,
            "tree shrank: {} -> {}",
            old.size,
            self.checkpoint.size
        );
        assert_eq!(
            mth(&self.leaf_hashes[..old.size as usize]),
            old.root,
            "the first {} leaves no longer hash to the old root",
            old.size
        );
        assert!(
            self.checkpoint.timestamp >= old.timestamp,
            "checkpoint timestamp went backwards: {} -> {}",
            old.timestamp,
            self.checkpoint.timestamp
        );
        if self.checkpoint.size > old.size {
            assert!(
                self.checkpoint.timestamp > old.timestamp,
                "tree grew but checkpoint timestamp did not increase"
            );
        }
        if old.size > 0 {
            let reader = MemTiles(self.hash_tiles.clone());
            let thr =
                TileHashReader::new(self.checkpoint.size, Hash(self.checkpoint.root), &reader);
            let proof = tlog_tiles::prove_tree(self.checkpoint.size, old.size, &thr)
                .expect("prove_tree over served tiles");
            tlog_tiles::check_tree(
                &proof,
                self.checkpoint.size,
                Hash(self.checkpoint.root),
                old.size,
                Hash(old.root),
            )
            .expect("consistency proof");
        }
    }
}

/// Fetches and verifies the whole log through its read path:
/// - the checkpoint (signature, origin, layout, headers);
/// - every hash tile of its size (status, Content-Type, immutable
///   Cache-Control, length), every level-≥1 hash being the root of the
///   256 hashes of the tile below; the next full level-0 hash/data tile of a
///   partial one is not served (404);
/// - every data tile (gzip or not), parsed with `TileIterator` and
///   re-encoded byte for byte (so no trailing bytes), each entry carrying its
///   own leaf index and hashing to its level-0 hash;
/// - the root, recomputed independently and with `tlog_tiles::tree_hash`
///   through a `TileHashReader`, equals the checkpoint's;
/// - entry timestamps ≤ checkpoint timestamp; every fingerprint resolves
///   under `/issuer/` (Content-Type, Cache-Control, hashes back), and every
///   stored chain ends with a configured root;
/// - every submission's SCT ([`verify_sct`]) points at an entry equal to the
///   one the oracle expects (same cert/TBS, issuer key hash, precert, chain,
///   timestamp), with an inclusion proof from `tlog_tiles`; no two SCTs share
///   an index.
pub async fn verify_log(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    subs: &[Submission],
) -> VerifiedTree {
    let cp = fetch_checkpoint(http, base, log).await;
    let size = cp.size;
    let hash_tiles = fetch_hash_tiles(http, base, log, size).await;
    let leaf_hashes = level_zero_hashes(&hash_tiles, size);
    assert_no_full_tile_yet(http, base, log, size).await;
    let (entries, gzipped) = fetch_data_tiles(http, base, log, size, &leaf_hashes).await;
    let reader = MemTiles(hash_tiles.clone());
    assert_root(&cp, &leaf_hashes, &reader);
    let issuers = check_chains_and_issuers(http, base, log, &cp, &entries).await;
    assert_scts(log, &cp, &entries, &reader, subs);
    eprintln!(
        "verified {}: size {size}, {} hash tiles, {} data tiles ({gzipped} gzip), {issuers} issuers, {} SCTs",
        log.origin,
        hash_tiles.len(),
        size.div_ceil(256),
        subs.len()
    );
    VerifiedTree {
        checkpoint: cp,
        leaf_hashes,
        entries,
        hash_tiles,
    }
}

/// Every hash tile of a tree of `size`, by (level, n), each checked on its
/// own (status, headers, length) and each level-≥1 hash against the tile
/// below.
async fn fetch_hash_tiles(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    size: u64,
) -> HashMap<(u8, u64), Vec<u8>> {
    let mut hash_tiles: HashMap<(u8, u64), Vec<u8>> = HashMap::new();
    for (l, n, w) in tiles_for(size) {
        let path = path_of(l, n, w, false);
        let r = get(http, &monitoring_url(base, log, &path)).await;
        assert_eq!(r.status, 200, "GET {path} (tree size {size}): {}", r.text());
        assert_content_type(&r, "application/octet-stream", &path);
        assert_immutable(&r, &path);
        let body = decoded_body(&r, &path);
        assert_eq!(body.len(), w as usize * 32, "{path}: length");
        hash_tiles.insert((l, n), body);
    }
    for (&(l, n), data) in &hash_tiles {
        if l == 0 {
            continue;
        }
        for (i, h) in data.chunks(32).enumerate() {
            let child = hash_tiles
                .get(&(l - 1, n * 256 + i as u64))
                .unwrap_or_else(|| panic!("missing level {} tile {}", l - 1, n * 256 + i as u64));
            assert_eq!(
                child.len(),
                256 * 32,
                "level {} tile {} under a level-{l} hash must be full",
                l - 1,
                n * 256 + i as u64
            );
            let hs: Vec<[u8; 32]> = child.chunks(32).map(|c| c.try_into().unwrap()).collect();
            assert_eq!(
                h,
                mth(&hs),
                "level {l} tile {n} hash {i} is not the root of the tile below"
            );
        }
    }
    hash_tiles
}

/// The level-0 hashes of the tree of `size`, index = leaf index.
fn level_zero_hashes(hash_tiles: &HashMap<(u8, u64), Vec<u8>>, size: u64) -> Vec<[u8; 32]> {
    let mut leaf_hashes: Vec<[u8; 32]> = Vec::with_capacity(size as usize);
    for n in 0..size.div_ceil(256) {
        leaf_hashes.extend(
            hash_tiles[&(0, n)]
                .chunks(32)
                .map(|c| <[u8; 32]>::try_from(c).unwrap()),
        );
    }
    assert_eq!(leaf_hashes.len() as u64, size);
    leaf_hashes
}

/// A full tile that does not exist yet must not be served.
async fn assert_no_full_tile_yet(http: &reqwest::Client, base: &str, log: &LogHandle, size: u64) {
    if !size.is_multiple_of(256) {
        for data in [false, true] {
            let path = path_of(0, size / 256, 256, data);
            let r = get(http, &monitoring_url(base, log, &path)).await;
            assert_eq!(
                r.status, 404,
                "GET {path} for a tree of size {size} (tile not full yet) must be 404"
            );
        }
    }
}

/// Every entry of the tree of `size` from its data tiles, each carrying its
/// own index and hashing to its level-0 hash, and each tile re-encoding byte
/// for byte; with the number of tiles served gzipped.
async fn fetch_data_tiles(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    size: u64,
    leaf_hashes: &[[u8; 32]],
) -> (Vec<LogEntry>, usize) {
    let mut gzipped = 0usize;
    let mut entries: Vec<LogEntry> = Vec::with_capacity(size as usize);
    for (l, n, w) in tiles_for(size).into_iter().filter(|t| t.0 == 0) {
        let path = path_of(l, n, w, true);
        let r = get(http, &monitoring_url(base, log, &path)).await;
        assert_eq!(r.status, 200, "GET {path} (tree size {size}): {}", r.text());
        assert_content_type(&r, "application/octet-stream", &path);
        assert_immutable(&r, &path);
        if norm(&r.header("content-encoding")) == "gzip" {
            gzipped += 1;
        }
        let body = decoded_body(&r, &path);
        let mut reencoded = Vec::with_capacity(body.len());
        for (i, e) in TileIterator::new(body.clone(), w as usize).enumerate() {
            let e = e.unwrap_or_else(|err| panic!("{path}: entry {i} does not parse: {err}"));
            let idx = n * 256 + i as u64;
            assert_eq!(
                e.leaf_index, idx,
                "{path}: entry {i} carries leaf_index {}",
                e.leaf_index
            );
            assert_eq!(
                record_hash(&e.merkle_tree_leaf()).0,
                leaf_hashes[idx as usize],
                "{path}: entry {i} does not hash to level-0 hash {idx}"
            );
            reencoded.extend(e.tile_leaf());
            entries.push(e);
        }
        assert!(
            body.len() >= reencoded.len() && body[..reencoded.len()] == reencoded[..],
            "{path}: entries do not re-encode byte for byte"
        );
        assert_eq!(
            body.len(),
            reencoded.len(),
            "{path}: {} trailing bytes after entry {w}",
            body.len() - reencoded.len()
        );
    }
    assert_eq!(entries.len() as u64, size);
    (entries, gzipped)
}

/// The root, recomputed from the level-0 hashes and by `tlog_tiles` over
/// the served tiles, is the checkpoint's.
fn assert_root(cp: &CheckpointInfo, leaf_hashes: &[[u8; 32]], reader: &MemTiles) {
    assert_eq!(
        mth(leaf_hashes),
        cp.root,
        "root recomputed from the level-0 tiles differs from the checkpoint"
    );
    if cp.size > 0 {
        let thr = TileHashReader::new(cp.size, Hash(cp.root), reader);
        let th = tlog_tiles::tree_hash(cp.size, &thr)
            .unwrap_or_else(|e| panic!("tlog_tiles::tree_hash over the served tiles: {e}"));
        assert_eq!(
            th.0, cp.root,
            "tlog_tiles::tree_hash differs from the checkpoint root"
        );
    }
}

/// Checks every entry's timestamp and that its chain ends with a configured
/// root, then fetches and checks every issuer the entries name; returns how
/// many there are.
async fn check_chains_and_issuers(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    cp: &CheckpointInfo,
    entries: &[LogEntry],
) -> usize {
    let roots: BTreeSet<[u8; 32]> = roots_der(log).iter().map(|c| sha256(c)).collect();
    let mut fps: BTreeSet<[u8; 32]> = BTreeSet::new();
    for e in entries {
        assert!(
            e.timestamp <= cp.timestamp,
            "entry {} timestamp {} is after the checkpoint timestamp {}",
            e.leaf_index,
            e.timestamp,
            cp.timestamp
        );
        let last = e
            .chain_fingerprints
            .last()
            .unwrap_or_else(|| panic!("entry {} has an empty chain", e.leaf_index));
        assert!(
            roots.contains(last),
            "entry {}: stored chain does not end with a configured root",
            e.leaf_index
        );
        fps.extend(e.chain_fingerprints.iter().copied());
    }
    for fp in &fps {
        let path = format!("issuer/{}", hex(fp));
        let r = get(http, &monitoring_url(base, log, &path)).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert_content_type(&r, "application/pkix-cert", &path);
        assert_immutable(&r, &path);
        assert_eq!(
            &sha256(&decoded_body(&r, &path)),
            fp,
            "{path}: body does not hash to its name"
        );
    }
    fps.len()
}

/// Every submission's SCT verifies and points at the entry the oracle
/// expects, with an inclusion proof over the served tiles; no two share an
/// index. (Not async: the `TileHashReader` is not `Send`.)
fn assert_scts(
    log: &LogHandle,
    cp: &CheckpointInfo,
    entries: &[LogEntry],
    reader: &MemTiles,
    subs: &[Submission],
) {
    let size = cp.size;
    let thr = TileHashReader::new(size, Hash(cp.root), reader);
    let pool = root_pool(log);
    let mut seen = BTreeMap::new();
    for (k, sub) in subs.iter().enumerate() {
        let want = verify_sct(log, &pool, sub);
        let idx = want.leaf_index;
        if let Some(prev) = seen.insert(idx, k) {
            panic!("submissions #{prev} and #{k} both got leaf index {idx}");
        }
        assert!(
            idx < size,
            "SCT leaf index {idx} is not in the published tree of size {size}"
        );
        assert_entry(&entries[idx as usize], &want);
        let proof = tlog_tiles::prove_record(size, idx, &thr)
            .unwrap_or_else(|e| panic!("prove_record({idx}): {e}"));
        tlog_tiles::check_record(
            &proof,
            size,
            Hash(cp.root),
            idx,
            record_hash(&want.merkle_tree_leaf()),
        )
        .unwrap_or_else(|e| panic!("inclusion proof for {idx}: {e}"));
    }
}

/// The logged entry `got` is the one `want` the oracle expects, field by
/// field first, so that a failure names the field.
fn assert_entry(got: &LogEntry, want: &LogEntry) {
    let idx = want.leaf_index;
    assert_eq!(got.is_precert, want.is_precert, "entry {idx}: entry type");
    assert!(
        got.certificate == want.certificate,
        "entry {idx}: certificate/TBS differs from the submitted one{}",
        if want.is_precert {
            " (poison-free TBS)"
        } else {
            ""
        }
    );
    assert_eq!(
        got.issuer_key_hash, want.issuer_key_hash,
        "entry {idx}: issuer_key_hash"
    );
    assert!(
        got.pre_certificate == want.pre_certificate,
        "entry {idx}: pre_certificate"
    );
    assert_eq!(
        got.timestamp, want.timestamp,
        "entry {idx}: timestamp differs from the SCT's"
    );
    assert_eq!(
        got.chain_fingerprints, want.chain_fingerprints,
        "entry {idx}: chain fingerprints (submitted issuers + root)"
    );
    assert_eq!(got, want, "entry {idx}");
}

/// Checks that the partial tiles (hash and data) of the earlier tree `old`
/// are still served byte for byte unchanged now that the tree has
/// `current_size` entries: required while the matching full tile does not
/// exist yet, and checked whenever they are still served (a `.p/W` tile
/// never changes).
pub async fn assert_partial_tiles_kept(
    http: &reqwest::Client,
    base: &str,
    log: &LogHandle,
    old: &VerifiedTree,
    current_size: u64,
) {
    for (l, n, w) in tiles_for(old.checkpoint.size) {
        if w == 256 {
            continue;
        }
        let full_exists = (current_size >> (8 * u32::from(l))) >= (n + 1) * 256;
        let mut objects = vec![(path_of(l, n, w, false), old.hash_tiles[&(l, n)].clone())];
        if l == 0 {
            let first = (n * 256) as usize;
            let bytes: Vec<u8> = old.entries[first..first + w as usize]
                .iter()
                .flat_map(|e| e.tile_leaf())
                .collect();
            objects.push((path_of(l, n, w, true), bytes));
        }
        for (path, want) in objects {
            let r = get(http, &monitoring_url(base, log, &path)).await;
            if r.status == 404 && full_exists {
                continue; // may be dropped once the full tile exists
            }
            assert_eq!(r.status, 200, "GET {path}: partial tile of published size {} must still be served at size {current_size}: {}", old.checkpoint.size, r.text());
            assert_immutable(&r, &path);
            assert!(
                decoded_body(&r, &path) == want,
                "{path} changed between tree sizes {} and {current_size}",
                old.checkpoint.size
            );
        }
    }
}
