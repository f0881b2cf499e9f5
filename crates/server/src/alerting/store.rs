//! The rules created through the API, kept in one JSON file,
//! `{data_dir}/alerting/rules.json`: `{"version": 1, "rules": [rule, …]}`.
//!
//! Every change rewrites the whole file atomically: the new content goes to `rules.json.tmp`,
//! which is fsynced, renamed over `rules.json`, and the directory is fsynced. A crash leaves
//! either the old or the new file; a leftover temporary file is ignored and overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::rule::Rule;

const FILE_NAME: &str = "rules.json";
const TEMP_FILE_NAME: &str = "rules.json.tmp";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid rules file: {message}")]
    Corrupt { path: PathBuf, message: String },
}

#[derive(Serialize, Deserialize)]
struct RulesFile {
    version: u32,
    rules: Vec<Rule>,
}

/// Where the API's rules are kept.
#[derive(Clone, Debug)]
pub struct RuleStore {
    dir: PathBuf,
}

impl RuleStore {
    pub fn new(data_dir: &Path) -> RuleStore {
        RuleStore { dir: data_dir.join("alerting") }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The stored rules; none when the file does not exist yet.
    pub fn load(&self) -> Result<Vec<Rule>, StoreError> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StoreError::Io { action: "read", path, source }),
        };
        let file: RulesFile = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt { path: path.clone(), message: e.to_string() })?;
        if file.version != FORMAT_VERSION {
            return Err(StoreError::Corrupt { path, message: format!("unknown version {}", file.version) });
        }
        for rule in &file.rules {
            rule.validate().map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                message: format!("rule {:?}: {e}", rule.name),
            })?;
        }
        Ok(file.rules)
    }

    /// Replaces the stored rules with `rules`, atomically. Blocks on fsync: call it on the
    /// blocking pool.
    pub fn save(&self, rules: &[Rule]) -> Result<(), StoreError> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { action, path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let body = serde_json::to_vec_pretty(&RulesFile { version: FORMAT_VERSION, rules: rules.to_vec() })
            .expect("rules serialize");
        let temp = self.dir.join(TEMP_FILE_NAME);
        let mut file = std::fs::File::create(&temp).map_err(io("create", &temp))?;
        file.write_all(&body).map_err(io("write", &temp))?;
        file.sync_all().map_err(io("fsync", &temp))?;
        drop(file);
        let path = self.path();
        std::fs::rename(&temp, &path).map_err(io("rename to", &path))?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io("fsync", &self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str) -> Rule {
        serde_json::from_value(serde_json::json!({
            "name": name, "expr": {"metric": "call_rate", "service": "cart"}, "op": "<", "threshold": 1.0,
        }))
        .unwrap()
    }

    #[test]
    fn saved_rules_load_back_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = RuleStore::new(dir.path());
        assert!(store.load().unwrap().is_empty());
        store.save(&[rule("a"), rule("b")]).unwrap();
        assert_eq!(store.load().unwrap(), [rule("a"), rule("b")]);
        store.save(&[rule("b")]).unwrap();
        assert_eq!(store.load().unwrap(), [rule("b")]);
        assert!(!dir.path().join("alerting").join(TEMP_FILE_NAME).exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = RuleStore::new(dir.path());
        std::fs::create_dir_all(dir.path().join("alerting")).unwrap();
        std::fs::write(store.path(), b"{\"version\": 1, \"rules\": [{}]}").unwrap();
        let error = store.load().unwrap_err().to_string();
        assert!(error.contains("rules.json"), "{error}");
    }
}
