//! The one error type of the write-ahead log.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the write-ahead log.
///
/// Damaged data found on open or replay is not an error: it is logged, counted in
/// [`WalMetrics`](super::WalMetrics) and skipped, as described in the [module docs](super).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system call failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done, as a verb phrase: "fsync", "create segment", ….
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The payload is larger than [`WalOptions::max_record_bytes`](super::WalOptions).
    #[error("record of {size} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },
    /// The log was closed, or its writer thread stopped.
    #[error("the write-ahead log is closed")]
    Closed,
    /// Another process (or another `Wal` in this process) has the directory open.
    #[error("the write-ahead log in {dir} is already open elsewhere")]
    Locked { dir: PathBuf },
    /// A segment was written by a newer format version; nothing was changed on disk.
    #[error("segment {path} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },
    /// The options cannot work.
    #[error("invalid write-ahead log options: {0}")]
    InvalidOptions(String),
    /// An fsync failed earlier, so what is on disk is unknown; the log refuses further writes.
    /// Reopening it replays what survived.
    #[error("the write-ahead log refuses writes after an unrecoverable error: {reason}")]
    Failed { reason: String },
}

impl WalError {
    pub(crate) fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Self::Io { action, path: path.as_ref().to_path_buf(), source }
    }

    /// A copy of this error for each of the appends that one failed commit affects.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Io { action, path, source } => {
                Self::Io { action, path: path.clone(), source: io::Error::new(source.kind(), source.to_string()) }
            }
            Self::RecordTooLarge { size, max } => Self::RecordTooLarge { size: *size, max: *max },
            Self::Closed => Self::Closed,
            Self::Locked { dir } => Self::Locked { dir: dir.clone() },
            Self::UnsupportedVersion { path, found, supported } => {
                Self::UnsupportedVersion { path: path.clone(), found: *found, supported: *supported }
            }
            Self::InvalidOptions(reason) => Self::InvalidOptions(reason.clone()),
            Self::Failed { reason } => Self::Failed { reason: reason.clone() },
        }
    }
}
