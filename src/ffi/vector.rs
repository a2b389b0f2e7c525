//! Exact top-k similarity search: wraps `vector`. Metrics cross as `uint32_t` holding an
//! `npk_metric` value (the core's `Metric` table, emitted by cbindgen); matrices of vectors
//! as `npk_vectors` descriptors.

use std::ffi::{c_char, c_void, CString};
use std::sync::OnceLock;

use super::boundary::{self, bytes_arg, str_arg, Out};
use super::handle::Handle;
use super::store::npk_store;
use crate::dtype::DType;
use crate::error::{Error, ErrorCode, Result};
use crate::vector::{self, Metric, Vectors};

/// A row-major matrix of `rows` vectors of `dim` elements of type `dtype` (an
/// `npk_dtype` value: `NPK_DTYPE_FLOAT32`, `FLOAT64`, `FLOAT16`, `INT8` or `UINT8`) at
/// `data`, which must be aligned to the element size. `data` may be NULL when `rows` is 0.
/// The library only reads it, during the call.
#[repr(C)]
pub struct npk_vectors {
    pub data: *const c_void,
    pub dtype: u32,
    pub rows: u64,
    pub dim: u64,
}

/// The canonical name of metric `metric` (an `npk_metric` value, e.g. "cosine"), or NULL
/// when `metric` is not a metric code.
///
/// Ownership: a static string. Thread safety: safe from any thread. Does not change the
/// last-error message.
#[unsafe(no_mangle)]
pub extern "C" fn npk_metric_name(metric: u32) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    boundary::value(std::ptr::null(), || {
        let names = NAMES.get_or_init(|| Metric::ALL.iter().map(|m| CString::new(m.name()).expect("no NUL in metric names")).collect());
        Metric::from_code(metric).map_or(std::ptr::null(), |m| names[m.code() as usize].as_ptr())
    })
}

/// Writes to `*out` the metric named `name`: a canonical name or an alias ("dot_product",
/// "cos", "euclidean", "l2_squared", "kl_divergence", ...), in any letter case.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not UTF-8, or no such metric: the
/// message lists the valid names). Thread safety: safe from any thread.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_metric_parse(name: *const c_char, out: *mut u32) -> ErrorCode {
    boundary::status(|| {
        let name = unsafe { str_arg(name, "name") }?;
        let out = Out::new(out, "out")?;
        let metric = Metric::parse(name)?;
        unsafe { out.write(metric.code()) };
        Ok(())
    })
}

/// Whether metric `metric` is a similarity (higher is better: dot, inner, cosine) rather
/// than a distance (lower is better); false for a code that is not a metric.
///
/// Thread safety: safe from any thread. Does not change the last-error message.
#[unsafe(no_mangle)]
pub extern "C" fn npk_metric_is_similarity(metric: u32) -> bool {
    boundary::value(false, || Metric::from_code(metric).is_some_and(Metric::is_similarity))
}

/// Which instruction sets the search kernels use on this machine, e.g.
/// "x86_64: AVX2, FMA, F16C (kernels: avx2)".
///
/// Ownership: a static string; never NULL. Thread safety: safe from any thread. Does not
/// change the last-error message.
#[unsafe(no_mangle)]
pub extern "C" fn npk_vector_capabilities() -> *const c_char {
    static CAPS: OnceLock<CString> = OnceLock::new();
    boundary::value(c"".as_ptr(), || {
        CAPS.get_or_init(|| CString::new(vector::capabilities()).unwrap_or_default()).as_ptr()
    })
}

fn metric_arg(code: u32) -> Result<Metric> {
    Metric::from_code(code).ok_or_else(|| Error::invalid(format!("{code} is not a metric code (0..={})", Metric::ALL.len() - 1)))
}

/// The matrix a descriptor points to.
///
/// # Safety
/// `v` must be NULL or point to an `npk_vectors` whose `data` holds `rows * dim` elements.
unsafe fn vectors_arg<'a>(v: *const npk_vectors, arg: &str) -> Result<Vectors<'a>> {
    if v.is_null() {
        return Err(Error::new(ErrorCode::NullArgument, format!("argument `{arg}` is NULL")));
    }
    // SAFETY: non-NULL; validity is the caller's promise (alignment checked just below).
    if !v.is_aligned() {
        return Err(Error::invalid(format!("argument `{arg}` is not aligned")));
    }
    let v = unsafe { &*v };
    let dtype = DType::from_code(v.dtype).ok_or_else(|| Error::invalid(format!("`{arg}.dtype`: {} is not a dtype code", v.dtype)))?;
    let len = v
        .rows
        .checked_mul(v.dim)
        .and_then(|n| n.checked_mul(dtype.size() as u64))
        .filter(|&n| n <= isize::MAX as u64)
        .ok_or_else(|| Error::invalid(format!("`{arg}`: {} rows of {} elements are more than memory can hold", v.rows, v.dim)))?;
    let bytes = unsafe { bytes_arg(v.data, len as usize, arg) }?;
    let dim = usize::try_from(v.dim).map_err(|_| Error::invalid(format!("`{arg}.dim` is too large")))?;
    Vectors::new(dtype, dim, bytes).map_err(|e| Error::new(e.code, format!("`{arg}`: {}", e.message)))
}

/// A caller's output array of `len` values of `T`.
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` writable values, not otherwise accessed.
unsafe fn out_slice<'a, T>(ptr: *mut T, len: usize, arg: &str) -> Result<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    let bytes = unsafe { boundary::bytes_mut_arg(ptr.cast(), len.saturating_mul(size_of::<T>()), arg) }?;
    if !bytes.as_ptr().cast::<T>().is_aligned() {
        return Err(Error::invalid(format!("argument `{arg}` is not aligned to {} bytes", align_of::<T>())));
    }
    // SAFETY: the bytes are writable, aligned for T and hold `len` values.
    Ok(unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<T>(), len) })
}

/// Writes to `*out` the metric between vectors `a` and `b` (one row each, equal `dim`).
///
/// Element types: float32, float64, float16, int8, uint8; hamming and jaccard take
/// uint8 (packed bits) only. When the types differ, `a` is converted to `b`'s float type;
/// an int8/uint8 `b` needs `a` of the same type. Cosine with a zero vector is 0.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (unknown metric or dtype code, misaligned
/// data), `DTYPE_MISMATCH`, `SHAPE_MISMATCH` (not one row each, or dims differ).
/// Thread safety: safe from any thread.
///
/// # Safety
/// `a` and `b` must be NULL or valid descriptors; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_vector_distance(metric: u32, a: *const npk_vectors, b: *const npk_vectors, out: *mut f64) -> ErrorCode {
    boundary::status(|| {
        let metric = metric_arg(metric)?;
        let a = unsafe { vectors_arg(a, "a") }?;
        let b = unsafe { vectors_arg(b, "b") }?;
        let out = Out::new(out, "out")?;
        let d = vector::distance(metric, a, b)?;
        unsafe { out.write(d) };
        Ok(())
    })
}

/// Fills `out` (`out_len` doubles, exactly `queries->rows * candidates->rows`) with the
/// metric between every query and every candidate, row-major (`out[q * N + c]`).
///
/// Type rules as `npk_vector_distance`. Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT`,
/// `DTYPE_MISMATCH`, `SHAPE_MISMATCH`, `BUFFER_SIZE` (`out_len` is not Q × N).
/// Thread safety: safe from any thread; runs on several cores.
///
/// # Safety
/// Descriptors NULL or valid; `out` NULL or `out_len` writable doubles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_vector_scores(
    metric: u32,
    queries: *const npk_vectors,
    candidates: *const npk_vectors,
    out: *mut f64,
    out_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let metric = metric_arg(metric)?;
        let q = unsafe { vectors_arg(queries, "queries") }?;
        let c = unsafe { vectors_arg(candidates, "candidates") }?;
        let out = unsafe { out_slice(out, out_len, "out") }?;
        vector::score_matrix_into(metric, q, c, out)
    })
}

/// Top-k search: for each query row, the `k` best candidates (similarities descending,
/// distances ascending; equal scores by lower index; NaN scores last), best first.
///
/// `kk = min(k, candidates->rows)` results per query are written compactly: query `q`'s
/// are `out_indices[q * kk .. q * kk + kk]` (candidate row numbers) and the same range of
/// `out_scores`; `*kk_out` receives `kk`. Both arrays must hold at least `Q * kk` values
/// (`out_len`; sizing them `Q * k` is always enough). `k` = 0 or no candidates: nothing
/// written, `*kk_out` = 0. Type rules as `npk_vector_distance`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT`, `DTYPE_MISMATCH`, `SHAPE_MISMATCH`,
/// `BUFFER_SIZE`. Thread safety: safe from any thread; runs on several cores.
///
/// # Safety
/// Descriptors NULL or valid; outputs NULL or `out_len` writable values; `kk_out` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_vector_top_k(
    metric: u32,
    queries: *const npk_vectors,
    candidates: *const npk_vectors,
    k: u64,
    out_indices: *mut u64,
    out_scores: *mut f64,
    out_len: usize,
    kk_out: *mut u64,
) -> ErrorCode {
    boundary::status(|| {
        let metric = metric_arg(metric)?;
        let q = unsafe { vectors_arg(queries, "queries") }?;
        let c = unsafe { vectors_arg(candidates, "candidates") }?;
        let idx = unsafe { out_slice(out_indices, out_len, "out_indices") }?;
        let scores = unsafe { out_slice(out_scores, out_len, "out_scores") }?;
        let kk_out = Out::new(kk_out, "kk_out")?;
        let kk = vector::top_k_into(metric, q, c, usize::try_from(k).unwrap_or(usize::MAX), idx, scores)?;
        unsafe { kk_out.write(kk as u64) };
        Ok(())
    })
}

/// `npk_vector_top_k` over array `name` of a store, read through its memory mapping in
/// blocks (never loaded whole), on several cores. Candidates are the array's live rows;
/// returned indices are logical row numbers (deleted rows are skipped, as every read
/// does). A 1-D array is a set of 1-element vectors; an N-D array's vectors are its rows.
/// The stored element type plays the candidates' part in the type rules.
///
/// Errors: as `npk_vector_top_k`, plus `INVALID_NAME`, `NOT_FOUND`, `IO`, `CORRUPT`.
/// Thread safety: safe from many threads; sees one version of the array.
///
/// # Safety
/// `store` NULL or from `npk_store_open`; `name` NULL or NUL-terminated; others as
/// `npk_vector_top_k`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_top_k(
    store: *const npk_store,
    name: *const c_char,
    metric: u32,
    queries: *const npk_vectors,
    k: u64,
    out_indices: *mut u64,
    out_scores: *mut f64,
    out_len: usize,
    kk_out: *mut u64,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let metric = metric_arg(metric)?;
        let q = unsafe { vectors_arg(queries, "queries") }?;
        let idx = unsafe { out_slice(out_indices, out_len, "out_indices") }?;
        let scores = unsafe { out_slice(out_scores, out_len, "out_scores") }?;
        let kk_out = Out::new(kk_out, "kk_out")?;
        let kk = vector::store_top_k_into(&store, name, metric, q, usize::try_from(k).unwrap_or(usize::MAX), idx, scores)?;
        unsafe { kk_out.write(kk as u64) };
        Ok(())
    })
}

/// `npk_vector_scores` against the live rows of array `name` of a store: fills
/// `out[q * N + c]` for the array's `N` live rows and writes `N` to `*n_out`. `out_len`
/// must be at least `Q * N` (`npk_store_info` gives `N`; if rows were appended since,
/// `BUFFER_SIZE` says so).
///
/// Errors: as `npk_vector_scores`, plus `INVALID_NAME`, `NOT_FOUND`, `IO`, `CORRUPT`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// As `npk_store_top_k`; `n_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_scores(
    store: *const npk_store,
    name: *const c_char,
    metric: u32,
    queries: *const npk_vectors,
    out: *mut f64,
    out_len: usize,
    n_out: *mut u64,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let metric = metric_arg(metric)?;
        let q = unsafe { vectors_arg(queries, "queries") }?;
        let out = unsafe { out_slice(out, out_len, "out") }?;
        let n_out = Out::new(n_out, "n_out")?;
        let n = vector::store_scores_into(&store, name, metric, q, out)?;
        unsafe { n_out.write(n as u64) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn metric_names_and_parsing_follow_the_core_table() {
        for m in Metric::ALL {
            let name = unsafe { CStr::from_ptr(npk_metric_name(m.code())) };
            assert_eq!(name.to_str().unwrap(), m.name());
            let mut code = u32::MAX;
            let upper = CString::new(m.name().to_uppercase()).unwrap();
            assert_eq!(unsafe { npk_metric_parse(upper.as_ptr(), &mut code) }, ErrorCode::Ok);
            assert_eq!(code, m.code());
            assert_eq!(npk_metric_is_similarity(m.code()), m.is_similarity());
        }
        assert!(npk_metric_name(Metric::ALL.len() as u32).is_null());
        let mut code = 7u32;
        assert_eq!(unsafe { npk_metric_parse(c"manhattan".as_ptr(), &mut code) }, ErrorCode::InvalidArgument);
        assert_eq!(code, 7, "outputs are untouched on failure");
    }

    #[test]
    fn top_k_through_descriptors() {
        let cands: Vec<f32> = vec![0.0, 0.0, 1.0, 1.0, 3.0, 3.0];
        let query: Vec<f32> = vec![0.9, 1.1];
        let c = npk_vectors { data: cands.as_ptr().cast(), dtype: DType::Float32.code(), rows: 3, dim: 2 };
        let q = npk_vectors { data: query.as_ptr().cast(), dtype: DType::Float32.code(), rows: 1, dim: 2 };
        let (mut idx, mut scores, mut kk) = ([9u64; 5], [0f64; 5], 0u64);
        let st = unsafe { npk_vector_top_k(Metric::L2sq.code(), &q, &c, 5, idx.as_mut_ptr(), scores.as_mut_ptr(), 5, &mut kk) };
        assert_eq!(st, ErrorCode::Ok);
        assert_eq!((kk, &idx[..3]), (3, &[1u64, 0, 2][..]));
        assert!((scores[0] - 0.02).abs() < 1e-6);
        // Too small an output, a wrong metric code, a NULL descriptor.
        let st = unsafe { npk_vector_top_k(Metric::L2sq.code(), &q, &c, 3, idx.as_mut_ptr(), scores.as_mut_ptr(), 2, &mut kk) };
        assert_eq!(st, ErrorCode::BufferSize);
        let st = unsafe { npk_vector_top_k(99, &q, &c, 3, idx.as_mut_ptr(), scores.as_mut_ptr(), 5, &mut kk) };
        assert_eq!(st, ErrorCode::InvalidArgument);
        let st = unsafe { npk_vector_top_k(0, std::ptr::null(), &c, 3, idx.as_mut_ptr(), scores.as_mut_ptr(), 5, &mut kk) };
        assert_eq!(st, ErrorCode::NullArgument);
    }
}
