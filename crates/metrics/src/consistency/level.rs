//! Consistency levels and the classification of a stale read from the levels and regions
//! of the read and of the write it missed.
//!
//! Levels are read from `db.consistency_level`, else `cassandra.consistency.level`, else
//! `azure.cosmosdb.consistency.level`, case-insensitively; Cosmos DB's account levels map
//! onto the Cassandra ones they behave like for a single read (`Strong` → `ALL`,
//! `BoundedStaleness`, `Session`, `ConsistentPrefix`, `Eventual` → `ONE`), `SERIAL` and
//! `LOCAL_SERIAL` onto `QUORUM` and `LOCAL_QUORUM` (a Paxos read is a quorum read).
//!
//! A stale read is a **violation** when the replicas the write was acknowledged by and the
//! replicas the read consulted must overlap (Cassandra: R + W > replicas, counted in the
//! scope each level counts in), else it is **expected** of the levels used:
//!
//! | read \ write | `ANY`, `ONE`…`THREE`, `LOCAL_ONE` | `LOCAL_QUORUM` | `QUORUM` | `EACH_QUORUM` | `ALL` |
//! |---|---|---|---|---|---|
//! | `ONE`…`THREE`, `LOCAL_ONE` | expected | expected | expected | expected | violation |
//! | `LOCAL_QUORUM` | expected | violation in the same region, else expected | expected | violation | violation |
//! | `QUORUM` | expected | expected | violation | violation | violation |
//! | `EACH_QUORUM` (not a read level; as `QUORUM`) | expected | expected | violation | violation | violation |
//! | `ALL` | violation | violation | violation | violation | violation |
//!
//! "Same region" compares the region of the replica that served the read with the region of
//! the replica that accepted the write. `TWO` and `THREE` count as `ONE`: with a replication
//! factor of three per region they may overlap, but nothing on the span says so. A read or
//! write without a known level is classified **unknown**.

use std::fmt;

/// A requested consistency level, as Cassandra names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Any,
    One,
    LocalOne,
    Two,
    Three,
    LocalQuorum,
    Quorum,
    EachQuorum,
    All,
}

impl Level {
    /// Parses a level attribute value (Cassandra's names, `SERIAL`, `LOCAL_SERIAL` and Cosmos
    /// DB's names), ignoring case and `-`/`_`/space differences.
    pub fn parse(text: &str) -> Option<Level> {
        let normalized: String =
            text.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
        Some(match normalized.as_str() {
            "ANY" => Level::Any,
            "ONE" | "EVENTUAL" | "SESSION" | "CONSISTENTPREFIX" | "BOUNDEDSTALENESS" => Level::One,
            "LOCALONE" => Level::LocalOne,
            "TWO" => Level::Two,
            "THREE" => Level::Three,
            "LOCALQUORUM" | "LOCALSERIAL" => Level::LocalQuorum,
            "QUORUM" | "SERIAL" => Level::Quorum,
            "EACHQUORUM" => Level::EachQuorum,
            "ALL" | "STRONG" => Level::All,
            _ => return None,
        })
    }

    /// The name as Cassandra writes it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Any => "ANY",
            Level::One => "ONE",
            Level::LocalOne => "LOCAL_ONE",
            Level::Two => "TWO",
            Level::Three => "THREE",
            Level::LocalQuorum => "LOCAL_QUORUM",
            Level::Quorum => "QUORUM",
            Level::EachQuorum => "EACH_QUORUM",
            Level::All => "ALL",
        }
    }

    /// How many replicas the level waits for, as a rank: a read "weaker than the write it
    /// follows" has a lower rank. `ANY` < `ONE` = `LOCAL_ONE` < `TWO` < `THREE` <
    /// `LOCAL_QUORUM` < `QUORUM` < `EACH_QUORUM` < `ALL`.
    pub fn strength(self) -> u8 {
        match self {
            Level::Any => 0,
            Level::One | Level::LocalOne => 1,
            Level::Two => 2,
            Level::Three => 3,
            Level::LocalQuorum => 4,
            Level::Quorum => 5,
            Level::EachQuorum => 6,
            Level::All => 7,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a stale read was to be expected of the levels used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Classification {
    /// The levels do not promise the read sees the write.
    Expected,
    /// The levels promise overlapping replicas: the store broke its promise (or the
    /// instrumentation is wrong).
    Violation,
    /// The read or the write carries no known level.
    Unknown,
}

impl Classification {
    pub fn name(self) -> &'static str {
        match self {
            Classification::Expected => "expected",
            Classification::Violation => "violation",
            Classification::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Classification> {
        [Classification::Expected, Classification::Violation, Classification::Unknown]
            .into_iter()
            .find(|c| c.name() == text)
    }
}

/// Classifies a stale read (see the module's table) and says why in a sentence.
pub fn classify(read_opt: Option<Level>, write_opt: Option<Level>, same_region: bool) -> (Classification, String) {
    let (Some(read), Some(write)) = (read_opt, write_opt) else {
        return (Classification::Unknown, "the read or the write names no known consistency level".to_string());
    };
    use Level::*;
    let weak = |l: Level| matches!(l, Any | One | LocalOne | Two | Three);
    let overlap = match (read, write) {
        (All, _) | (_, All) => true,
        (r, _) if weak(r) => false,
        (_, w) if weak(w) => false,
        (LocalQuorum, LocalQuorum) => same_region,
        (LocalQuorum, EachQuorum) => true,
        (LocalQuorum, Quorum) => false,
        (Quorum | EachQuorum, Quorum | EachQuorum) => true,
        (Quorum | EachQuorum, LocalQuorum) => false,
        _ => false,
    };
    let place = if same_region { "in the same region" } else { "in another region" };
    if overlap {
        (Classification::Violation, format!("a {read} read must overlap the replicas of a {write} write {place}"))
    } else {
        (Classification::Expected, format!("a {read} read need not see a {write} write {place}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_with_aliases_and_any_case() {
        assert_eq!(Level::parse("local_quorum"), Some(Level::LocalQuorum));
        assert_eq!(Level::parse("LOCAL_QUORUM"), Some(Level::LocalQuorum));
        assert_eq!(Level::parse("LocalSerial"), Some(Level::LocalQuorum));
        assert_eq!(Level::parse("Strong"), Some(Level::All));
        assert_eq!(Level::parse("Session"), Some(Level::One));
        assert_eq!(Level::parse("bounded-staleness"), Some(Level::One));
        assert_eq!(Level::parse("SOMETIMES"), None);
        assert!(Level::One.strength() < Level::LocalQuorum.strength());
    }

    #[test]
    fn the_classification_table() {
        use Classification::{Expected as E, Violation as V};
        use Level::*;
        // (read, write, same region, expected classification)
        let cases = [
            (One, LocalQuorum, false, E),
            (One, LocalQuorum, true, E),
            (LocalOne, Quorum, true, E),
            (One, All, false, V),
            (LocalQuorum, LocalQuorum, false, E),
            (LocalQuorum, LocalQuorum, true, V),
            (LocalQuorum, One, true, E),
            (LocalQuorum, Quorum, true, E),
            (LocalQuorum, EachQuorum, false, V),
            (Quorum, Quorum, false, V),
            (Quorum, LocalQuorum, true, E),
            (Quorum, One, false, E),
            (All, One, false, V),
            (All, Any, true, V),
            (Quorum, All, false, V),
        ];
        for (read, write, same_region, expected) in cases {
            assert_eq!(
                classify(Some(read), Some(write), same_region).0,
                expected,
                "{read} after {write} {same_region}"
            );
        }
        assert_eq!(classify(None, Some(One), true).0, Classification::Unknown);
        assert_eq!(
            classify(Some(One), Some(LocalQuorum), false).1,
            "a ONE read need not see a LOCAL_QUORUM write in another region"
        );
    }
}
