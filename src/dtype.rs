//! The element types a store can hold: the one table every other layer (C header,
//! Python, Julia, docs) is generated from or tested against.

/// Element type of an array. The discriminant is the dtype code written in
/// `metadata.npkm` (NumPack format version 1) and the value of `npk_dtype` in C.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    Bool = 0,
    Uint8 = 1,
    Uint16 = 2,
    Uint32 = 3,
    Uint64 = 4,
    Int8 = 5,
    Int16 = 6,
    Int32 = 7,
    Int64 = 8,
    Float16 = 9,
    Float32 = 10,
    Float64 = 11,
    Complex64 = 12,
    Complex128 = 13,
}

impl DType {
    /// Every dtype, in code order.
    pub const ALL: [DType; 14] = [
        DType::Bool,
        DType::Uint8,
        DType::Uint16,
        DType::Uint32,
        DType::Uint64,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
        DType::Complex64,
        DType::Complex128,
    ];

    /// The dtype with this code, if any.
    pub fn from_code(code: u32) -> Option<DType> {
        DType::ALL.get(code as usize).copied()
    }

    pub fn code(self) -> u32 {
        self as u32
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        use DType::*;
        match self {
            Bool | Uint8 | Int8 => 1,
            Uint16 | Int16 | Float16 => 2,
            Uint32 | Int32 | Float32 => 4,
            Uint64 | Int64 | Float64 | Complex64 => 8,
            Complex128 => 16,
        }
    }

    /// The name NumPack's `get_metadata()` reports (its Rust enum name).
    pub fn name(self) -> &'static str {
        use DType::*;
        match self {
            Bool => "Bool",
            Uint8 => "Uint8",
            Uint16 => "Uint16",
            Uint32 => "Uint32",
            Uint64 => "Uint64",
            Int8 => "Int8",
            Int16 => "Int16",
            Int32 => "Int32",
            Int64 => "Int64",
            Float16 => "Float16",
            Float32 => "Float32",
            Float64 => "Float64",
            Complex64 => "Complex64",
            Complex128 => "Complex128",
        }
    }

    /// The NumPy dtype name (`numpy.dtype(name)` gives the native little-endian type).
    pub fn numpy_name(self) -> &'static str {
        use DType::*;
        match self {
            Bool => "bool",
            Uint8 => "uint8",
            Uint16 => "uint16",
            Uint32 => "uint32",
            Uint64 => "uint64",
            Int8 => "int8",
            Int16 => "int16",
            Int32 => "int32",
            Int64 => "int64",
            Float16 => "float16",
            Float32 => "float32",
            Float64 => "float64",
            Complex64 => "complex64",
            Complex128 => "complex128",
        }
    }
    /// The `.npy` header's `descr` NumPy writes for this type (little-endian order).
    pub fn npy_descr(self) -> &'static str {
        use DType::*;
        match self {
            Bool => "|b1",
            Uint8 => "|u1",
            Uint16 => "<u2",
            Uint32 => "<u4",
            Uint64 => "<u8",
            Int8 => "|i1",
            Int16 => "<i2",
            Int32 => "<i4",
            Int64 => "<i8",
            Float16 => "<f2",
            Float32 => "<f4",
            Float64 => "<f8",
            Complex64 => "<c8",
            Complex128 => "<c16",
        }
    }

    /// The safetensors `dtype` string for this type, if the format has one. Complex128
    /// has none (the format's only complex type is `C64`).
    pub fn safetensors_name(self) -> Option<&'static str> {
        use DType::*;
        Some(match self {
            Bool => "BOOL",
            Uint8 => "U8",
            Uint16 => "U16",
            Uint32 => "U32",
            Uint64 => "U64",
            Int8 => "I8",
            Int16 => "I16",
            Int32 => "I32",
            Int64 => "I64",
            Float16 => "F16",
            Float32 => "F32",
            Float64 => "F64",
            Complex64 => "C64",
            Complex128 => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_position() {
        for (i, d) in DType::ALL.iter().enumerate() {
            assert_eq!(d.code() as usize, i);
            assert_eq!(DType::from_code(d.code()), Some(*d));
        }
        assert_eq!(DType::from_code(14), None);
        assert_eq!(DType::Complex128.size(), 16);
        assert_eq!(DType::Float16.numpy_name(), "float16");
    }
}
