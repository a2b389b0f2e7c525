//! Elements as text (numpy-like) and as JSON.

use numpack::DType;
use serde_json::{json, Value};

/// One element, decoded from its little-endian bytes.
#[derive(Clone, Copy, Debug)]
pub enum Elem {
    Bool(bool),
    Int(i64),
    UInt(u64),
    F16(half::f16),
    F32(f32),
    F64(f64),
    C64(f32, f32),
    C128(f64, f64),
}

pub fn decode(dtype: DType, b: &[u8]) -> Elem {
    let a8 = |b: &[u8]| -> [u8; 8] { b[..8].try_into().unwrap() };
    let a4 = |b: &[u8]| -> [u8; 4] { b[..4].try_into().unwrap() };
    let a2 = |b: &[u8]| -> [u8; 2] { b[..2].try_into().unwrap() };
    match dtype {
        DType::Bool => Elem::Bool(b[0] != 0),
        DType::Uint8 => Elem::UInt(b[0] as u64),
        DType::Uint16 => Elem::UInt(u16::from_le_bytes(a2(b)) as u64),
        DType::Uint32 => Elem::UInt(u32::from_le_bytes(a4(b)) as u64),
        DType::Uint64 => Elem::UInt(u64::from_le_bytes(a8(b))),
        DType::Int8 => Elem::Int(b[0] as i8 as i64),
        DType::Int16 => Elem::Int(i16::from_le_bytes(a2(b)) as i64),
        DType::Int32 => Elem::Int(i32::from_le_bytes(a4(b)) as i64),
        DType::Int64 => Elem::Int(i64::from_le_bytes(a8(b))),
        DType::Float16 => Elem::F16(half::f16::from_le_bytes(a2(b))),
        DType::Float32 => Elem::F32(f32::from_le_bytes(a4(b))),
        DType::Float64 => Elem::F64(f64::from_le_bytes(a8(b))),
        DType::Complex64 => Elem::C64(f32::from_le_bytes(a4(b)), f32::from_le_bytes(a4(&b[4..]))),
        DType::Complex128 => Elem::C128(f64::from_le_bytes(a8(b)), f64::from_le_bytes(a8(&b[8..]))),
    }
}

/// numpy's spelling of a float: `1.`, `0.5`, `nan`, `-inf`, `1e+20`.
fn float(v: f64, shortest: String) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{}.", v as i64)
    } else if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-4) {
        format!("{v:e}")
    } else {
        shortest
    }
}

impl Elem {
    /// As numpy prints it (each float type in its own shortest form).
    pub fn text(self) -> String {
        match self {
            Elem::Bool(b) => if b { "True" } else { "False" }.into(),
            Elem::Int(v) => v.to_string(),
            Elem::UInt(v) => v.to_string(),
            Elem::F16(v) => float(v.to_f64(), v.to_string()),
            Elem::F32(v) => float(v as f64, v.to_string()),
            Elem::F64(v) => float(v, v.to_string()),
            Elem::C64(r, i) => complex(float(r as f64, r.to_string()), i as f64, float(i as f64, i.to_string())),
            Elem::C128(r, i) => complex(float(r, r.to_string()), i, float(i, i.to_string())),
        }
    }

    /// As JSON: numbers, `true`/`false`, `[re, im]` for complex; non-finite floats as
    /// the strings `"nan"`, `"inf"`, `"-inf"` (JSON has no such numbers).
    pub fn json(self) -> Value {
        match self {
            Elem::Bool(b) => json!(b),
            Elem::Int(v) => json!(v),
            Elem::UInt(v) => json!(v),
            Elem::F16(v) => fjson(v.to_f64()),
            Elem::F32(v) => fjson(v as f64),
            Elem::F64(v) => fjson(v),
            Elem::C64(r, i) => json!([fjson(r as f64), fjson(i as f64)]),
            Elem::C128(r, i) => json!([fjson(r), fjson(i)]),
        }
    }

    /// The value as a float and, for integers and booleans, exactly; `None` for complex.
    pub fn number(self) -> Option<(f64, Option<i128>)> {
        Some(match self {
            Elem::Bool(b) => (b as u8 as f64, Some(b as i128)),
            Elem::Int(v) => (v as f64, Some(v as i128)),
            Elem::UInt(v) => (v as f64, Some(v as i128)),
            Elem::F16(v) => (v.to_f64(), None),
            Elem::F32(v) => (v as f64, None),
            Elem::F64(v) => (v, None),
            Elem::C64(..) | Elem::C128(..) => return None,
        })
    }
}

fn complex(re: String, im: f64, im_text: String) -> String {
    let sign = if im.is_sign_negative() || im.is_nan() && im_text.starts_with('-') { "" } else { "+" };
    format!("{re}{sign}{im_text}j")
}

pub fn fjson(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!(float(v, String::new()))
    }
}

/// Rows of `dtype` with per-row shape `row_shape`, as nested JSON lists.
pub fn rows_json(dtype: DType, row_shape: &[u64], bytes: &[u8]) -> Value {
    let es = dtype.size();
    let elems: Vec<Value> = bytes.chunks_exact(es).map(|b| decode(dtype, b).json()).collect();
    let row: usize = row_shape.iter().product::<u64>() as usize;
    if row == 0 {
        let n = if es == 0 { 0 } else { bytes.len() / es.max(1) };
        return Value::Array(vec![nest_json(&[], row_shape); n]);
    }
    Value::Array(elems.chunks(row).map(|r| nest_json(r, row_shape)).collect())
}

fn nest_json(elems: &[Value], shape: &[u64]) -> Value {
    match shape {
        [] => elems.first().cloned().unwrap_or(Value::Null),
        [_] => Value::Array(elems.to_vec()),
        [n, rest @ ..] => {
            let sub: usize = rest.iter().product::<u64>() as usize;
            if sub == 0 {
                return Value::Array(vec![nest_json(&[], rest); *n as usize]);
            }
            Value::Array(elems.chunks(sub).map(|c| nest_json(c, rest)).collect())
        }
    }
}

/// Above this many elements, text output elides the middle of long trailing dimensions,
/// as numpy does (its default `threshold`).
pub const SUMMARY_THRESHOLD: usize = 1000;
/// Elements kept at each end of an elided dimension (numpy's `edgeitems`).
const EDGE: u64 = 3;

/// An array of `shape` (C order) as numpy prints it: nested brackets, elements right
/// aligned to one width, sub-arrays on their own lines. With `summarize`, dimensions after
/// the first that are longer than 6 show their first and last 3 entries around `...`
/// (every row asked for is printed).
pub fn array_text(dtype: DType, shape: &[u64], bytes: &[u8], summarize: bool) -> String {
    let texts: Vec<String> = bytes.chunks_exact(dtype.size()).map(|b| decode(dtype, b).text()).collect();
    let mut shown = Vec::new();
    visible(shape, 0, 0, summarize, &mut shown);
    let width = shown.iter().map(|&i| texts[i].chars().count()).max().unwrap_or(0);
    let padded: Vec<String> = texts.iter().map(|t| format!("{t:>width$}")).collect();
    nest_text(&padded, shape, 0, 0, summarize)
}

/// The indices of the dimension's entries shown: all, or the ends around a gap (`None`).
fn entries(n: u64, depth: usize, summarize: bool) -> Vec<Option<u64>> {
    if summarize && depth > 0 && n > 2 * EDGE {
        (0..EDGE).map(Some).chain([None]).chain((n - EDGE..n).map(Some)).collect()
    } else {
        (0..n).map(Some).collect()
    }
}

/// Collects the flat indices of the elements shown.
fn visible(shape: &[u64], base: usize, depth: usize, summarize: bool, out: &mut Vec<usize>) {
    match shape {
        [] => out.push(base),
        [n, rest @ ..] => {
            let sub = rest.iter().product::<u64>() as usize;
            for i in entries(*n, depth, summarize).into_iter().flatten() {
                visible(rest, base + i as usize * sub, depth + 1, summarize, out);
            }
        }
    }
}

fn nest_text(elems: &[String], shape: &[u64], base: usize, depth: usize, summarize: bool) -> String {
    match shape {
        [] => elems.get(base).cloned().unwrap_or_default(),
        [n, rest @ ..] => {
            let sub = rest.iter().product::<u64>() as usize;
            let parts: Vec<String> = entries(*n, depth, summarize)
                .into_iter()
                .map(|e| match e {
                    Some(i) => nest_text(elems, rest, base + i as usize * sub, depth + 1, summarize),
                    None => "...".to_string(),
                })
                .collect();
            let sep = if rest.is_empty() { " ".to_string() } else { format!("{}{}", "\n".repeat(rest.len()), " ".repeat(depth + 1)) };
            format!("[{}]", parts.join(&sep))
        }
    }
}
