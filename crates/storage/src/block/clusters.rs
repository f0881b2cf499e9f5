//! A block's clusters, read back from its footer (see `writer` for how they are made).
//!
//! A search that names a service reads only the clusters whose spans include that service:
//! with traces clustered by their root service, a tenth of a block when ten services start
//! traces. Blocks of format version 1 have no cluster list and read as one cluster.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::reader::OpenedBlock;
use super::schema::{META_CLUSTERS, META_SERVICES};

/// One cluster of a block, as the footer records it under [`META_CLUSTERS`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cluster {
    /// The service the cluster is named after ("" for the one cluster of a version 1 block).
    pub(crate) name: String,
    /// Its rows, `[first, end)`.
    pub(crate) rows: [u32; 2],
    /// Positions in the block's sorted `services` of the services its spans have.
    pub(crate) services: Vec<u32>,
}

impl Cluster {
    pub(crate) fn row_range(&self) -> Range<u64> {
        self.rows[0] as u64..self.rows[1] as u64
    }
}

/// The clusters of one block, in row order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Clusters {
    services: Vec<String>,
    clusters: Vec<Cluster>,
}

impl Clusters {
    /// The clusters recorded in the footer of `opened`; one covering every row when there are
    /// none. A list that does not tile the rows is an error.
    pub(crate) fn of(opened: &OpenedBlock) -> Result<Clusters, String> {
        let metadata = opened.metadata().file_metadata();
        let value = |key: &str| {
            metadata.key_value_metadata().and_then(|pairs| pairs.iter().find(|kv| kv.key == key)?.value.clone())
        };
        let num_rows = u32::try_from(metadata.num_rows()).map_err(|_| "more rows than a block holds".to_string())?;
        let services: Vec<String> = match value(META_SERVICES) {
            Some(text) => serde_json::from_str(&text).map_err(|e| format!("{META_SERVICES}: {e}"))?,
            None => Vec::new(),
        };
        let clusters = match value(META_CLUSTERS) {
            Some(text) => serde_json::from_str(&text).map_err(|e| format!("{META_CLUSTERS}: {e}"))?,
            None => {
                let all = (0..services.len() as u32).collect();
                vec![Cluster { name: String::new(), rows: [0, num_rows], services: all }]
            }
        };
        let clusters = Clusters { services, clusters };
        clusters.check(num_rows)?;
        Ok(clusters)
    }

    fn check(&self, num_rows: u32) -> Result<(), String> {
        let mut next = 0;
        for cluster in &self.clusters {
            if cluster.rows[0] != next || cluster.rows[1] < cluster.rows[0] {
                return Err(format!("cluster {:?} does not start where the previous one ends", cluster.name));
            }
            if cluster.services.iter().any(|&s| s as usize >= self.services.len()) {
                return Err(format!("cluster {:?} names a service the block does not list", cluster.name));
            }
            next = cluster.rows[1];
        }
        match next == num_rows {
            true => Ok(()),
            false => Err(format!("clusters cover {next} of {num_rows} rows")),
        }
    }

    /// The name of the cluster holding `row`.
    pub(crate) fn name_at(&self, row: u64) -> Option<&str> {
        let i = self.clusters.partition_point(|c| (c.rows[1] as u64) <= row);
        self.clusters.get(i).filter(|c| c.row_range().contains(&row)).map(|c| c.name.as_str())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.iter()
    }

    /// The rows of the clusters with spans of `service`, in order, adjacent ranges merged.
    pub(crate) fn rows_with_service(&self, service: &str) -> Vec<Range<u64>> {
        let Ok(position) = self.services.binary_search_by(|s| s.as_str().cmp(service)) else {
            return Vec::new();
        };
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for cluster in self.clusters.iter().filter(|c| c.services.contains(&(position as u32))) {
            match ranges.last_mut() {
                Some(last) if last.end == cluster.rows[0] as u64 => last.end = cluster.rows[1] as u64,
                _ => ranges.push(cluster.row_range()),
            }
        }
        ranges
    }
}
