//! The commit protocol's durable half: per-partition manifests and the renames they
//! promise.
//!
//! A checkpoint of partition `p` (docs/OUTPUT.md, "Commit protocol"):
//! 1. the caller finishes and fsyncs every in-progress file of `p` (under `_tmp/`);
//! 2. [`Store::commit`] writes the manifest atomically (temp file, fsync, rename, fsync
//!    dir) with the new `next_offset`, the new dedup positions and the list of pending
//!    renames `_tmp/... → <table>/dt=.../<final name>` — **this write is the commit point**;
//! 3. performs the renames, fsyncs each target folder;
//! 4. rewrites the manifest with an empty pending list;
//! 5. the caller then commits `next_offset` to Kafka (for lag monitoring only).
//!
//! [`Store::recover`], run when a partition is assigned, rolls pending renames forward
//! (a crash between 2 and 4 loses nothing) and deletes everything else under the
//! partition's `_tmp/` folder (work after the last commit point, to be re-consumed).
//! So a reader never sees a final name whose content is incomplete, and every record
//! below `next_offset` is in exactly one committed file.

use crate::dedup::{self, Highest};
use rtdp_core::model::Position;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One promised rename, both paths relative to the output root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    pub from: PathBuf,
    pub to: PathBuf,
}

/// The durable state of one Kafka partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: u32,
    pub topic: String,
    pub partition: i32,
    /// Every record below this offset is in a committed file (or was dropped on purpose).
    pub next_offset: i64,
    /// Highest committed dedup position per source key.
    #[serde(default)]
    pub positions: BTreeMap<String, Position>,
    /// Digests of the changes written at exactly that position, per source key (16 hex
    /// digits each; see [`crate::dedup`]). Absent in manifests of older versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes_at_position: BTreeMap<String, Vec<String>>,
    /// Renames promised by the last commit and not yet known to be done.
    #[serde(default)]
    pub pending: Vec<Rename>,
    /// Files committed by this partition so far (for operators).
    #[serde(default)]
    pub files_committed: u64,
    pub updated_at_ms: i64,
}

/// What a partition resumes from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recovered {
    /// `None` when the partition never committed here: start from Kafka's committed
    /// offset, or the earliest.
    pub next_offset: Option<i64>,
    /// The committed de-duplication state per source key.
    pub positions: BTreeMap<String, Highest>,
    pub files_committed: u64,
    /// Renames rolled forward during recovery.
    pub rolled_forward: usize,
    /// In-progress leftovers deleted during recovery.
    pub deleted_leftovers: usize,
}

/// Manifests and in-progress folders under one output root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn load(&self, topic: &str, partition: i32) -> io::Result<Option<Manifest>> {
        let path = self
            .root
            .join(crate::layout::manifest_path(topic, partition));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("manifest {} is unreadable: {e}", path.display()),
            )
        })
    }

    /// Brings partition `p` to a clean committed state and says where to resume.
    pub fn recover(&self, topic: &str, partition: i32) -> io::Result<Recovered> {
        let mut out = Recovered::default();
        if let Some(mut m) = self.load(topic, partition)? {
            if !m.pending.is_empty() {
                out.rolled_forward = self.apply_renames(&m.pending)?;
                m.pending.clear();
                self.write_manifest(&m)?;
            }
            out.next_offset = Some(m.next_offset);
            out.positions =
                dedup::from_manifest(m.positions, m.changes_at_position).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("manifest of {topic} partition {partition}: {e}"),
                    )
                })?;
            out.files_committed = m.files_committed;
        }
        let tmp = self.root.join(crate::layout::tmp_dir(topic, partition));
        match fs::read_dir(&tmp) {
            Ok(entries) => {
                for e in entries {
                    let e = e?;
                    fs::remove_file(e.path())?;
                    out.deleted_leftovers += 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    }

    /// The partition's in-progress folder (created if missing).
    pub fn tmp_dir(&self, topic: &str, partition: i32) -> io::Result<PathBuf> {
        let rel = crate::layout::tmp_dir(topic, partition);
        let abs = self.root.join(&rel);
        fs::create_dir_all(&abs)?;
        Ok(abs)
    }

    /// Steps 2–4 of a checkpoint (see the module docs). The files named in
    /// `m.pending` must already be finished and fsynced.
    pub fn commit(&self, m: &Manifest) -> io::Result<()> {
        crash_point("before_manifest");
        self.write_manifest(m)?;
        crash_point("after_manifest");
        self.apply_renames(&m.pending)?;
        crash_point("after_renames");
        if !m.pending.is_empty() {
            let done = Manifest {
                pending: Vec::new(),
                ..m.clone()
            };
            self.write_manifest(&done)?;
        }
        Ok(())
    }

    fn apply_renames(&self, renames: &[Rename]) -> io::Result<usize> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut done = 0;
        for r in renames {
            let from = self.root.join(&r.from);
            let to = self.root.join(&r.to);
            let dir = to
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            if !dirs.contains(&dir) {
                create_dir_all_synced(&dir)?;
                dirs.push(dir);
            }
            match fs::rename(&from, &to) {
                Ok(()) => {
                    done += 1;
                    crash_point("mid_renames");
                }
                // Already renamed by an earlier, interrupted run.
                Err(e) if e.kind() == io::ErrorKind::NotFound && to.exists() => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("rename {} -> {}: {e}", from.display(), to.display()),
                    ))
                }
            }
        }
        for d in &dirs {
            fsync_dir(d)?;
        }
        Ok(done)
    }

    fn write_manifest(&self, m: &Manifest) -> io::Result<()> {
        let path = self
            .root
            .join(crate::layout::manifest_path(&m.topic, m.partition));
        let bytes = serde_json::to_vec_pretty(m).map_err(io::Error::other)?;
        write_atomic(&path, &bytes)
    }
}

/// Crash points for the end-to-end tests of the commit protocol: with
/// `RTDP_CRASH_AT=<point>:<n>` in the environment the process aborts (as abruptly as a
/// `kill -9`) the n-th time it reaches `point`. Points: `before_manifest`,
/// `after_manifest`, `mid_renames`, `after_renames`, `before_kafka_commit`. Without the
/// variable this is one relaxed atomic load.
pub fn crash_point(point: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let target = TARGET.get_or_init(|| {
        let v = std::env::var("RTDP_CRASH_AT").ok()?;
        let (p, n) = v.split_once(':')?;
        Some((p.to_string(), n.parse().ok()?))
    });
    if let Some((p, n)) = target {
        if p == point && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n {
            eprintln!("RTDP_CRASH_AT: aborting at {point}");
            std::process::abort();
        }
    }
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees the old or the new
/// content, never a mix: temp file in the same folder, fsync, rename, fsync folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir_all_synced(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("manifest")
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fsync_dir(dir)
}

/// fsync of a folder, so that renames and new entries in it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `create_dir_all` that also fsyncs the parent of every folder it creates.
pub fn create_dir_all_synced(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all_synced(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(next: i64, pending: Vec<Rename>) -> Manifest {
        Manifest {
            version: 1,
            topic: "t".into(),
            partition: 0,
            next_offset: next,
            positions: BTreeMap::new(),
            changes_at_position: BTreeMap::new(),
            pending,
            files_committed: 1,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn commit_renames_and_records_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let tmp = store.tmp_dir("t", 0).unwrap();
        fs::write(tmp.join("a.inprogress"), b"data").unwrap();
        let r = Rename {
            from: crate::layout::tmp_dir("t", 0).join("a.inprogress"),
            to: PathBuf::from("s.x/dt=2026-01-01/t+0+1+2.jsonl"),
        };
        store.commit(&manifest(3, vec![r])).unwrap();
        assert_eq!(
            fs::read(dir.path().join("s.x/dt=2026-01-01/t+0+1+2.jsonl")).unwrap(),
            b"data"
        );
        let m = store.load("t", 0).unwrap().unwrap();
        assert_eq!((m.next_offset, m.pending.len()), (3, 0));
    }

    // A crash after the manifest write and before (or during) the renames: recovery
    // finishes the renames and deletes only what was never committed.
    #[test]
    fn recovery_rolls_forward_pending_and_deletes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let tmp = store.tmp_dir("t", 0).unwrap();
        fs::write(tmp.join("done.inprogress"), b"A").unwrap();
        fs::write(tmp.join("orphan.inprogress"), b"B").unwrap();
        let tmp_rel = crate::layout::tmp_dir("t", 0);
        let pending = vec![
            Rename {
                from: tmp_rel.join("done.inprogress"),
                to: "x/f1.jsonl".into(),
            },
            Rename {
                from: tmp_rel.join("gone.inprogress"),
                to: "x/f2.jsonl".into(),
            },
        ];
        // f2 was already renamed before the crash.
        fs::create_dir_all(dir.path().join("x")).unwrap();
        fs::write(dir.path().join("x/f2.jsonl"), b"C").unwrap();
        store.write_manifest(&manifest(10, pending)).unwrap();

        let rec = store.recover("t", 0).unwrap();
        assert_eq!(rec.next_offset, Some(10));
        assert_eq!((rec.rolled_forward, rec.deleted_leftovers), (1, 1));
        assert_eq!(fs::read(dir.path().join("x/f1.jsonl")).unwrap(), b"A");
        assert!(fs::read_dir(&tmp).unwrap().next().is_none());
        assert!(store.load("t", 0).unwrap().unwrap().pending.is_empty());
        // Recovering again changes nothing.
        assert_eq!(store.recover("t", 0).unwrap().rolled_forward, 0);
    }

    #[test]
    fn a_rename_whose_source_and_target_are_both_gone_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let pending = vec![Rename {
            from: "_tmp/nope".into(),
            to: "x/nope.jsonl".into(),
        }];
        store.write_manifest(&manifest(1, pending)).unwrap();
        assert!(store.recover("t", 0).is_err());
    }

    #[test]
    fn unreadable_manifest_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let p = dir.path().join(crate::layout::manifest_path("t", 0));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"{garbage").unwrap();
        let e = store.recover("t", 0).unwrap_err();
        assert!(e.to_string().contains("0.json"), "{e}");
    }
}
