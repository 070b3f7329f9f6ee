//! The journal of control actions: each entry is flushed before its action is sent.

use super::{Result, Store};

impl Store {
    /// Writes a journal entry and flushes: an action is on disk before it is sent, and its
    /// outcome before anyone is told.
    pub fn put_journal(&self, e: &crate::optimize::journal::JournalEntry) -> Result<()> {
        let new = !self.write("journal", &e.id.to_be_bytes(), Some(&Self::encode(e)))?;
        self.flush()?;
        if new { self.write_manifest() } else { Ok(()) }
    }

    /// The whole journal, oldest first.
    pub fn journal(&self) -> Result<Vec<crate::optimize::journal::JournalEntry>> {
        self.all(&self.t()?.journal, "journal")
    }
}
