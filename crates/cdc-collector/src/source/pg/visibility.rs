//! Which transactions a snapshot saw: the pure half of a snapshot that is consistent with
//! the replication slot without an exported snapshot.
//!
//! The slot is created first (its consistent point C), then a REPEATABLE READ snapshot S
//! is taken and `pg_current_snapshot()` records what S sees (xmin, xmax, in-progress
//! list), and `pg_current_wal_insert_lsn()` read after it bounds every commit S can see
//! (`until`). The *insert* position, not `pg_current_wal_lsn()` (the write position):
//! with asynchronous commit a transaction is visible once its commit record is inserted,
//! possibly before it is written, and such a transaction was streamed a second time when
//! the write position served as the bound (found by the snapshot-under-writes test). Streaming starts at C, so a transaction committed between C and S is both
//! in S and in the stream: while the stream is at or before `until`, a change of a table
//! read at S is dropped exactly when its transaction is visible in S. Past `until`, no
//! change is dropped. Nothing is missed (everything after C is streamed) and nothing is
//! doubled (what S saw is not streamed again).

use serde::{Deserialize, Serialize};

/// What a snapshot sees, from `pg_current_snapshot()` (`xmin:xmax:xip,…`, 64-bit ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotXids {
    pub xmin: u64,
    pub xmax: u64,
    pub xip: Vec<u64>,
    /// WAL insert position read after the snapshot was taken: every commit it sees ends
    /// at or before this LSN.
    pub until: u64,
}

impl SnapshotXids {
    /// Parses `pg_current_snapshot()::text`.
    pub fn parse(text: &str, until: u64) -> Option<SnapshotXids> {
        let mut parts = text.trim().splitn(3, ':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let xip = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.trim().parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        Some(SnapshotXids {
            xmin,
            xmax,
            xip,
            until,
        })
    }

    /// The 64-bit id of a 32-bit xid as logical decoding reports it, taken to be the
    /// one within 2^31 of `xmax` (the epoch).
    pub fn widen(&self, xid32: u64) -> u64 {
        let xid32 = xid32 & 0xffff_ffff;
        let epoch = self.xmax >> 32;
        let full = (epoch << 32) | xid32;
        if full > self.xmax.saturating_add(1 << 31) && full >= 1 << 32 {
            full - (1 << 32)
        } else if full + (1 << 31) < self.xmax {
            full + (1 << 32)
        } else {
            full
        }
    }

    /// Whether the (32-bit) transaction's effects are in the snapshot.
    pub fn sees(&self, xid32: u64) -> bool {
        let x = self.widen(xid32);
        x < self.xmin || (x < self.xmax && !self.xip.contains(&x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decides_visibility() {
        let s = SnapshotXids::parse("100:105:101,103", 7).unwrap();
        assert_eq!(s.xip, vec![101, 103]);
        assert!(s.sees(99));
        assert!(s.sees(100));
        assert!(!s.sees(101));
        assert!(s.sees(102));
        assert!(!s.sees(103));
        assert!(s.sees(104));
        assert!(!s.sees(105));
        assert!(!s.sees(200));
        let empty = SnapshotXids::parse("5:5:", 0).unwrap();
        assert!(empty.xip.is_empty());
        assert!(empty.sees(4) && !empty.sees(5));
        assert!(SnapshotXids::parse("x:1:", 0).is_none());
        assert!(SnapshotXids::parse("1:2:3,y", 0).is_none());
    }

    #[test]
    fn widening_follows_the_epoch() {
        let base = (3u64 << 32) + 10;
        let s = SnapshotXids::parse(&format!("{base}:{}:", base + 5), 0).unwrap();
        assert_eq!(s.widen(12), (3 << 32) + 12);
        assert!(s.sees(12));
        assert!(!s.sees(15));
        // Just before the wrap: an old xid of the previous epoch.
        assert_eq!(s.widen(0xffff_fff0), (2u64 << 32) + 0xffff_fff0);
        assert!(s.sees(0xffff_fff0));
    }
}
