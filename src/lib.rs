//! numpack: a store of named N-dimensional arrays on disk, compatible with NumPack's
//! format, with row-level append, replace, delete and random reads, crash consistency
//! and multi-process safety. The C ABI lives in [`ffi`].

pub mod bitmap;
// check: verifying a store without changing it (cli branch)
pub mod check;
mod codec;
pub mod compress; // compressed arrays
pub(crate) mod dirfd;
pub mod dtype;
pub mod error;
pub mod ffi;
mod lock;
pub mod metadata;
pub mod name;
// --- .npy interop ---
pub mod npy;
// --- end ---
pub mod package;
pub mod safetensors;
pub mod segments;
pub mod store;
pub mod stream;
pub mod vector;
pub mod view;
pub mod wal;

pub use compress::{Compression, CompressionInfo, SaveOptions}; // compressed arrays
pub use dtype::DType;
pub use error::{Error, ErrorCode, Result};
pub use store::{ArrayInfo, OpenOptions, Store};
pub use stream::Stream;
pub use view::View;
