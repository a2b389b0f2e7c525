//! Borrowed matrices of vectors, and their elements as typed slices.

use std::borrow::Cow;

use half::f16;

use crate::dtype::DType;
use crate::error::{Result, bail};

/// A row-major matrix of `rows` vectors of `dim` elements, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Vectors<'a> {
    dtype: DType,
    dim: usize,
    bytes: &'a [u8],
}

impl<'a> Vectors<'a> {
    /// Wraps `bytes` as vectors of `dim` elements of `dtype` (native byte order).
    ///
    /// Errors: a `dtype` other than float32, float64, float16, int8 or uint8 is
    /// `DtypeMismatch`; `dim == 0` is `InvalidArgument`; a length that is not a whole number
    /// of vectors is `BufferSize`; bytes not aligned to the element size are
    /// `InvalidArgument`.
    pub fn new(dtype: DType, dim: usize, bytes: &'a [u8]) -> Result<Vectors<'a>> {
        if !is_vector_dtype(dtype) {
            bail!(DtypeMismatch, "vectors cannot hold {} elements (supported: float32, float64, float16, int8, uint8)", dtype.numpy_name());
        }
        if dim == 0 {
            bail!(InvalidArgument, "vectors need at least one element (dim is 0)");
        }
        let row_bytes = dim.saturating_mul(dtype.size());
        if bytes.len() % row_bytes != 0 {
            bail!(BufferSize, "{} bytes are not a whole number of {dim}-element {} vectors ({row_bytes} bytes each)", bytes.len(), dtype.numpy_name());
        }
        if !bytes.is_empty() && bytes.as_ptr().align_offset(dtype.size()) != 0 {
            bail!(InvalidArgument, "vector data must be aligned to {} bytes", dtype.size());
        }
        Ok(Vectors { dtype, dim, bytes })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Elements per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors.
    pub fn rows(&self) -> usize {
        self.bytes.len() / (self.dim * self.dtype.size())
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The elements as `T`, which must be this matrix's element type.
    pub(crate) fn elements<T: Element>(&self) -> &'a [T] {
        assert_eq!(self.dtype, T::DTYPE, "elements read as the wrong type");
        if self.bytes.is_empty() {
            return &[];
        }
        // SAFETY: every bit pattern is a valid `T` (plain numbers), and `new` checked the
        // alignment and that the length is a multiple of the element size.
        let (head, body, tail) = unsafe { self.bytes.align_to::<T>() };
        assert!(head.is_empty() && tail.is_empty());
        body
    }
}

/// True for the element types vector search works on.
pub(crate) fn is_vector_dtype(dtype: DType) -> bool {
    matches!(dtype, DType::Float32 | DType::Float64 | DType::Float16 | DType::Int8 | DType::Uint8)
}

/// The element types of [`Vectors`]: plain numbers for which every bit pattern is valid.
pub(crate) trait Element: Copy + Send + Sync + 'static {
    const DTYPE: DType;
}

impl Element for f32 {
    const DTYPE: DType = DType::Float32;
}
impl Element for f64 {
    const DTYPE: DType = DType::Float64;
}
impl Element for f16 {
    const DTYPE: DType = DType::Float16;
}
impl Element for i8 {
    const DTYPE: DType = DType::Int8;
}
impl Element for u8 {
    const DTYPE: DType = DType::Uint8;
}

/// Conversion of a query to the candidates' float type (the mixed-dtype rule).
pub(crate) trait FromQuery: Element {
    fn from_f64(x: f64) -> Self;
    fn from_f32(x: f32) -> Self;
}

impl FromQuery for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn from_f32(x: f32) -> f32 {
        x
    }
}
impl FromQuery for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn from_f32(x: f32) -> f64 {
        x as f64
    }
}
impl FromQuery for f16 {
    fn from_f64(x: f64) -> f16 {
        f16::from_f64(x)
    }
    fn from_f32(x: f32) -> f16 {
        f16::from_f32(x)
    }
}

/// The query's elements as `T`: borrowed when the dtypes agree, else converted (exactly
/// for widening, rounding to nearest for narrowing). Callers checked the mixed-dtype rule.
pub(crate) fn query_as<'a, T: FromQuery>(q: &Vectors<'a>) -> Cow<'a, [T]> {
    match q.dtype() {
        d if d == T::DTYPE => Cow::Borrowed(q.elements::<T>()),
        DType::Float32 => Cow::Owned(q.elements::<f32>().iter().map(|&x| T::from_f32(x)).collect()),
        DType::Float64 => Cow::Owned(q.elements::<f64>().iter().map(|&x| T::from_f64(x)).collect()),
        DType::Float16 => Cow::Owned(q.elements::<f16>().iter().map(|&x| T::from_f32(x.to_f32())).collect()),
        DType::Int8 => Cow::Owned(q.elements::<i8>().iter().map(|&x| T::from_f32(x as f32)).collect()),
        DType::Uint8 => Cow::Owned(q.elements::<u8>().iter().map(|&x| T::from_f32(x as f32)).collect()),
        other => unreachable!("Vectors::new accepted {other:?}"),
    }
}
