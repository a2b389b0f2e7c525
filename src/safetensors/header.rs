//! The safetensors header as bytes: parsing (with every check the format calls for) and
//! encoding. Pure functions over byte slices, no I/O, so hostile input can only ever
//! produce an error.
//!
//! A file is `N` (`u64`, little-endian), `N` bytes of UTF-8 JSON, then the data buffer.
//! The JSON is an object: one entry per tensor, `{"dtype": "F32", "shape": [2, 3],
//! "data_offsets": [begin, end]}` with offsets relative to the buffer, plus an optional
//! `"__metadata__"` object of string values. Writers pad the JSON with spaces to a
//! multiple of 8 bytes, so the buffer (and each tensor, when tensors are laid out by
//! decreasing element size) is aligned.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::dtype::DType;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::MAX_NDIM;

/// Size of the length prefix.
pub const PREFIX_LEN: u64 = 8;
/// Longest JSON header accepted, as the reference implementation (100 MB).
pub const MAX_HEADER_LEN: u64 = 100_000_000;
/// The key of the free-form string metadata, which is never a tensor.
pub const METADATA_KEY: &str = "__metadata__";

/// Every dtype string of the format with its element size in bits; the ones numpack
/// holds map to a [`DType`] through [`DType::safetensors_name`].
const DTYPES: [(&str, u64); 20] = [
    ("BOOL", 8),
    ("U8", 8),
    ("I8", 8),
    ("U16", 16),
    ("I16", 16),
    ("U32", 32),
    ("I32", 32),
    ("U64", 64),
    ("I64", 64),
    ("F16", 16),
    ("F32", 32),
    ("F64", 64),
    ("C64", 64),
    ("BF16", 16),
    ("F8_E4M3", 8),
    ("F8_E5M2", 8),
    ("F8_E8M0", 8),
    ("F6_E2M3", 6),
    ("F6_E3M2", 6),
    ("F4", 4),
];

/// Bits per element of a dtype string, if the format defines it.
pub fn dtype_bits(name: &str) -> Option<u64> {
    DTYPES.iter().find(|(n, _)| *n == name).map(|&(_, b)| b)
}

/// The numpack dtype of a safetensors dtype string, if numpack holds it.
pub fn to_dtype(name: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|d| d.safetensors_name() == Some(name))
}

/// One tensor as the header describes it (checked against the buffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    pub name: String,
    /// The dtype string as written, e.g. `"F32"` or `"BF16"`.
    pub dtype_name: String,
    /// The numpack dtype, when numpack holds this one.
    pub dtype: Option<DType>,
    /// Empty for a 0-d tensor.
    pub shape: Vec<u64>,
    /// Byte range in the data buffer (relative to its start).
    pub begin: u64,
    pub end: u64,
}

impl TensorEntry {
    pub fn nbytes(&self) -> u64 {
        self.end - self.begin
    }
}

/// A parsed, checked header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Tensors in buffer order (by `begin`).
    pub tensors: Vec<TensorEntry>,
    /// `__metadata__` entries in the order written.
    pub metadata: Vec<(String, String)>,
}

fn corrupt(msg: impl fmt::Display) -> Error {
    Error::new(ErrorCode::Corrupt, format!("not a valid safetensors header: {msg}"))
}

/// The JSON length `N` of an 8-byte prefix, checked against the limit and the file size.
pub fn header_len(prefix: [u8; 8], file_size: u64) -> Result<u64> {
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER_LEN {
        return Err(corrupt(format!("it claims a {n}-byte header; the limit is {MAX_HEADER_LEN} bytes")));
    }
    if n > file_size.saturating_sub(PREFIX_LEN) {
        return Err(corrupt(format!("it claims a {n}-byte header but the file has only {} bytes after the length", file_size.saturating_sub(PREFIX_LEN))));
    }
    if n < 2 {
        return Err(corrupt(format!("the header is {n} bytes, too short for a JSON object")));
    }
    Ok(n)
}

/// Parses the JSON header `json` of a file whose data buffer is `buffer_len` bytes and
/// checks it: strict JSON object, no duplicate keys, known dtypes, at most
/// [`MAX_NDIM`] dimensions, each tensor's byte count equal to its shape times its
/// element size (checked arithmetic), and the tensors covering the buffer exactly,
/// without gaps or overlaps.
pub fn parse(json: &[u8], buffer_len: u64) -> Result<Header> {
    let text = std::str::from_utf8(json).map_err(|e| corrupt(format!("it is not UTF-8 ({e})")))?;
    if !text.trim_start().starts_with('{') {
        return Err(corrupt("it does not start with '{'"));
    }
    let raw: RawHeader = serde_json::from_str(text).map_err(|e| corrupt(format!("bad JSON ({e})")))?;
    let mut tensors = Vec::with_capacity(raw.tensors.len());
    for (name, t) in raw.tensors {
        if t.ndim > MAX_NDIM as u64 {
            return Err(Error::new(ErrorCode::Unsupported, format!("tensor {name:?} has {} dimensions; numpack holds at most {MAX_NDIM}", t.ndim)));
        }
        let bits = dtype_bits(&t.dtype)
            .ok_or_else(|| Error::new(ErrorCode::Unsupported, format!("tensor {name:?} has the unknown safetensors dtype {:?}", t.dtype)))?;
        let elements = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let bytes = elements.and_then(|n| n.checked_mul(bits)).filter(|b| b % 8 == 0).map(|b| b / 8);
        let Some(bytes) = bytes else {
            return Err(corrupt(format!("tensor {name:?} of shape {:?} and dtype {} does not have a whole, representable number of bytes", t.shape, t.dtype)));
        };
        let [begin, end] = t.offsets;
        if end < begin || end - begin != bytes {
            return Err(corrupt(format!(
                "tensor {name:?} ({} of shape {:?}, {bytes} bytes) has data_offsets [{begin}, {end}]",
                t.dtype, t.shape
            )));
        }
        let dtype = to_dtype(&t.dtype);
        tensors.push(TensorEntry { name, dtype_name: t.dtype, dtype, shape: t.shape, begin, end });
    }
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut at = 0u64;
    for t in &tensors {
        if t.begin != at {
            let what = if t.begin < at { "overlaps the tensor before it" } else { "leaves a gap before it" };
            return Err(corrupt(format!("tensor {:?} starts at byte {} of the buffer and {what} (expected {at})", t.name, t.begin)));
        }
        at = t.end;
    }
    if at != buffer_len {
        return Err(corrupt(format!(
            "the tensors cover {at} bytes but the buffer after the header holds {buffer_len} (truncated or trailing data)"
        )));
    }
    Ok(Header { tensors, metadata: raw.metadata.unwrap_or_default() })
}

/// One tensor to write: its key, safetensors dtype string and shape.
#[derive(Clone, Debug)]
pub struct TensorSpec<'a> {
    pub name: &'a str,
    pub dtype_name: &'a str,
    pub shape: &'a [u64],
    pub nbytes: u64,
}

/// What [`encode`] makes: the bytes before the data buffer and each tensor's
/// `(begin, end)` in the buffer.
pub struct Encoded {
    pub prefix: Vec<u8>,
    pub offsets: Vec<(u64, u64)>,
}

/// The whole prefix (`N` and the JSON, padded with spaces to a multiple of 8) for
/// `tensors` laid out in the order given, contiguously from offset 0, and `metadata`
/// (written only when not empty).
pub fn encode(tensors: &[TensorSpec<'_>], metadata: &[(String, String)]) -> Result<Encoded> {
    let quote = |s: &str| serde_json::to_string(s).map_err(|e| Error::invalid(format!("cannot encode {s:?}: {e}")));
    let mut json = String::from("{");
    let mut first = true;
    if !metadata.is_empty() {
        json.push_str(&quote(METADATA_KEY)?);
        json.push_str(":{");
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&quote(k)?);
            json.push(':');
            json.push_str(&quote(v)?);
        }
        json.push('}');
        first = false;
    }
    let mut offsets = Vec::with_capacity(tensors.len());
    let mut at = 0u64;
    for t in tensors {
        let end = at.checked_add(t.nbytes).ok_or_else(|| Error::invalid("the tensors exceed 2^64 bytes"))?;
        if !first {
            json.push(',');
        }
        first = false;
        let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        json.push_str(&format!("{}:{{\"dtype\":{},\"shape\":[{shape}],\"data_offsets\":[{at},{end}]}}", quote(t.name)?, quote(t.dtype_name)?));
        offsets.push((at, end));
        at = end;
    }
    json.push('}');
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    if json.len() as u64 > MAX_HEADER_LEN {
        return Err(Error::invalid(format!("the header would be {} bytes; readers accept at most {MAX_HEADER_LEN}", json.len())));
    }
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    Ok(Encoded { prefix: out, offsets })
}

/// The header as read by serde, before the checks that need the whole of it.
struct RawHeader {
    tensors: Vec<(String, RawTensor)>,
    metadata: Option<Vec<(String, String)>>,
}

struct RawTensor {
    dtype: String,
    shape: Vec<u64>,
    /// Dimensions in the file; only the first [`MAX_NDIM`] are kept in `shape`.
    ndim: u64,
    offsets: [u64; 2],
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of tensors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawHeader, A::Error> {
                let mut seen = HashSet::new();
                let mut out = RawHeader { tensors: Vec::new(), metadata: None };
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format!("the key {key:?} appears twice")));
                    }
                    if key == METADATA_KEY {
                        out.metadata = Some(map.next_value::<StringMap>()?.0);
                    } else {
                        let t = map.next_value::<RawTensor>().map_err(|e| de::Error::custom(format!("tensor {key:?}: {e}")))?;
                        out.tensors.push((key, t));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// `__metadata__`: an object of strings, without duplicate keys.
struct StringMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("__metadata__ as an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<StringMap, A::Error> {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format!("__metadata__ has the key {key:?} twice")));
                    }
                    let v = map.next_value::<String>().map_err(|e| de::Error::custom(format!("__metadata__ {key:?}: {e}")))?;
                    out.push((key, v));
                }
                Ok(StringMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for RawTensor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTensor;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with dtype, shape and data_offsets")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawTensor, A::Error> {
                let (mut dtype, mut shape, mut offsets) = (None, None::<Shape>, None);
                while let Some(key) = map.next_key::<String>()? {
                    let dup = match key.as_str() {
                        "dtype" => dtype.replace(map.next_value::<String>()?).is_some(),
                        "shape" => shape.replace(map.next_value::<Shape>()?).is_some(),
                        "data_offsets" => offsets.replace(map.next_value::<[u64; 2]>()?).is_some(),
                        // Fields a newer writer may add are skipped without being kept.
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            false
                        }
                    };
                    if dup {
                        return Err(de::Error::custom(format!("the field {key:?} appears twice")));
                    }
                }
                let shape = shape.ok_or_else(|| de::Error::missing_field("shape"))?;
                Ok(RawTensor {
                    dtype: dtype.ok_or_else(|| de::Error::missing_field("dtype"))?,
                    shape: shape.dims,
                    ndim: shape.ndim,
                    offsets: offsets.ok_or_else(|| de::Error::missing_field("data_offsets"))?,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A shape: its first [`MAX_NDIM`] dimensions and how many there are, so a hostile
/// list of millions of dimensions costs no memory.
struct Shape {
    dims: Vec<u64>,
    ndim: u64,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of dimensions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Shape, A::Error> {
                let mut shape = Shape { dims: Vec::new(), ndim: 0 };
                while let Some(d) = seq.next_element::<u64>()? {
                    if shape.dims.len() < MAX_NDIM {
                        shape.dims.push(d);
                    }
                    shape.ndim += 1;
                }
                Ok(shape)
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(name: &'a str, dtype_name: &'a str, shape: &'a [u64], nbytes: u64) -> TensorSpec<'a> {
        TensorSpec { name, dtype_name, shape, nbytes }
    }

    #[test]
    fn encode_matches_the_reference_writer_and_parses_back() {
        // Bytes the reference implementation writes for {"attn.0": F32 [1,2,3]}.
        let Encoded { prefix: bytes, offsets: offs } = encode(&[spec("attn.0", "F32", &[1, 2, 3], 24)], &[]).unwrap();
        let json = br#"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#;
        assert_eq!(&bytes[..8], &64u64.to_le_bytes());
        assert_eq!(&bytes[8..8 + json.len()], json);
        assert!(bytes[8 + json.len()..].iter().all(|&b| b == b' '));
        assert_eq!(offs, vec![(0, 24)]);
        let h = parse(&bytes[8..], 24).unwrap();
        assert_eq!(h.tensors[0].shape, vec![1, 2, 3]);
        assert_eq!(h.tensors[0].dtype, Some(DType::Float32));
        let empty = encode(&[], &[("framework".into(), "pt".into())]).unwrap().prefix;
        assert_eq!(&empty[8..], b"{\"__metadata__\":{\"framework\":\"pt\"}}     ");
    }

    #[test]
    fn every_numpack_dtype_but_complex128_has_a_name() {
        for d in DType::ALL {
            match d.safetensors_name() {
                Some(n) => {
                    assert_eq!(to_dtype(n), Some(d));
                    assert_eq!(dtype_bits(n), Some(8 * d.size() as u64));
                }
                None => assert_eq!(d, DType::Complex128),
            }
        }
    }
}
