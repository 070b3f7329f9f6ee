//! The credential store: what renewing credentials has learnt — the refresh token in use (a
//! platform that rotates them hands out a new one at every refresh), the access token and
//! when both expire, the last refresh and the last error. One JSON file, mode 0600, beside
//! `config.toml` (never in the campaign database, its backups or its exports).
//!
//! Every process that polls (a service, `check`, `source test`, `auth test`) may refresh, so
//! a refresh holds an exclusive lock on `credentials.lock` and reads the store again under
//! it: another process may just have rotated the token. A write goes to a temporary file,
//! is flushed to disk, renamed over the store and the directory flushed, so the store on disk
//! is always the old one or the new one, whenever the process is killed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the store keeps of one credential.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The refresh token in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// A digest of the refresh token `config.toml` gave when this entry began: one changed by
    /// hand there since wins over the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeded_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_ms: Option<i64>,
    #[serde(default)]
    pub refreshes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The platform refused the refresh token for good: signing in again is the way out.
    #[serde(default)]
    pub refused: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    #[serde(default)]
    pub credentials: BTreeMap<String, Entry>,
}

/// The store's file and its lock.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

/// An exclusive hold on the store, released when dropped.
pub struct Held(#[allow(dead_code)] std::fs::File);

impl Store {
    /// The store at `path` (its lock beside it).
    pub fn at(path: &Path) -> Store {
        Store { path: path.to_path_buf() }
    }

    /// The store beside a config file.
    pub fn beside(config: &Path) -> Store {
        Store::at(&config.parent().unwrap_or(Path::new(".")).join("credentials.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    /// Waits for the exclusive lock (blocking: call off the async threads).
    pub fn hold(&self) -> Result<Held, String> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())
            .map_err(|e| format!("{}: {e}", self.lock_path().display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; the lock goes with the file.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!("{}: {}", self.lock_path().display(), std::io::Error::last_os_error()));
        }
        Ok(Held(f))
    }

    /// The store as on disk (empty when there is none yet).
    pub fn read(&self) -> Result<Doc, String> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Doc::default()),
            Err(e) => Err(format!("{}: {e}", self.path.display())),
        }
    }

    /// Writes the store durably (see the module docs); the caller holds the lock.
    pub fn write(&self, doc: &Doc, _held: &Held) -> Result<(), String> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |e: std::io::Error| format!("{}: {e}", self.path.display());
        let tmp = self.path.with_extension("json.partial");
        let text = serde_json::to_vec_pretty(doc).map_err(|e| e.to_string())?;
        let mut f =
            std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp).map_err(err)?;
        f.write_all(&text).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        }
        fault_point("credential-stored");
        Ok(())
    }
}

/// For the `kill -9` tests: the process dies here, as by `kill -9`, when `COCKPIT_FAULT` names
/// this point.
pub fn fault_point(name: &str) {
    if std::env::var("COCKPIT_FAULT").is_ok_and(|f| f == name) {
        // SAFETY: raising a signal has no preconditions.
        unsafe { libc::raise(libc::SIGKILL) };
    }
}

/// A short digest of a secret, to recognise it without keeping it.
pub fn digest(secret: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    d.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_store_reads_back_and_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::beside(&dir.path().join("config.toml"));
        assert_eq!(store.read().unwrap(), Doc::default());
        let mut doc = Doc::default();
        doc.credentials.insert("g".into(), Entry { refresh_token: Some("r1".into()), ..Entry::default() });
        let held = store.hold().unwrap();
        store.write(&doc, &held).unwrap();
        drop(held);
        assert_eq!(store.read().unwrap(), doc);
        let mode = std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_ne!(digest("a"), digest("b"));
    }
}
