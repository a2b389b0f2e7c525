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
        let info = self.store.info(&self.name)?;
        let n = self.batch.min(info.shape[0].saturating_sub(self.pos));
        // A full batch must fit `out`, whatever is left, so callers size buffers once.
        let need = self.batch.checked_mul(info.row_bytes()).filter(|&b| b <= usize::MAX as u64);
        match need {
            Some(need) if out.len() as u64 >= need => {}
            _ => crate::error::bail!(
                BufferSize,
                "the batch buffer is {} bytes but one batch of {} rows needs {}",
                out.len(),
                self.batch,
                need.map_or("more than addressable".to_string(), |b| b.to_string())
            ),
        }
        let bytes = (n * info.row_bytes()) as usize;
        self.store.read_range_into(&self.name, self.pos, self.pos + n, &mut out[..bytes])?;
        self.pos += n;
        Ok(n)
    }
}
