//! [`SqliteStore::data_version`]: has anything been committed since? Answered from the
//! WAL-index header, without a round trip to the database.
//!
//! In WAL mode every connection to a database file, in any process, shares the WAL-index
//! (`<database>-shm`, mapped into memory by SQLite). Each commit rewrites the index header
//! (<https://sqlite.org/walformat.html>, "The WAL-Index Header") before the writer releases its
//! lock: the change counter `iChange` goes up by one, `mxFrame` and the checksums move, and a
//! restarted log gets new salts. SQLite itself learns whether its page cache is still valid by
//! comparing this header with the copy it saw last. Read caches do the same here: the 48 header
//! bytes are the version of everything stored.
//!
//! The header is stored twice; the writer updates the second copy, then the first. A reader
//! that finds two equal copies whose checksum verifies has a header that some commit wrote
//! completely; anything else (a write in progress, a file that is not a WAL index) gives `None`,
//! and callers then treat the data as unknown.
//!
//! [`SqliteStore::changes_between`] narrows this for the store's own hot writes (checkout,
//! issue creation, wake-ups, key uses). Such a write reads the header right after `BEGIN
//! IMMEDIATE`, while it holds the write lock (no other connection can commit then, so the header
//! is the one of the last commit), and again after its `COMMIT`. The header's change counter
//! (`iChange`) goes up by exactly one per commit, so if it went up by one, no other commit came
//! in between and the later header is the state right after this write (a checkpoint that
//! restarted the log since changes the header bytes but not the data). The write then records
//! the link `before -> after` with what it changed. Between two versions the store can say what
//! changed only by walking such links back from the newer one to the older: a commit by anything
//! else (another process, a connection of its own, a write that records no link) leaves a gap,
//! and then it cannot say.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mesa_store::{Changes, Result};
use sqlx::{Sqlite, Transaction};

use crate::SqliteStore;
use crate::error::backend;

/// Bytes of one copy of the WAL-index header.
const HEADER: usize = 48;

/// Offset of the header checksum (`aCksum`), which covers the bytes before it.
const CHECKSUM_AT: usize = 40;

/// Offset of `isInit` (non-zero once the header is initialized).
const IS_INIT_AT: usize = 12;

/// Offset of `iChange`, the commit counter.
const I_CHANGE_AT: usize = 8;

/// Links kept; older ones are forgotten (a cache that old starts over).
const MAX_LINKS: usize = 4096;

/// One WAL-index header: a data version.
type Header = Vec<u8>;

/// The recorded commits: for the header after each, the header before it and what it changed.
#[derive(Debug, Default)]
pub(crate) struct CommitLog {
    links: HashMap<Header, (Header, Changes)>,
    order: VecDeque<Header>,
}

impl CommitLog {
    fn record(&mut self, before: Header, after: Header, changes: Changes) {
        if self
            .links
            .insert(after.clone(), (before, changes))
            .is_none()
        {
            self.order.push_back(after);
        }
        while self.order.len() > MAX_LINKS {
            if let Some(old) = self.order.pop_front() {
                self.links.remove(&old);
            }
        }
    }

    /// Walks the links back from `to` until `from`.
    fn between(&self, from: &[u8], to: &[u8]) -> Option<Changes> {
        let mut changes = Changes::default();
        let mut at = to;
        // Each link lowers the commit counter by one, so the walk ends; the bound is a guard.
        for _ in 0..=MAX_LINKS {
            if at == from {
                return Some(changes);
            }
            let (before, step) = self.links.get(at)?;
            changes.merge(step);
            at = before;
        }
        None
    }
}

/// The commit counter of a header.
fn commit_counter(header: &[u8]) -> u32 {
    u32::from_ne_bytes(
        header[I_CHANGE_AT..I_CHANGE_AT + 4]
            .try_into()
            .expect("a four-byte slice of the header"),
    )
}

/// A write transaction whose commit records what it changed (see the module docs).
pub(crate) struct TrackedTx {
    /// The transaction.
    pub(crate) tx: Transaction<'static, Sqlite>,
    /// The header when the write lock was taken.
    before: Option<Header>,
}

/// The WAL-index file of the database at `db`.
pub(crate) fn shm_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

impl SqliteStore {
    /// An opaque value that changes whenever a transaction commits on this database, through
    /// this store or any other connection or process. `None` when it cannot be read right now.
    ///
    /// A cache reads it before loading a value and may keep the value under it only if it is
    /// unchanged after the load; the value is then current for as long as this returns the same
    /// bytes. Costs one `pread` of 96 bytes.
    pub fn data_version(&self) -> Option<Vec<u8>> {
        let file = self.shm.as_ref()?;
        let mut both = [0_u8; 2 * HEADER];
        file.read_exact_at(&mut both, 0).ok()?;
        let (first, second) = both.split_at(HEADER);
        (first == second && first[IS_INIT_AT] != 0 && checksum_ok(first)).then(|| first.to_vec())
    }
}

impl SqliteStore {
    /// [`Self::write_tx`], remembering the data version under the write lock.
    pub(crate) async fn tracked_write_tx(&self) -> Result<TrackedTx> {
        let tx = self.write_tx().await?;
        Ok(TrackedTx {
            tx,
            before: self.data_version(),
        })
    }

    /// Commits `tracked` and records that it changed at most `changes` (the caller must name
    /// everything its statements may have changed among the parts [`Changes`] describes).
    pub(crate) async fn commit_tracked(&self, tracked: TrackedTx, changes: Changes) -> Result<()> {
        use std::sync::atomic::Ordering;
        self.committing.fetch_add(1, Ordering::SeqCst);
        let committed = tracked.tx.commit().await.map_err(backend);
        if committed.is_ok()
            && let (Some(before), Some(after)) = (tracked.before, self.data_version())
            // Exactly one commit since the lock was taken: this one (nothing to record when it
            // wrote nothing, and nothing that can be vouched for when another commit followed).
            && commit_counter(&after) == commit_counter(&before).wrapping_add(1)
        {
            self.commits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(before, after, changes);
        }
        self.committing.fetch_sub(1, Ordering::SeqCst);
        committed
    }

    /// Whether a tracked write is between its `COMMIT` and the recording of its link.
    pub fn tracked_commit_pending(&self) -> bool {
        self.committing.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// What may have changed between data versions `from` and `to` (`from` the older), if
    /// every commit in between was a tracked write of this store (see the module docs).
    pub fn changes_between(&self, from: &[u8], to: &[u8]) -> Option<Changes> {
        if from == to {
            return Some(Changes::default());
        }
        self.commits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .between(from, to)
    }
}

/// SQLite's WAL checksum (native byte order, as the header is written) over the header's first
/// 40 bytes, compared with the stored `aCksum`.
fn checksum_ok(header: &[u8]) -> bool {
    let word = |at: usize| {
        u32::from_ne_bytes(
            header[at..at + 4]
                .try_into()
                .expect("a four-byte slice of the header"),
        )
    };
    let (mut s1, mut s2) = (0_u32, 0_u32);
    for at in (0..CHECKSUM_AT).step_by(8) {
        s1 = s1.wrapping_add(word(at)).wrapping_add(s2);
        s2 = s2.wrapping_add(word(at + 4)).wrapping_add(s1);
    }
    s1 == word(CHECKSUM_AT) && s2 == word(CHECKSUM_AT + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shm_file_sits_beside_the_database() {
        assert_eq!(
            shm_path(Path::new("/data/mesa.db")),
            PathBuf::from("/data/mesa.db-shm")
        );
    }

    #[test]
    fn links_are_walked_back_and_gaps_are_unknown() {
        let header = |n: u8| vec![n; HEADER];
        let key = |n: u128| mesa_domain::ApiKeyId::from(uuid::Uuid::from_u128(n));
        let mut log = CommitLog::default();
        let mut first = Changes::default();
        first.keys.add(key(1));
        let second = Changes {
            runs: true,
            ..Changes::default()
        };
        log.record(header(1), header(2), first);
        log.record(header(2), header(3), second);
        log.record(header(4), header(5), Changes::default());
        let walked = log.between(&header(1), &header(3)).expect("linked");
        assert!(walked.touches_key(Some(key(1))) && walked.runs);
        assert!(!walked.touches_key(Some(key(2))));
        assert_eq!(
            log.between(&header(2), &header(2)),
            Some(Changes::default())
        );
        assert!(
            log.between(&header(1), &header(5)).is_none(),
            "an unrecorded commit (3 -> 4) is a gap"
        );
        assert!(
            log.between(&header(3), &header(1)).is_none(),
            "links only go forward"
        );
    }

    #[test]
    fn a_torn_or_blank_header_is_refused() {
        assert!(!checksum_ok(&[0_u8; HEADER]) || [0_u8; HEADER][IS_INIT_AT] == 0);
        let mut header = [0_u8; HEADER];
        header[IS_INIT_AT] = 1;
        header[8] = 7;
        assert!(!checksum_ok(&header));
    }
}
