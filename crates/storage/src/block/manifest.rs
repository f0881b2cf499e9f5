//! The manifest: which blocks are live, as a sequence of immutable versions.
//!
//! Version `n` is the object `{prefix}/manifest/{n:020}.json` holding a JSON [`Manifest`]
//! whose `version` is `n`. The live set is the highest version present; version 0 is the
//! empty manifest and is never written.
//!
//! Committing writes version `n + 1` with `PutMode::Create`: a local rename-without-replace,
//! or a conditional put on object storage. Of two writers that both loaded version `n`, one
//! wins and the other gets [`BlockError::ManifestConflict`] and must reload and reapply.
//!
//! Old versions are pruned, keeping the newest few. Pruning opens one hole: a writer that
//! stalled long enough for its base version's successor to be pruned could create that
//! object again. So after a put, the committer lists the versions and treats any version
//! above its own as a conflict (it deletes its stale object, which no reader picks because a
//! higher version exists).
//!
//! Rules for callers: delete a block's objects only after a committed manifest no longer
//! lists it; listing ignores every name that is not `{20 digits}.json` (hidden files,
//! temporary files of other tools).

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::{BlockError, BlockMeta};

/// The live blocks at one version.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Manifest {
    pub version: u64,
    /// Sorted by block ID (creation order).
    pub blocks: Vec<BlockMeta>,
    /// Opaque to this module: the caller records that WAL records below this sequence number
    /// are in blocks.
    pub wal_checkpoint_seq: u64,
}

impl Manifest {
    /// A copy without the blocks `removed_ids` and with `added` (replacing any block with the
    /// same ID), at the same version: commit it to make it version + 1.
    pub fn apply(&self, removed_ids: &[String], added: Vec<BlockMeta>) -> Manifest {
        let mut blocks: Vec<BlockMeta> = self
            .blocks
            .iter()
            .filter(|b| !removed_ids.contains(&b.id) && !added.iter().any(|a| a.id == b.id))
            .cloned()
            .collect();
        blocks.extend(added);
        blocks.sort_by(|a, b| a.id.cmp(&b.id));
        Manifest { version: self.version, blocks, wal_checkpoint_seq: self.wal_checkpoint_seq }
    }

    /// A copy recording a new WAL checkpoint.
    pub fn with_wal_checkpoint(&self, wal_checkpoint_seq: u64) -> Manifest {
        Manifest { wal_checkpoint_seq, ..self.clone() }
    }

    pub fn block(&self, id: &str) -> Option<&BlockMeta> {
        self.blocks.iter().find(|b| b.id == id)
    }

    /// Whether every ID in `ids` is live (a compaction's inputs must still be, to commit it).
    pub fn contains_all(&self, ids: &[String]) -> bool {
        ids.iter().all(|id| self.block(id).is_some())
    }

    pub fn total_size_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.size_bytes).sum()
    }

    pub fn num_spans(&self) -> u64 {
        self.blocks.iter().map(|b| b.num_spans).sum()
    }
}

pub(crate) fn manifest_dir(prefix: &Path) -> Path {
    prefix.clone().join("manifest")
}

pub(crate) fn manifest_path(prefix: &Path, version: u64) -> Path {
    manifest_dir(prefix).join(format!("{version:020}.json").as_str())
}

/// Parses a manifest object's file name; `None` for anything else.
pub(crate) fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The versions present, ascending.
pub(crate) async fn list_versions(store: &dyn ObjectStore, prefix: &Path) -> Result<Vec<u64>, BlockError> {
    let dir = manifest_dir(prefix);
    let objects: Vec<_> = store.list(Some(&dir)).try_collect().await?;
    let mut versions: Vec<u64> = objects
        .iter()
        .filter(|object| object.location.parts_count() == dir.parts_count() + 1)
        .filter_map(|object| object.location.filename().and_then(parse_manifest_name))
        .collect();
    versions.sort_unstable();
    Ok(versions)
}

/// The latest manifest, or the empty manifest (version 0) when there is none.
pub(crate) async fn load_latest(store: &dyn ObjectStore, prefix: &Path) -> Result<Manifest, BlockError> {
    // A concurrent commit may prune the version we listed; relist a few times.
    for _ in 0..5 {
        let Some(&version) = list_versions(store, prefix).await?.last() else {
            return Ok(Manifest::default());
        };
        let path = manifest_path(prefix, version);
        match store.get(&path).await {
            Ok(result) => {
                let bytes = result.bytes().await?;
                let manifest: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| BlockError::CorruptManifest { path: path.to_string(), reason: e.to_string() })?;
                if manifest.version != version {
                    return Err(BlockError::CorruptManifest {
                        path: path.to_string(),
                        reason: format!("holds version {}", manifest.version),
                    });
                }
                return Ok(manifest);
            }
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(BlockError::ManifestConflict { version: 0 })
}

/// Commits `manifest` as version `manifest.version + 1`, then prunes versions older than the
/// newest `keep_versions`.
pub(crate) async fn commit(
    store: &dyn ObjectStore,
    prefix: &Path,
    manifest: &Manifest,
    keep_versions: usize,
) -> Result<Manifest, BlockError> {
    let version = manifest.version + 1;
    let committed = Manifest { version, ..manifest.clone() };
    let body = serde_json::to_vec(&committed).expect("a manifest always serializes");
    let path = manifest_path(prefix, version);
    let options = PutOptions { mode: PutMode::Create, ..Default::default() };
    match store.put_opts(&path, PutPayload::from(body), options).await {
        Ok(_) => {}
        Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
            return Err(BlockError::ManifestConflict { version });
        }
        Err(error) => return Err(error.into()),
    }
    let versions = list_versions(store, prefix).await?;
    if versions.last().is_some_and(|latest| *latest > version) {
        // Our base was pruned and re-created: a newer manifest already exists.
        if let Err(error) = store.delete(&path).await {
            warn!(%error, version, "could not delete a stale manifest version");
        }
        return Err(BlockError::ManifestConflict { version });
    }
    let keep_from = version.saturating_sub(keep_versions.max(1) as u64 - 1);
    for old in versions.into_iter().filter(|v| *v < keep_from) {
        match store.delete(&manifest_path(prefix, old)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => debug!(version = old, "pruned manifest version"),
            Err(error) => warn!(%error, version = old, "could not prune a manifest version"),
        }
    }
    Ok(committed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> BlockMeta {
        BlockMeta {
            id: id.to_owned(),
            level: 0,
            min_start_unix_nanos: 0,
            max_start_unix_nanos: 0,
            max_end_unix_nanos: 0,
            max_trace_start_unix_nanos: None,
            num_spans: 1,
            num_traces: 1,
            size_bytes: 10,
            services: vec![],
            operations: vec![],
            created_unix_nanos: 0,
        }
    }

    #[test]
    fn apply_removes_adds_and_keeps_blocks_sorted() {
        let base = Manifest { version: 3, blocks: vec![meta("a"), meta("c")], wal_checkpoint_seq: 7 };
        let next = base.apply(&["a".to_owned()], vec![meta("d"), meta("b")]);
        let ids: Vec<&str> = next.blocks.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "d"]);
        assert_eq!((next.version, next.wal_checkpoint_seq), (3, 7));
        assert_eq!(next.total_size_bytes(), 30);
        assert!(next.contains_all(&["b".to_owned(), "d".to_owned()]));
        assert!(!next.contains_all(&["a".to_owned()]));
        assert_eq!(next.with_wal_checkpoint(9).wal_checkpoint_seq, 9);
    }

    #[test]
    fn only_well_formed_names_are_manifest_versions() {
        assert_eq!(parse_manifest_name("00000000000000000042.json"), Some(42));
        assert_eq!(parse_manifest_name(".00000000000000000042.json"), None);
        assert_eq!(parse_manifest_name("00000000000000000042.json.tmp"), None);
        assert_eq!(parse_manifest_name("42.json"), None);
        assert_eq!(parse_manifest_name("0000000000000000004x.json"), None);
    }
}
