//! Subcommands on a store: info, ls, head, tail, stats, compact.

use std::path::PathBuf;

use clap::Args;
use numpack::{ArrayInfo, OpenOptions, Result, Store};
use serde_json::{json, Value};

use crate::format;
use crate::ui::{self, Ctx};

/// Opens a store for reading. A store left by a killed writer is recovered on the way
/// when the directory is writable (as every numpack reader does).
pub fn open_read(path: &PathBuf) -> Result<Store> {
    Store::open(path, OpenOptions { read_only: true, ..Default::default() })
}

/// The arrays named, or all of them; an unknown name is `NOT_FOUND`.
fn select(store: &Store, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return store.names();
    }
    for n in names {
        store.info(n)?;
    }
    Ok(names.to_vec())
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The store directory.
    pub store: PathBuf,
    /// Only these arrays (default: all).
    pub arrays: Vec<String>,
}

fn info_json(name: &str, i: &ArrayInfo) -> Value {
    let rb = i.row_bytes();
    let rows = i.shape.first().copied().unwrap_or(1);
    json!({
        "name": name,
        "dtype": i.dtype.numpy_name(),
        "shape": i.shape,
        "rows": rows,
        "deleted_rows": i.physical_rows.saturating_sub(rows),
        "physical_rows": i.physical_rows,
        "bytes": i.nbytes(),
        "file_bytes": if i.shape.is_empty() { i.nbytes() } else { i.physical_rows * rb },
        "modified_us": i.modified_us,
    })
}

pub fn info(a: &InfoArgs, ctx: &Ctx) -> Result<i32> {
    let store = open_read(&a.store)?;
    let names = select(&store, &a.arrays)?;
    let mut arrays = Vec::new();
    for n in &names {
        arrays.push(info_json(n, &store.info(n)?));
    }
    let sum = |k: &str| arrays.iter().map(|v| v[k].as_u64().unwrap_or(0)).sum::<u64>();
    let (bytes, file_bytes, deleted) = (sum("bytes"), sum("file_bytes"), sum("deleted_rows"));
    let value = json!({
        "path": a.store.display().to_string(),
        "arrays": arrays,
        "total_bytes": bytes,
        "total_file_bytes": file_bytes,
        "total_deleted_rows": deleted,
    });
    ctx.emit(value, || {
        let mut s = format!("store {}: {} arrays, {} live ({} on disk)\n", a.store.display(), arrays.len(), ui::size(bytes), ui::size(file_bytes));
        if arrays.is_empty() {
            return s;
        }
        let w = arrays.iter().map(|v| ui::shown(v["name"].as_str().unwrap()).chars().count()).max().unwrap().max(4);
        s += &format!("{:<w$}  {:<10} {:>16} {:>12} {:>10} {:>12}\n", "name", "dtype", "shape", "rows", "deleted", "bytes");
        for v in &arrays {
            let shape: Vec<u64> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
            s += &format!(
                "{:<w$}  {:<10} {:>16} {:>12} {:>10} {:>12}\n",
                ui::shown(v["name"].as_str().unwrap()),
                v["dtype"].as_str().unwrap(),
                ui::shape(&shape),
                v["rows"].to_string(),
                v["deleted_rows"].to_string(),
                ui::size(v["bytes"].as_u64().unwrap())
            );
        }
        s
    });
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// The store directory.
    pub store: PathBuf,
    /// Long listing: dtype and shape too.
    #[arg(short, long)]
    pub long: bool,
}

pub fn ls(a: &LsArgs, ctx: &Ctx) -> Result<i32> {
    let store = open_read(&a.store)?;
    let names = store.names()?;
    if a.long {
        let mut rows = Vec::new();
        for n in &names {
            let i = store.info(n)?;
            rows.push((n.clone(), i.dtype.numpy_name(), ui::shape(&i.shape)));
        }
        let value = Value::Array(rows.iter().map(|(n, d, s)| json!({"name": n, "dtype": d, "shape": s})).collect());
        let value = json!({"arrays": value});
        ctx.emit(value, || rows.iter().map(|(n, d, s)| format!("{}\t{d}\t{s}\n", ui::shown(n))).collect());
    } else {
        ctx.emit(json!({"arrays": names}), || names.iter().map(|n| format!("{}\n", ui::shown(n))).collect());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RowsArgs {
    /// The store directory.
    pub store: PathBuf,
    /// The array.
    pub array: String,
    /// How many rows.
    #[arg(short = 'n', long = "rows", default_value_t = 10)]
    pub n: u64,
    /// Print every element (text output elides the middle of long rows, as numpy does,
    /// beyond 1000 elements).
    #[arg(long)]
    pub full: bool,
}

pub fn head(a: &RowsArgs, ctx: &Ctx) -> Result<i32> {
    rows(a, ctx, false)
}

pub fn tail(a: &RowsArgs, ctx: &Ctx) -> Result<i32> {
    rows(a, ctx, true)
}

fn rows(a: &RowsArgs, ctx: &Ctx, from_end: bool) -> Result<i32> {
    let store = open_read(&a.store)?;
    let info = store.info(&a.array)?;
    if info.shape.is_empty() {
        // A 0-d array (written by NumPack): its one value.
        let (_, data) = store.load(&a.array)?;
        let v = format::decode(info.dtype, &data);
        ctx.emit(json!({"array": a.array, "dtype": info.dtype.numpy_name(), "shape": [], "value": v.json()}), || format!("{}\n", v.text()));
        return Ok(0);
    }
    let total = info.shape[0];
    let n = a.n.min(total);
    let start = if from_end { total - n } else { 0 };
    let rb = info.row_bytes();
    let len = n.checked_mul(rb).filter(|&l| l <= isize::MAX as u64).ok_or_else(|| ui::invalid(format!("{n} rows do not fit in memory")))?;
    if len > 0 {
        // A damaged catalogue may claim rows no file holds: check before allocating them.
        store.check_data(&a.array)?;
    }
    let mut buf = vec![0u8; len as usize];
    store.read_range_into(&a.array, start, start + n, &mut buf)?;
    let mut shape = info.shape.clone();
    shape[0] = n;
    let value = json!({
        "array": a.array,
        "dtype": info.dtype.numpy_name(),
        "shape": info.shape,
        "start": start,
        "stop": start + n,
        "rows": format::rows_json(info.dtype, &info.shape[1..], &buf),
    });
    ctx.emit(value, || {
        format!(
            "{}: {} {}, rows {start}..{} of {total}\n{}\n",
            a.array,
            info.dtype.numpy_name(),
            ui::shape(&info.shape),
            start + n,
            format::array_text(info.dtype, &shape, &buf, !a.full && buf.len() / info.dtype.size() > format::SUMMARY_THRESHOLD)
        )
    });
    Ok(0)
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The store directory.
    pub store: PathBuf,
    /// Only these arrays (default: all).
    pub arrays: Vec<String>,
    /// `0`: statistics of each column (each element of a row, over all rows) instead of
    /// the whole array.
    #[arg(long)]
    pub axis: Option<i64>,
}

/// Running statistics of one group of elements (Welford's mean and variance).
#[derive(Clone, Default)]
struct Acc {
    count: u64,
    nans: u64,
    min: Option<(f64, Option<i128>)>,
    max: Option<(f64, Option<i128>)>,
    mean: f64,
    m2: f64,
}

fn less(a: (f64, Option<i128>), b: (f64, Option<i128>)) -> bool {
    match (a.1, b.1) {
        (Some(x), Some(y)) => x < y,
        _ => a.0 < b.0,
    }
}

impl Acc {
    fn add(&mut self, v: (f64, Option<i128>)) {
        if v.0.is_nan() {
            self.nans += 1;
            return;
        }
        self.count += 1;
        if self.min.is_none_or(|m| less(v, m)) {
            self.min = Some(v);
        }
        if self.max.is_none_or(|m| less(m, v)) {
            self.max = Some(v);
        }
        let d = v.0 - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (v.0 - self.mean);
    }

    fn json(&self) -> Value {
        let num = |v: Option<(f64, Option<i128>)>| match v {
            None => Value::Null,
            Some((_, Some(i))) => json!(i as i64),
            Some((f, None)) => format::fjson(f),
        };
        let (mean, std) = if self.count == 0 {
            (Value::Null, Value::Null)
        } else {
            (format::fjson(self.mean), format::fjson((self.m2 / self.count as f64).sqrt()))
        };
        json!({"count": self.count, "nan_count": self.nans, "min": num(self.min), "max": num(self.max), "mean": mean, "std": std})
    }
}

pub fn stats(a: &StatsArgs, ctx: &Ctx) -> Result<i32> {
    let per_column = match a.axis {
        None => false,
        Some(0) => true,
        Some(x) => return Err(ui::invalid(format!("--axis {x} is not supported: use --axis 0 for per-column statistics, or leave it out"))),
    };
    let store = open_read(&a.store)?;
    let names = select(&store, &a.arrays)?;
    let infos: Vec<ArrayInfo> = names.iter().map(|n| store.info(n)).collect::<Result<_>>()?;
    ui::catch_ctrl_c();
    let total_rows: u64 = infos.iter().map(|i| i.shape.first().copied().unwrap_or(1)).sum();
    let bar = ctx.bar(total_rows, "stats", false);
    let mut results = Vec::new();
    for (name, info) in names.iter().zip(&infos) {
        bar.set_message(name.clone());
        if matches!(info.dtype, numpack::DType::Complex64 | numpack::DType::Complex128) {
            results.push(json!({"name": name, "dtype": info.dtype.numpy_name(), "skipped": "complex values have no order"}));
            bar.inc(info.shape.first().copied().unwrap_or(1));
            continue;
        }
        let es = info.dtype.size();
        // Sizes come from the catalogue: buffers are allocated only once the data files
        // are known to hold them.
        let rows_present = info.shape.first().copied().unwrap_or(1);
        if rows_present > 0 && info.row_bytes() > 0 {
            store.check_data(name)?;
        }
        let cols = if per_column { info.shape.iter().skip(1).product::<u64>() } else { 1 };
        if rows_present == 0 && cols > 1 << 20 {
            return Err(ui::invalid(format!("array {} has no rows and {cols} columns: no statistics to compute", ui::shown(name))));
        }
        let cols = cols as usize;
        let mut accs = vec![Acc::default(); cols.max(1)];
        let mut feed = |bytes: &[u8]| {
            for (k, e) in bytes.chunks_exact(es).enumerate() {
                let v = format::decode(info.dtype, e).number().expect("not complex");
                accs[if per_column { k % cols } else { 0 }].add(v);
            }
        };
        if info.shape.is_empty() {
            feed(&store.load(name)?.1);
            bar.inc(1);
        } else {
            let rb = info.row_bytes().max(1);
            let batch = ((4u64 << 20) / rb).max(1);
            let rows = info.shape[0];
            let mut buf = vec![0u8; (batch.min(rows) * info.row_bytes()) as usize];
            let mut at = 0;
            while at < rows {
                ui::check_interrupt()?;
                let n = batch.min(rows - at);
                let part = &mut buf[..(n * info.row_bytes()) as usize];
                store.read_range_into(name, at, at + n, part)?;
                feed(part);
                at += n;
                bar.inc(n);
            }
        }
        let mut v = json!({"name": name, "dtype": info.dtype.numpy_name(), "shape": info.shape});
        if per_column {
            v["columns"] = Value::Array(accs.iter().map(Acc::json).collect());
        } else {
            v["stats"] = accs[0].json();
        }
        results.push(v);
    }
    bar.finish_and_clear();
    ctx.emit(json!({"axis": a.axis, "arrays": results}), || {
        let mut s = String::new();
        let line = |label: &str, v: &Value| {
            let f = |k: &str| match &v[k] {
                Value::Null => "-".to_string(),
                Value::Number(n) if n.is_f64() => {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    if x != 0.0 && (x.abs() >= 1e9 || x.abs() < 1e-4) { format!("{x:.6e}") } else { format!("{x:.6}") }
                }
                Value::Number(n) => n.to_string(),
                other => other.as_str().unwrap_or("?").to_string(),
            };
            format!(
                "{label:<20} {:>14} {:>14} {:>14} {:>14} {:>8}\n",
                f("min"),
                f("max"),
                f("mean"),
                f("std"),
                v["nan_count"].to_string()
            )
        };
        s += &format!("{:<20} {:>14} {:>14} {:>14} {:>14} {:>8}\n", "array", "min", "max", "mean", "std", "nan");
        for r in &results {
            let name = ui::shown(r["name"].as_str().unwrap());
            let name = name.as_str();
            if let Some(why) = r["skipped"].as_str() {
                s += &format!("{name:<20} skipped: {why}\n");
            } else if let Some(cols) = r["columns"].as_array() {
                for (k, c) in cols.iter().enumerate() {
                    s += &line(&format!("{name}[:, {k}]"), c);
                }
            } else {
                s += &line(name, &r["stats"]);
            }
        }
        s
    });
    Ok(0)
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    /// The store directory.
    pub store: PathBuf,
    /// Only these arrays (default: all).
    pub arrays: Vec<String>,
}

pub fn compact(a: &CompactArgs, ctx: &Ctx) -> Result<i32> {
    if !a.store.join(numpack::metadata::FILE_NAME).exists() && !a.store.join(numpack::wal::FILE_NAME).exists() {
        return Err(numpack::Error::new(numpack::ErrorCode::StoreNotFound, format!("no store at {}", a.store.display())));
    }
    // Ctrl-C from here on, also while waiting for another writer's lock, cancels.
    ui::catch_ctrl_c();
    // A writable open recovers from a killed writer and removes dead processes' temporary
    // files; closing folds the log into metadata.npkm.
    let store = Store::open(&a.store, OpenOptions::default())?;
    if store.is_read_only() {
        return Err(numpack::Error::new(numpack::ErrorCode::ReadOnly, format!("the store at {} is not writable", a.store.display())));
    }
    let names = select(&store, &a.arrays)?;
    let bar = ctx.bar(names.len() as u64, "compact", false);
    let mut done = Vec::new();
    for name in &names {
        ui::check_interrupt()?;
        bar.set_message(name.clone());
        let before = store.info(name)?;
        let rows = before.shape.first().copied().unwrap_or(1);
        let deleted = before.physical_rows.saturating_sub(rows);
        if deleted > 0 {
            store.compact(name)?;
        }
        done.push(json!({"name": name, "rows_reclaimed": deleted, "bytes_reclaimed": deleted * before.row_bytes()}));
        bar.inc(1);
    }
    bar.finish_and_clear();
    store.close()?;
    let rows: u64 = done.iter().map(|v| v["rows_reclaimed"].as_u64().unwrap()).sum();
    let bytes: u64 = done.iter().map(|v| v["bytes_reclaimed"].as_u64().unwrap()).sum();
    let value = json!({"path": a.store.display().to_string(), "arrays": done, "rows_reclaimed": rows, "bytes_reclaimed": bytes});
    ctx.emit(value, || {
        let mut s = String::new();
        for v in &done {
            if v["rows_reclaimed"].as_u64().unwrap() > 0 {
                s += &format!("{}: {} deleted rows removed ({})\n", v["name"].as_str().unwrap(), v["rows_reclaimed"], ui::size(v["bytes_reclaimed"].as_u64().unwrap()));
            }
        }
        s + &format!("compacted {}: {rows} deleted rows, {} reclaimed\n", a.store.display(), ui::size(bytes))
    });
    Ok(0)
}
