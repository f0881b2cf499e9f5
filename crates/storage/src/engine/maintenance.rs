//! Background work: flushing the head to blocks, compaction, retention, deleting removed
//! blocks. Each manifest change goes through `BlockStore::update_manifest`, which reloads the
//! latest version and re-applies the change after a conflict or an unclear failure, so one
//! failed commit never leaves the engine stuck behind the stored manifest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::RwLock;
use sextant_model::Span;
use tracing::{info, warn};

use super::{BLOCK_DELETE_GRACE, Engine, EngineError, MANIFEST_ATTEMPTS, now_unix_nanos, remove_unlisted_blocks, warm};
use crate::block::{BlockError, BlockMeta, compaction, encode_block, retention};
use crate::head::Head;

/// Puts the frozen head part back if a flush stops before its block is committed — by an
/// error or by its future being dropped — so the next flush retries those spans.
struct ThawOnDrop<'a> {
    head: &'a RwLock<Head>,
    armed: bool,
}

impl Drop for ThawOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.head.write().thaw();
        }
    }
}

impl Engine {
    /// Whether the head is due for a flush by size or age.
    pub fn flush_due(&self) -> bool {
        let head = self.head.read();
        let active = head.active();
        !active.is_empty()
            && (active.num_spans() >= self.options.head_max_spans
                || active.size_bytes() >= self.options.head_max_bytes
                || active.age().is_some_and(|age| age >= self.options.head_max_age))
    }

    /// Writes the head to blocks of at most `block_max_spans` spans, ordered by trace start
    /// (see [`HeadPart::groups_by_start`](crate::head::HeadPart::groups_by_start)), commits them
    /// to the manifest together with the WAL checkpoint, then removes the WAL segments they
    /// cover. A no-op on an empty head.
    pub async fn flush(&self) -> Result<(), EngineError> {
        let _manifest_guard = self.manifest_lock.lock().await;
        let (checkpoint_seq, frozen) = {
            let _gate = self.append_gate.write().await;
            if self.head.read().active().is_empty() {
                return Ok(());
            }
            let checkpoint_seq = self.wal.rotate().await?;
            let frozen = self.head.write().freeze().expect("a frozen part is always released or thawed");
            (checkpoint_seq, frozen)
        };
        let mut thaw = ThawOnDrop { head: &self.head, armed: true };
        let num_spans = frozen.num_spans();
        let committed = async {
            // The frozen part is shared with readers; blocks are encoded from it in place.
            let part = frozen.clone();
            let max_spans = self.options.block_max_spans;
            let groups =
                tokio::task::spawn_blocking(move || part.groups_by_start(max_spans)).await.map_err(BlockError::from)?;
            // Blocks are encoded one per core at once: appends that wait for this flush to make
            // room in the head get it sooner. Written in order as they come.
            let mut encoding = futures::stream::iter(groups)
                .map(|mut group| {
                    let (part, options) = (frozen.clone(), self.blocks.options().clone());
                    tokio::task::spawn_blocking(move || {
                        // In trace order, the spans come mostly in block order already, and the
                        // encoder's sort finds runs instead of chasing pointers at random.
                        group.sort_unstable();
                        let spans: Vec<&Span> =
                            group.iter().flat_map(|id| part.trace(id).unwrap_or_default()).collect();
                        encode_block(&options, spans, 0)
                    })
                })
                .buffered(self.search_parallelism);
            let mut metas = Vec::new();
            while let Some(encoded) = encoding.next().await {
                let encoded = encoded.map_err(BlockError::from)??;
                metas.push(self.blocks.put_block(encoded).await?);
            }
            let manifest = self
                .blocks
                .update_manifest(MANIFEST_ATTEMPTS, |current| {
                    let checkpoint = checkpoint_seq.max(current.wal_checkpoint_seq);
                    Some(current.apply(&[], metas.clone()).with_wal_checkpoint(checkpoint))
                })
                .await?;
            Ok::<_, EngineError>((metas, manifest))
        }
        .await;
        drop(frozen);
        match committed {
            Ok((metas, manifest)) => {
                *self.manifest.write() = Arc::new(manifest);
                let released = self.head.write().release_frozen();
                thaw.armed = false;
                self.head_room.notify_waiters();
                // Freeing the spans takes a while: it runs with the head unlocked, appends going
                // on, and the next flush waits for it so memory stays bounded.
                let _ = tokio::task::spawn_blocking(move || drop(released)).await;
                warm(&self.blocks, &metas, &self.metrics.blocks_cold).await;
                self.wal.remove_segments_before(checkpoint_seq)?;
                self.metrics.flushes.inc();
                let size_bytes: u64 = metas.iter().map(|meta| meta.size_bytes).sum();
                info!(num_blocks = metas.len(), num_spans, size_bytes, "flushed head to blocks");
                self.update_gauges();
                Ok(())
            }
            Err(error) => {
                drop(thaw);
                self.metrics.flush_failures.inc();
                warn!(%error, num_spans, "head flush failed; spans stay in the head and the log");
                Err(error)
            }
        }
    }

    /// Flushes when the head is due. Errors are logged; the next round retries.
    pub async fn flush_if_due(&self) {
        if self.flush_due() {
            let _ = self.flush().await;
        }
    }

    /// Merges small blocks as the compaction policy says; duplicates are dropped. The merge
    /// runs without the manifest lock; the commit checks that every input is still live.
    pub async fn compact(&self) -> Result<usize, EngineError> {
        let _one_at_a_time = self.compaction_lock.lock().await;
        let jobs = compaction::plan(&self.manifest_snapshot().blocks, &self.options.compaction);
        let mut done = 0;
        for job in jobs {
            let snapshot = self.manifest_snapshot();
            let inputs: Vec<BlockMeta> = snapshot.blocks.iter().filter(|b| job.contains(&b.id)).cloned().collect();
            if inputs.len() < 2 {
                continue;
            }
            match self.compact_one(&job, &inputs).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(error) => {
                    self.metrics.compaction_failures.inc();
                    warn!(%error, "compaction failed");
                    return Err(error);
                }
            }
        }
        self.update_gauges();
        Ok(done)
    }

    /// One compaction job; `false` when its inputs changed meanwhile and it was dropped.
    pub(super) async fn compact_one(&self, job: &[String], inputs: &[BlockMeta]) -> Result<bool, EngineError> {
        let outputs = self.blocks.compact(inputs, self.options.compaction.target_spans).await?;
        let _manifest_guard = self.manifest_lock.lock().await;
        let committed = self
            .blocks
            .update_manifest(MANIFEST_ATTEMPTS, |current| {
                current.contains_all(job).then(|| current.apply(job, outputs.clone()))
            })
            .await?;
        let applied = outputs.iter().all(|output| committed.block(&output.id).is_some());
        *self.manifest.write() = Arc::new(committed);
        if applied {
            warm(&self.blocks, &outputs, &self.metrics.blocks_cold).await;
            self.schedule_deletes(inputs.to_vec());
            self.metrics.compactions.inc();
            let num_spans: u64 = outputs.iter().map(|output| output.num_spans).sum();
            info!(num_inputs = job.len(), num_outputs = outputs.len(), num_spans, "compacted blocks");
        } else {
            // An input left the manifest meanwhile (retention): the outputs are not needed.
            self.schedule_deletes(outputs);
        }
        Ok(applied)
    }

    /// Removes blocks past the retention age or beyond the total size limit.
    pub async fn apply_retention(&self, now_unix_nanos: u64) -> Result<usize, EngineError> {
        let _manifest_guard = self.manifest_lock.lock().await;
        let max_age_nanos = self.options.retention.as_nanos().min(u64::MAX as u128) as u64;
        let mut expired: Vec<String> = Vec::new();
        let committed = self
            .blocks
            .update_manifest(MANIFEST_ATTEMPTS, |current| {
                expired = retention::plan(&current.blocks, now_unix_nanos, max_age_nanos, self.options.max_total_bytes);
                (!expired.is_empty()).then(|| current.apply(&expired, Vec::new()))
            })
            .await?;
        let before = self.manifest_snapshot();
        let removed: Vec<BlockMeta> = before
            .blocks
            .iter()
            .filter(|b| committed.block(&b.id).is_none() && expired.contains(&b.id))
            .cloned()
            .collect();
        *self.manifest.write() = Arc::new(committed);
        if removed.is_empty() {
            return Ok(0);
        }
        self.metrics.blocks_deleted_by_retention.inc_by(removed.len() as u64);
        info!(num_blocks = removed.len(), "retention removed blocks");
        let count = removed.len();
        self.schedule_deletes(removed);
        self.update_gauges();
        Ok(count)
    }

    /// Compaction then retention; errors are logged and retried next round.
    pub async fn compact_and_expire(&self) {
        let _ = self.compact().await;
        if let Err(error) = self.apply_retention(now_unix_nanos()).await {
            warn!(%error, "retention failed");
        }
        self.delete_expired_blocks(BLOCK_DELETE_GRACE).await;
    }

    fn schedule_deletes(&self, blocks: Vec<BlockMeta>) {
        let now = Instant::now();
        self.pending_deletes.lock().extend(blocks.into_iter().map(|b| (now, b)));
    }

    /// Deletes blocks removed from the manifest at least `grace` ago.
    pub async fn delete_expired_blocks(&self, grace: Duration) {
        let due: Vec<BlockMeta> = {
            let mut pending = self.pending_deletes.lock();
            let (due, keep): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(at, _)| at.elapsed() >= grace);
            *pending = keep;
            due.into_iter().map(|(_, b)| b).collect()
        };
        for block in due {
            if let Err(error) = self.blocks.delete_block(&block).await {
                warn!(%error, block = %block.id, "could not delete block; retrying later");
                self.pending_deletes.lock().push((Instant::now(), block));
            }
        }
    }

    /// Flushes the head, deletes blocks waiting for deletion and the outputs of a compaction
    /// abandoned by the stop (the next start would remove them too, but until then they take
    /// disk space no manifest accounts for); called on shutdown.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        self.flush().await?;
        self.delete_expired_blocks(Duration::ZERO).await;
        // No flush or compaction writes blocks while both locks are held.
        let _compaction = self.compaction_lock.lock().await;
        let _manifest = self.manifest_lock.lock().await;
        remove_unlisted_blocks(&self.blocks, &self.manifest_snapshot()).await;
        Ok(())
    }
}
