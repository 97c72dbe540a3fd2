//! The roll decision: when do a partition's open files close and commit?
//!
//! A checkpoint is per Kafka partition: it closes *every* open file of that partition
//! (all tables, days and schema versions), because the partition's committed offset can
//! only move past records that sit in committed files. So:
//! - **size**: any one open file reaching `output.rolling.sizeBytes`;
//! - **interval**: the partition's oldest open data reaching `output.rolling.intervalMs`
//!   or `checkpoint.intervalMs`, whichever is smaller (a checkpoint always commits);
//! - **inactivity**: no record written to the partition for `output.rolling.inactivityMs`.
//!
//! [`should_roll`] is a pure function of the policy, the partition's clock and `now`.

/// Limits from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollPolicy {
    pub size_bytes: u64,
    pub interval_ms: u64,
    pub inactivity_ms: u64,
    pub checkpoint_interval_ms: u64,
}

/// What a partition has open right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionClock {
    /// When the first record of the open epoch was written (ms); `None`: nothing open.
    pub opened_at_ms: Option<i64>,
    /// When the last record was written or skipped (ms).
    pub last_write_ms: i64,
    /// Size of the largest open file (bytes, as the sink estimates it).
    pub largest_file_bytes: u64,
}

/// Why a partition rolled (a label of the checkpoint metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollReason {
    Size,
    Interval,
    Checkpoint,
    Inactivity,
    Shutdown,
    /// The process is at its limit of open files: commit before opening another.
    OpenFiles,
}

impl RollReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RollReason::Size => "size",
            RollReason::Interval => "interval",
            RollReason::Checkpoint => "checkpoint",
            RollReason::Inactivity => "inactivity",
            RollReason::Shutdown => "shutdown",
            RollReason::OpenFiles => "open_files",
        }
    }
}

/// Whether the partition must roll now, and why. Size wins over age, age over inactivity.
pub fn should_roll(policy: &RollPolicy, clock: &PartitionClock, now_ms: i64) -> Option<RollReason> {
    let opened = clock.opened_at_ms?;
    if clock.largest_file_bytes >= policy.size_bytes {
        return Some(RollReason::Size);
    }
    let age = now_ms.saturating_sub(opened).max(0) as u64;
    if age >= policy.interval_ms.min(policy.checkpoint_interval_ms) {
        return Some(if policy.interval_ms <= policy.checkpoint_interval_ms {
            RollReason::Interval
        } else {
            RollReason::Checkpoint
        });
    }
    let idle = now_ms.saturating_sub(clock.last_write_ms).max(0) as u64;
    if idle >= policy.inactivity_ms {
        return Some(RollReason::Inactivity);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: RollPolicy = RollPolicy {
        size_bytes: 1000,
        interval_ms: 10_000,
        inactivity_ms: 2_000,
        checkpoint_interval_ms: 60_000,
    };

    fn clock(opened: i64, last: i64, size: u64) -> PartitionClock {
        PartitionClock {
            opened_at_ms: Some(opened),
            last_write_ms: last,
            largest_file_bytes: size,
        }
    }

    #[test]
    fn each_limit_rolls() {
        assert_eq!(should_roll(&P, &clock(0, 0, 999), 1), None);
        assert_eq!(
            should_roll(&P, &clock(0, 0, 1000), 1),
            Some(RollReason::Size)
        );
        assert_eq!(
            should_roll(&P, &clock(0, 9_999, 1), 10_000),
            Some(RollReason::Interval)
        );
        assert_eq!(
            should_roll(&P, &clock(0, 1_000, 1), 3_000),
            Some(RollReason::Inactivity)
        );
        assert_eq!(should_roll(&P, &clock(0, 1_000, 1), 2_999), None);
        let cp = RollPolicy {
            checkpoint_interval_ms: 5_000,
            ..P
        };
        assert_eq!(
            should_roll(&cp, &clock(0, 4_999, 1), 5_000),
            Some(RollReason::Checkpoint)
        );
        assert_eq!(should_roll(&P, &PartitionClock::default(), i64::MAX), None);
    }

    proptest! {
        // Nothing open never rolls; otherwise the decision matches the three limits exactly.
        #[test]
        fn decision_matches_limits(opened in 0i64..1_000_000, write_gap in 0i64..100_000, wait in 0i64..100_000,
                                   size in 0u64..5_000, open in any::<bool>()) {
            let last = opened + write_gap;
            let now = last + wait;
            let c = PartitionClock { opened_at_ms: open.then_some(opened), last_write_ms: last, largest_file_bytes: size };
            let got = should_roll(&P, &c, now);
            let expected = open && (size >= P.size_bytes || (now - opened) as u64 >= P.interval_ms || (now - last) as u64 >= P.inactivity_ms);
            prop_assert_eq!(got.is_some(), expected);
        }

        // Once a partition must roll, waiting longer without writes never un-rolls it.
        #[test]
        fn roll_is_monotone_in_time(opened in 0i64..1_000, gap in 0i64..20_000, size in 0u64..2_000, later in 0i64..100_000) {
            let c = clock(opened, opened + gap, size);
            let now = opened + gap;
            if should_roll(&P, &c, now).is_some() {
                prop_assert!(should_roll(&P, &c, now + later).is_some());
            }
        }
    }
}
