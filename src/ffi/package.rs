//! `.npkg` packages: wraps `package`. `npk_package_pack` writes a store into one file,
//! `npk_package_unpack` restores a store from one, `npk_package_read_info` describes one;
//! each hands back an `npk_package_info` describing the package.

use std::ffi::{c_char, c_void, CString};

use super::boundary::{self, flags_arg, path_arg, Out};
use super::handle::Handle;
use super::store::npk_store;
use crate::error::{Error, ErrorCode, Result};
use crate::package::{self, PackOptions, PackageInfo};

/// Progress callback of long operations (`npk_package_pack`, `npk_package_unpack`,
/// `npk_npy_import`, `npk_npz_import`, `npk_npy_export`, `npk_npy_append_file`): called
/// with the bytes of data (uncompressed) done so far and in all, and the caller's
/// `user_data`. It is called once at the start (`done` 0), as the work proceeds (each
/// function says how often), and at the end (`done == total`), always on the thread that
/// made the call. Return true to go on, false to cancel: the call then returns
/// `NPK_STATUS_CANCELLED` and leaves nothing half-done (each function says what stays).
/// The callback must not unwind (throw) into the library, and must not call the library
/// on the same target.
pub type npk_progress_fn = Option<unsafe extern "C" fn(done: u64, total: u64, user_data: *mut c_void) -> bool>;

/// `npk_package_pack` flag: compress each file with zstd (level 3, as NumPack), storing
/// a file raw when compression does not make it smaller. Without it every file is
/// stored raw and the package says it uses no compression.
pub const NPK_PACK_COMPRESS: u32 = 1;
/// `npk_package_pack` flag: replace an existing package file at the target. Without it
/// an existing target gives `NPK_STATUS_ALREADY_EXISTS` and nothing is written.
pub const NPK_PACK_OVERWRITE: u32 = 2;

const PACK_FLAGS: u32 = NPK_PACK_COMPRESS | NPK_PACK_OVERWRITE;

/// `npk_package_unpack` flag: replace an existing store (or empty directory) at the
/// target directory. The old one is removed only after the package has been read and
/// checked in full. A non-empty directory that is not a store is never replaced.
pub const NPK_UNPACK_OVERWRITE: u32 = 1;
/// `npk_package_unpack` flag: compare the package's footer checksum with the CRC32s of
/// the unpacked files (NumPack's `verify=True`). Each compressed file is checked by
/// its codec's own checksum either way.
pub const NPK_UNPACK_VERIFY: u32 = 2;

const UNPACK_FLAGS: u32 = NPK_UNPACK_OVERWRITE | NPK_UNPACK_VERIFY;

/// The description of a package. Made by `npk_package_pack`, `npk_package_unpack` and
/// `npk_package_read_info`; read with `npk_package_get_summary` and
/// `npk_package_get_entry`; released with `npk_package_info_free`.
///
/// Thread safety: may be read from many threads at once. It holds no file open.
pub struct npk_package_info {
    _private: [u8; 0],
}

/// What an `npk_package_info` stands for: the core's description and the entry names
/// as C strings, which live as long as the handle.
pub(crate) struct InfoData {
    info: PackageInfo,
    names: Vec<CString>,
}

impl Handle for npk_package_info {
    type Target = InfoData;
    const NAME: &'static str = "npk_package_info";
}

/// What `npk_package_get_summary` reports about a package as a whole.
#[repr(C)]
pub struct npk_package_summary {
    /// Format version: 1 or 2 (numpack writes 2, as NumPack).
    pub version: u32,
    /// Compression flag: 0 (none) or 1 (zstd; NumPack without its `zstandard` module
    /// writes zlib streams under this flag, which are read as well).
    pub compression: u32,
    /// Number of files in the package.
    pub entry_count: u64,
    /// Sum of the files' sizes (uncompressed).
    pub total_original_size: u64,
    /// Sum of the bytes the files' payloads occupy in the package (NumPack's
    /// `total_compressed_size`).
    pub total_stored_size: u64,
}

/// What `npk_package_get_entry` reports about one file of a package.
#[repr(C)]
pub struct npk_package_entry {
    /// Its file name in the store directory (`metadata.npkm`, `data_<array>.npkd` or
    /// `deleted_<array>.npkb`), NUL-terminated UTF-8. Owned by the `npk_package_info`:
    /// valid until `npk_package_info_free`.
    pub name: *const c_char,
    /// Its size in the store.
    pub original_size: u64,
    /// Its compressed size in the package; 0 when it is stored raw (NumPack's
    /// `compressed_size`).
    pub stored_size: u64,
    /// CRC32 of its uncompressed bytes, when `has_crc32`.
    pub crc32: u32,
    /// Whether `crc32` is known: true for descriptions from `npk_package_pack` and
    /// `npk_package_unpack`, false from `npk_package_read_info` (which decompresses
    /// nothing; the package stores per-file CRC32s only folded into its footer).
    pub has_crc32: bool,
}

fn into_handle(info: PackageInfo) -> Result<*mut npk_package_info> {
    let names = info
        .entries
        .iter()
        .map(|e| CString::new(e.name.as_str()).map_err(|_| Error::new(ErrorCode::Corrupt, format!("entry name {:?} contains NUL", e.name))))
        .collect::<Result<Vec<_>>>()?;
    Ok(npk_package_info::into_raw(InfoData { info, names }))
}

/// Runs `f` with the C callback (if any) as a core progress callback.
pub(super) fn with_progress<T>(progress: npk_progress_fn, user_data: *mut c_void, f: impl FnOnce(Option<package::Progress<'_>>) -> T) -> T {
    match progress {
        None => f(None),
        Some(cb) => {
            // SAFETY: the caller promises `cb` is a valid function taking `user_data`.
            let mut call = |done: u64, total: u64| unsafe { cb(done, total, user_data) };
            f(Some(&mut call))
        }
    }
}

/// An optional output: checked (alignment) when given, skipped when NULL.
fn optional_out<T>(ptr: *mut T, arg: &str) -> Result<Option<Out<T>>> {
    if ptr.is_null() { Ok(None) } else { Out::new(ptr, arg).map(Some) }
}

/// Packs the store behind `store` into one package file at `target_path` (NumPack's
/// `.npkg` layout, version 2, which NumPack's `unpack` reads).
///
/// `flags` is a combination of `NPK_PACK_COMPRESS` and `NPK_PACK_OVERWRITE`. Changes
/// still in the store's log are folded into `metadata.npkm` first, and every writer of
/// the store (any thread, any process) waits while the package is written, so it holds
/// one consistent state including every change made before the call. Writes through
/// writable views bypass that lock and must not run meanwhile. Files are streamed
/// through fixed-size buffers: memory use does not grow with the store.
///
/// The package is written to `<target_path>.tmp-<pid>-<n>`, synced, and renamed to
/// `target_path`, so the target is either absent, the old file, or the whole new package.
/// A process killed meanwhile may leave the temporary file behind (never at
/// `target_path`). Parent directories are created.
///
/// `progress` may be NULL; see `npk_progress_fn`. `user_data` is passed to it untouched.
///
/// Ownership: on success, when `out_info` is not NULL, the caller owns `*out_info` (the
/// package's description, with every file's CRC32) and must release it with
/// `npk_package_info_free`. `out_info` may be NULL when no description is wanted.
///
/// Errors: `NULL_ARGUMENT` (`store` or `target_path` NULL), `INVALID_ARGUMENT` (not a live
/// handle, unknown flag bits, empty path, the target is a directory or a file of the
/// store itself), `ALREADY_EXISTS` (the target exists and no `NPK_PACK_OVERWRITE`;
/// checked before anything is written), `READ_ONLY` (a read-only handle whose log has
/// changes to fold), `CANCELLED` (the callback returned false), `IO`, `CORRUPT`,
/// `NEEDS_RECOVERY`. On any error no target is created, an existing one is left as it
/// was, and the temporary file is removed.
///
/// Thread safety: safe from many threads, on the same store too (packs and writes to the
/// store are serialised). Two calls with the same target do not mix their output.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `target_path` NULL
/// or a NUL-terminated string; `progress` NULL or a function of the type
/// `npk_progress_fn`; `out_info` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_package_pack(
    store: *const npk_store,
    target_path: *const c_char,
    flags: u32,
    progress: npk_progress_fn,
    user_data: *mut c_void,
    out_info: *mut *mut npk_package_info,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let target = unsafe { path_arg(target_path, "target_path") }?;
        let flags = flags_arg(flags, PACK_FLAGS, "flags")?;
        let out = optional_out(out_info, "out_info")?;
        let opts = PackOptions { compress: flags & NPK_PACK_COMPRESS != 0, overwrite: flags & NPK_PACK_OVERWRITE != 0, ..PackOptions::default() };
        let info = with_progress(progress, user_data, |p| package::pack(&store, target, &opts, p))?;
        if let Some(out) = out {
            let handle = into_handle(info)?;
            unsafe { out.write(handle) };
        }
        Ok(())
    })
}

/// Unpacks the package at `package_path` (written by numpack or NumPack, version 1 or 2)
/// into a store directory at `target_dir`, which then opens with `npk_store_open`.
///
/// `flags` is a combination of `NPK_UNPACK_OVERWRITE` and `NPK_UNPACK_VERIFY`. The files
/// are decompressed, streamed through fixed-size buffers, into a new temporary directory
/// beside the target (`.<target name>.unpack-<pid>-<n>`), each file's CRC32 computed as
/// it is written; with `NPK_UNPACK_VERIFY` the footer is compared against them. The
/// catalogue is checked against the files, everything is synced, and only then is the
/// target touched: the temporary directory is renamed into place (with
/// `NPK_UNPACK_OVERWRITE`, after renaming the old store aside; it is deleted last). So an
/// existing store is never deleted before the package has been read and checked in
/// full, and a failure, a cancellation or a kill leaves no half-written target. Entry
/// names are plain file names of a store: an entry naming a path (`../x`, `/x`, `a/b`)
/// is refused before anything is written. Parent directories are created.
///
/// `progress` may be NULL; see `npk_progress_fn`. `user_data` is passed to it untouched.
///
/// Ownership: on success, when `out_info` is not NULL, the caller owns `*out_info` (with
/// every file's CRC32 as unpacked) and must release it with `npk_package_info_free`.
/// `out_info` may be NULL.
///
/// Errors: `NULL_ARGUMENT` (`package_path` or `target_dir` NULL), `INVALID_ARGUMENT`
/// (unknown flag bits, empty path, `package_path` is not a regular file, with
/// `NPK_UNPACK_OVERWRITE` a target that is a non-empty directory but not a store),
/// `ALREADY_EXISTS` (the target exists and no `NPK_UNPACK_OVERWRITE`), `CORRUPT`
/// (damage; the message names the package and, where it can be told, the file inside;
/// a footer mismatch with `NPK_UNPACK_VERIFY`; an entry that would escape the target),
/// `UNSUPPORTED` (a version above 2), `CANCELLED`, `IO` (e.g. no such package). On any
/// error the target is left as it was and the temporary directory removed.
///
/// Thread safety: safe from any thread. Two calls with the same target do not mix their
/// output. Do not unpack over a store that is open: its handles keep the old files.
///
/// # Safety
/// `package_path` and `target_dir` must be NULL or NUL-terminated strings; `progress`
/// NULL or a function of the type `npk_progress_fn`; `out_info` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_package_unpack(
    package_path: *const c_char,
    target_dir: *const c_char,
    flags: u32,
    progress: npk_progress_fn,
    user_data: *mut c_void,
    out_info: *mut *mut npk_package_info,
) -> ErrorCode {
    boundary::status(|| {
        let package = unsafe { path_arg(package_path, "package_path") }?;
        let target = unsafe { path_arg(target_dir, "target_dir") }?;
        let flags = flags_arg(flags, UNPACK_FLAGS, "flags")?;
        let out = optional_out(out_info, "out_info")?;
        let overwrite = flags & NPK_UNPACK_OVERWRITE != 0;
        let verify = flags & NPK_UNPACK_VERIFY != 0;
        let info = with_progress(progress, user_data, |p| package::unpack(package, target, overwrite, verify, p))?;
        if let Some(out) = out {
            let handle = into_handle(info)?;
            unsafe { out.write(handle) };
        }
        Ok(())
    })
}

/// Describes the package at `package_path` from its headers alone (NumPack's
/// `get_package_info`) and writes a new description to `*out_info`. Nothing is
/// decompressed, so the entries carry no CRC32 (`has_crc32` false). The structure is
/// checked (magic, version, entry names, sizes against the file's length, duplicates,
/// the footer's place), not the contents: use `npk_package_unpack` for that.
///
/// Ownership: the caller owns `*out_info` and must release it with
/// `npk_package_info_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (empty path, not a regular file), `IO`
/// (e.g. no such file), `CORRUPT` (not a package, or a damaged one; the message names
/// the entry), `UNSUPPORTED` (a version above 2 or an unknown compression flag).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `package_path` must be NULL or a NUL-terminated string; `out_info` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_package_read_info(package_path: *const c_char, out_info: *mut *mut npk_package_info) -> ErrorCode {
    boundary::status(|| {
        let package = unsafe { path_arg(package_path, "package_path") }?;
        let out = Out::new(out_info, "out_info")?;
        let handle = into_handle(package::info(package)?)?;
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Writes to `*out` the version, compression flag, file count and total sizes of the
/// package `info` describes.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live `npk_package_info`).
/// Thread safety: safe from many threads.
///
/// # Safety
/// `info` must be NULL or a pointer returned through `npk_package_pack`,
/// `npk_package_unpack` or `npk_package_read_info`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_package_get_summary(info: *const npk_package_info, out: *mut npk_package_summary) -> ErrorCode {
    boundary::status(|| {
        let data = npk_package_info::get(info, "info")?;
        let out = Out::new(out, "out")?;
        let i = &data.info;
        let summary = npk_package_summary {
            version: i.version,
            compression: u32::from(i.compression),
            entry_count: i.entries.len() as u64,
            total_original_size: i.total_original_size,
            total_stored_size: i.total_stored_size,
        };
        unsafe { out.write(summary) };
        Ok(())
    })
}

/// Writes to `*out` file number `index` (0-based, in package order: sorted by name when
/// written by numpack or NumPack) of the package `info` describes.
///
/// Ownership: `out->name` belongs to `info` and stays valid until `npk_package_info_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live `npk_package_info`),
/// `INDEX_OUT_OF_RANGE` (`index` not below the summary's `entry_count`).
/// Thread safety: safe from many threads.
///
/// # Safety
/// `info` must be NULL or a pointer returned through `npk_package_pack`,
/// `npk_package_unpack` or `npk_package_read_info`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_package_get_entry(info: *const npk_package_info, index: usize, out: *mut npk_package_entry) -> ErrorCode {
    boundary::status(|| {
        let data = npk_package_info::get(info, "info")?;
        let out = Out::new(out, "out")?;
        let count = data.info.entries.len();
        let (Some(e), Some(name)) = (data.info.entries.get(index), data.names.get(index)) else {
            return Err(Error::new(ErrorCode::IndexOutOfRange, format!("entry {index} is out of range: the package has {count} files")));
        };
        let entry = npk_package_entry {
            // The string lives as long as the handle, not just this reference to it.
            name: name.as_ptr(),
            original_size: e.original_size,
            stored_size: e.stored_size,
            crc32: e.crc32.unwrap_or(0),
            has_crc32: e.crc32.is_some(),
        };
        unsafe { out.write(entry) };
        Ok(())
    })
}

/// Releases a package description. NULL, and a description already released, are
/// ignored. Must not race with other calls on the same description; the entry names it
/// gave become invalid.
///
/// # Safety
/// `info` must be NULL or a pointer returned through `npk_package_pack`,
/// `npk_package_unpack` or `npk_package_read_info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_package_info_free(info: *mut npk_package_info) {
    boundary::value((), || drop(npk_package_info::take(info, "info")))
}
