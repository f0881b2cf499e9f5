//! The scenarios: what each changes in the simulated system.
//!
//! | scenario | injects |
//! |---|---|
//! | `normal` | replication delays of 5–60 ms between every pair of regions; rare price updates |
//! | `replication-lag` | 2–6 s of delay between us-east-1 and eu-west-1 (both ways): carts viewed in the other region right after an add come back empty or short |
//! | `slow-inventory` | inventory runs [`SLOW_INVENTORY_VERSION`] with a new unindexed stock query of 150–900 ms; every caller upstream is slower |
//! | `price-conflicts` | price updates come in pairs: the same catalog key written from two regions a few ms apart, resolved last-write-wins on every replica |

use crate::bench::rng::SplitMix64;

use super::topology::{Region, SLOW_INVENTORY_VERSION, Service};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Normal,
    ReplicationLag,
    SlowInventory,
    PriceConflicts,
}

/// The two regions between which `replication-lag` delays replication.
pub const LAGGING_PAIR: (Region, Region) = (Region(0), Region(1));

const MILLI: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Normal => "normal",
            Scenario::ReplicationLag => "replication-lag",
            Scenario::SlowInventory => "slow-inventory",
            Scenario::PriceConflicts => "price-conflicts",
        }
    }

    /// Parses a scenario name as typed on stdin.
    pub fn parse(text: &str) -> Option<Scenario> {
        <Scenario as clap::ValueEnum>::from_str(text.trim(), true).ok()
    }

    /// The replication delay from `source` to every replica (0 for `source` itself).
    pub fn replication_delays_nanos(self, source: Region, rng: &mut SplitMix64) -> [u64; 3] {
        let mut delays = [0; 3];
        for replica in Region::all().filter(|r| *r != source) {
            let lagging = self == Scenario::ReplicationLag
                && [LAGGING_PAIR, (LAGGING_PAIR.1, LAGGING_PAIR.0)].contains(&(source, replica));
            delays[replica.0] = if lagging {
                rng.uniform(2.0 * SECOND as f64, 6.0 * SECOND as f64) as u64
            } else {
                rng.uniform(5.0 * MILLI as f64, 60.0 * MILLI as f64) as u64
            };
        }
        delays
    }

    /// The version `service` runs under this scenario.
    pub fn version(self, service: Service) -> &'static str {
        match (self, service) {
            (Scenario::SlowInventory, Service::Inventory) => SLOW_INVENTORY_VERSION,
            _ => service.base_version(),
        }
    }

    /// Inventory's stock lookup runs the new unindexed query.
    pub fn slow_stock_query(self) -> bool {
        self == Scenario::SlowInventory
    }

    /// Chance that a trace slot is a price update rather than a shopper's step.
    pub fn price_update_probability(self) -> f64 {
        match self {
            Scenario::PriceConflicts => 0.15,
            _ => 0.02,
        }
    }

    /// Price updates are written twice, from two regions, a few ms apart.
    pub fn concurrent_price_updates(self) -> bool {
        self == Scenario::PriceConflicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_lagging_pair_lags() {
        let mut rng = SplitMix64::new(1);
        for _ in 0..100 {
            let from_us = Scenario::ReplicationLag.replication_delays_nanos(Region(0), &mut rng);
            assert_eq!(from_us[0], 0);
            assert!((2 * SECOND..6 * SECOND).contains(&from_us[1]), "{from_us:?}");
            assert!(from_us[2] < 60 * MILLI);
            let from_eu = Scenario::ReplicationLag.replication_delays_nanos(Region(1), &mut rng);
            assert!(from_eu[0] >= 2 * SECOND && from_eu[2] < 60 * MILLI);
            let normal = Scenario::Normal.replication_delays_nanos(Region(0), &mut rng);
            assert!(normal[1] >= 5 * MILLI && normal[1] < 60 * MILLI);
        }
    }

    #[test]
    fn scenario_names_parse_back() {
        for scenario in [Scenario::Normal, Scenario::ReplicationLag, Scenario::SlowInventory, Scenario::PriceConflicts]
        {
            assert_eq!(Scenario::parse(&format!(" {}\n", scenario.name())), Some(scenario));
        }
        assert_eq!(Scenario::parse("fast"), None);
    }
}
