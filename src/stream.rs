//! Reading an array's live rows batch by batch, without holding the whole array.

use crate::error::Result;
use crate::store::Store;

/// Yields consecutive batches of logical rows. Each batch reads the array as it is at
/// that moment, so rows appended meanwhile are reached too.
#[derive(Debug)]
pub struct Stream {
    store: Store,
    name: String,
    batch: u64,
    pos: u64,
}

impl Stream {
    pub(crate) fn new(store: Store, name: String, batch: u64) -> Stream {
        Stream { store, name, batch, pos: 0 }
    }

    /// Rows the next call will read at most.
    pub fn batch_rows(&self) -> u64 {
        self.batch
    }

    /// Reads the next batch into `out` (which must hold a full batch) and returns the
    /// rows read; 0 at the end.
    pub fn next_into(&mut self, out: &mut [u8]) -> Result<u64> {
        let n = self.store.read_batch(&self.name, self.pos, self.batch, out)?;
        self.pos += n;
        Ok(n)
    }
}
