//! Positional de-duplication: which changes of a source this partition has written.
//!
//! A source that gives every change a position growing in emission order lets the worker
//! drop a change it wrote already when the source sends it again (a collector or a
//! Debezium connector re-emitting after a crash, a producer retry). The positions are ours,
//! `(commit, tx, index)`, where every event has its own; and Debezium PostgreSQL's
//! `(commit LSN, change LSN)` from `source.sequence`, where **both halves of a
//! primary-key change (a delete of the old key and a create of the new one) share one
//! position**, because they come from one WAL record.
//!
//! ## The rule
//! Per source key, the partition keeps the highest position written and the digests of the
//! changes written at exactly that position. An event at position `p` with digest `c`:
//! - `p` below the highest: a duplicate (dropped, counted in `rtdp_duplicates_dropped_total`);
//! - `p` equal to the highest: a duplicate only when `c` is among the changes written at
//!   that position; any other change there is written, and its digest joins them;
//! - `p` above the highest: written; the highest becomes `p` with `{c}`.
//!
//! ## The same change
//! Two events are the same change when they have the same source key, the same position,
//! and the same [`change_digest`]: a 64-bit hash of the operation, the schema, the table,
//! and the exact JSON text of the row image the event carries (`after`; `before` for a
//! delete). A re-emission of a change repeats all of these, byte for byte (the row is
//! read from the same log record and serialised the same way); the two halves of a key
//! change differ in operation and row. Both the highest position and its digests are
//! committed in the partition's manifest with the files, so the rule holds across a
//! checkpoint that falls between two events at one position and across a restart right
//! after the first of them.
//!
//! A manifest written before the digests were kept has a position without digests: an
//! event at exactly that position is then written (it cannot be told from the second half
//! of a key change), so the first such change after an upgrade may be written twice, never
//! lost; it keeps its `_event_id`, so readers can tell.

use rtdp_core::model::{Op, Position};
use std::collections::{BTreeMap, HashMap};

/// Where an event sits in its source's emission order, and which change it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    /// Identity of the position sequence (positions compare only within one source).
    pub source: String,
    pub position: Position,
    /// [`change_digest`] of the event.
    pub change: u64,
}

/// The highest position written for one source, with the changes written at it
/// (`None`: not known, from a manifest of an older version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highest {
    pub position: Position,
    pub changes: Option<Vec<u64>>,
}

impl Highest {
    /// Whether `d` (of this source) was written already.
    fn covers(&self, d: &Dedup) -> bool {
        match d.position.cmp(&self.position) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => {
                self.changes.as_ref().is_some_and(|c| c.contains(&d.change))
            }
            std::cmp::Ordering::Greater => false,
        }
    }
}

/// Committed and in-flight dedup state of one partition.
#[derive(Debug, Clone, Default)]
pub struct DedupState {
    committed: BTreeMap<String, Highest>,
    inflight: HashMap<String, Highest>,
}

impl DedupState {
    pub fn new(committed: BTreeMap<String, Highest>) -> Self {
        DedupState {
            committed,
            inflight: HashMap::new(),
        }
    }

    fn current(&self, source: &str) -> Option<&Highest> {
        self.inflight
            .get(source)
            .or_else(|| self.committed.get(source))
    }

    /// Whether the change was written already (committed or in this epoch).
    pub fn is_duplicate(&self, d: &Dedup) -> bool {
        self.current(&d.source).is_some_and(|h| h.covers(d))
    }

    /// Records a written change in the open epoch (one that is not a duplicate, so its
    /// position is at or above the highest). Allocates nothing once the source is in the
    /// epoch: this runs for every event written.
    pub fn record(&mut self, d: Dedup) {
        if let Some(h) = self.inflight.get_mut(&d.source) {
            let changes = h.changes.get_or_insert_with(Vec::new);
            if h.position != d.position {
                h.position = d.position;
                changes.clear();
            }
            changes.push(d.change);
            return;
        }
        let mut changes = match self.committed.get(&d.source) {
            Some(h) if h.position == d.position => h.changes.clone().unwrap_or_default(),
            _ => Vec::new(),
        };
        changes.push(d.change);
        self.inflight.insert(
            d.source,
            Highest {
                position: d.position,
                changes: Some(changes),
            },
        );
    }

    /// The state a checkpoint commits: committed plus the open epoch.
    pub fn to_commit(&self) -> BTreeMap<String, Highest> {
        let mut all = self.committed.clone();
        for (k, h) in &self.inflight {
            all.insert(k.clone(), h.clone());
        }
        all
    }

    /// After a successful commit of `committed`.
    pub fn committed(&mut self, committed: BTreeMap<String, Highest>) {
        self.committed = committed;
        self.inflight.clear();
    }

    /// Drops the open epoch.
    pub fn abort(&mut self) {
        self.inflight.clear();
    }
}

/// The manifest's two maps (`positions`, `changesAtPosition`) from the state.
pub fn to_manifest(
    state: &BTreeMap<String, Highest>,
) -> (BTreeMap<String, Position>, BTreeMap<String, Vec<String>>) {
    let positions = state
        .iter()
        .map(|(k, h)| (k.clone(), h.position.clone()))
        .collect();
    let changes = state
        .iter()
        .filter_map(|(k, h)| {
            let c = h.changes.as_ref()?;
            Some((k.clone(), c.iter().map(|d| format!("{d:016x}")).collect()))
        })
        .collect();
    (positions, changes)
}

/// The state from the manifest's two maps. A digest that is not 16 hex digits is an
/// error naming the source key.
pub fn from_manifest(
    positions: BTreeMap<String, Position>,
    mut changes: BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Highest>, String> {
    let mut out = BTreeMap::new();
    for (k, position) in positions {
        let changes = match changes.remove(&k) {
            Some(list) => Some(
                list.iter()
                    .map(|t| {
                        u64::from_str_radix(t, 16)
                            .ok()
                            .filter(|_| t.len() == 16)
                            .ok_or_else(|| {
                                format!("changesAtPosition of {k:?} holds {t:?}, not 16 hex digits")
                            })
                    })
                    .collect::<Result<Vec<u64>, String>>()?,
            ),
            None => None,
        };
        out.insert(k, Highest { position, changes });
    }
    if let Some(k) = changes.keys().next() {
        return Err(format!(
            "changesAtPosition names source {k:?}, which has no position"
        ));
    }
    Ok(out)
}

/// The digest of one change: operation, schema, table and the exact JSON text of its row
/// image, hashed 8 bytes at a time. Committed in manifests: **never change this function**
/// (a changed digest would make a re-delivered change look new after an upgrade).
pub fn change_digest(op: Op, schema: Option<&str>, table: &str, row_json: &[u8]) -> u64 {
    let mut h = Digest(0x9e37_79b9_7f4a_7c15);
    h.eat(op.code().as_bytes());
    h.eat(schema.unwrap_or("").as_bytes());
    h.eat(table.as_bytes());
    h.eat(row_json);
    h.finish()
}

/// A small, fixed word-at-a-time hash (multiply-rotate over 8-byte words, then a final
/// avalanche). Not cryptographic; fixed forever (see [`change_digest`]).
struct Digest(u64);

impl Digest {
    const K: u64 = 0xff51_afd7_ed55_8ccd;

    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(Self::K).rotate_left(29);
    }

    /// Eats one field: its words, then its length (so field boundaries count).
    fn eat(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w));
        }
        self.word(bytes.len() as u64 ^ 0xa5a5_a5a5_0000_0000);
    }

    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(commit: u128, index: u128) -> Position {
        Position {
            commit,
            tx: String::new(),
            index,
        }
    }

    fn d(commit: u128, index: u128, op: Op, row: &str) -> Dedup {
        Dedup {
            source: "s".into(),
            position: pos(commit, index),
            change: change_digest(op, Some("public"), "t", row.as_bytes()),
        }
    }

    #[test]
    fn the_digest_is_fixed_forever() {
        // Committed in manifests: if this fails, re-delivered changes would be written
        // again after an upgrade. Do not change the expected value; fix the code.
        assert_eq!(
            format!(
                "{:016x}",
                change_digest(Op::Create, Some("public"), "accounts", br#"{"id":102}"#)
            ),
            "773301e211ca077b"
        );
    }

    #[test]
    fn digests_tell_fields_apart() {
        let base = change_digest(Op::Create, Some("s"), "t", b"{}");
        assert_ne!(base, change_digest(Op::Delete, Some("s"), "t", b"{}"));
        assert_ne!(base, change_digest(Op::Create, Some("st"), "", b"{}"));
        assert_ne!(base, change_digest(Op::Create, None, "t", b"{}"));
        assert_ne!(base, change_digest(Op::Create, Some("s"), "t", b"{} "));
        assert_eq!(base, change_digest(Op::Create, Some("s"), "t", b"{}"));
    }

    #[test]
    fn equal_positions_are_duplicates_only_for_the_same_change() {
        let mut s = DedupState::default();
        let delete = d(10, 10, Op::Delete, r#"{"id":2}"#);
        let create = d(10, 10, Op::Create, r#"{"id":102}"#);
        assert!(!s.is_duplicate(&delete));
        s.record(delete.clone());
        assert!(s.is_duplicate(&delete), "the same change again");
        assert!(!s.is_duplicate(&create), "the other half of a key change");
        s.record(create.clone());
        assert!(s.is_duplicate(&create) && s.is_duplicate(&delete));
        assert!(
            s.is_duplicate(&d(9, 99, Op::Create, "{}")),
            "below the highest"
        );
        let later = d(11, 0, Op::Create, "{}");
        assert!(!s.is_duplicate(&later));
        s.record(later);
        assert!(s.is_duplicate(&create), "now below the highest");
    }

    #[test]
    fn the_state_survives_the_manifest_and_an_old_manifest_never_drops_at_its_position() {
        let mut s = DedupState::default();
        let delete = d(10, 10, Op::Delete, r#"{"id":2}"#);
        s.record(delete.clone());
        let (positions, changes) = to_manifest(&s.to_commit());
        let back = from_manifest(positions.clone(), changes).unwrap();
        let again = DedupState::new(back);
        assert!(again.is_duplicate(&delete));
        assert!(!again.is_duplicate(&d(10, 10, Op::Create, r#"{"id":102}"#)));
        // Without digests (an older manifest): equal positions are written, lower dropped.
        let old = DedupState::new(from_manifest(positions, BTreeMap::new()).unwrap());
        assert!(!old.is_duplicate(&delete));
        assert!(old.is_duplicate(&d(9, 0, Op::Create, "{}")));
    }

    #[test]
    fn bad_digests_in_a_manifest_are_errors_naming_the_source() {
        let positions = BTreeMap::from([("src/a".to_string(), pos(1, 1))]);
        let bad = BTreeMap::from([("src/a".to_string(), vec!["xyz".to_string()])]);
        let e = from_manifest(positions.clone(), bad).unwrap_err();
        assert!(e.contains("src/a") && e.contains("16 hex"), "{e}");
        let stray = BTreeMap::from([("src/b".to_string(), vec![format!("{:016x}", 1)])]);
        let e = from_manifest(positions, stray).unwrap_err();
        assert!(e.contains("src/b"), "{e}");
    }
}
