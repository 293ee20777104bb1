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

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::SqliteStore;

/// Bytes of one copy of the WAL-index header.
const HEADER: usize = 48;

/// Offset of the header checksum (`aCksum`), which covers the bytes before it.
const CHECKSUM_AT: usize = 40;

/// Offset of `isInit` (non-zero once the header is initialized).
const IS_INIT_AT: usize = 12;

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
    fn a_torn_or_blank_header_is_refused() {
        assert!(!checksum_ok(&[0_u8; HEADER]) || [0_u8; HEADER][IS_INIT_AT] == 0);
        let mut header = [0_u8; HEADER];
        header[IS_INIT_AT] = 1;
        header[8] = 7;
        assert!(!checksum_ok(&header));
    }
}
