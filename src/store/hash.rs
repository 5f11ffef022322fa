//! Content hashes of files (sha256), remembered in the `artifacts` table by path, size and
//! modification time so an unchanged file is not read again on every run.
//!
//! It owns hashing and the `artifacts` rows; it must not know why a file is hashed.

use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use super::db::Db;

/// Lowercase hex of a sha256 digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of some bytes, in hex.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The sha256 of a file's content, read in full (streamed: a large file is not held).
pub(crate) fn read_sha256(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hex(&hasher.finalize()))
}

/// The sha256 of a file's content, from the table when the file is unchanged since.
/// `None` when the file cannot be read.
pub(crate) fn file_sha256(db: &Db, path: &Path) -> Option<String> {
    let path = std::path::absolute(path).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    let size = meta.len() as i64;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos() as i64;
    let key = path.display().to_string();
    let known: Option<String> = db
        .with(|c| {
            c.query_row(
                "SELECT sha256 FROM artifacts WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3",
                params![key, size, mtime],
                |r| r.get(0),
            )
            .optional()
        })
        .ok()
        .flatten();
    if known.is_some() {
        return known;
    }
    let digest = read_sha256(&path)?;
    // Only a memo: failing to remember it costs a re-read next time, nothing more.
    let _ = db.with(|c| {
        c.execute(
            "INSERT OR REPLACE INTO artifacts (path, size, mtime_ns, sha256, hashed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key, size, mtime, digest, Timestamp::now().to_string()],
        )
    });
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_the_well_known_digest() {
        assert_eq!(sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
