//! Subcommands on NumPy files: import, export, append-npy, recover-npy (over `numpack::npy`);
//! import and export hand `.safetensors` files to `safetensors_cmds`.

use std::path::{Path, PathBuf};

use clap::Args;
use numpack::npy::{self, AppendOptions, NpyInfo};
use numpack::{Error, ErrorCode, OpenOptions, Result, Store};
use serde_json::{json, Value};

use crate::ui::{self, Ctx};

fn npy_json(path: &Path, i: &NpyInfo) -> Value {
    json!({
        "file": path.display().to_string(),
        "dtype": i.dtype.numpy_name(),
        "descr": i.descr,
        "shape": i.shape,
        "fortran_order": i.fortran_order,
        "version": format!("{}.{}", i.version.0, i.version.1),
        "appendable": i.appendable,
        "file_size": i.file_size,
    })
}

/// Points at `recover-npy` when a `.npy` file needs it (the generic hint is about stores).
fn with_npy_hint(e: Error, path: &Path) -> Error {
    match e.code {
        ErrorCode::NeedsRecovery => Error::new(e.code, format!("{}; repair it with `npk recover-npy {}`", e.message, path.display())),
        _ => e,
    }
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The store directory (created if missing).
    pub store: PathBuf,
    /// The `.npy`, `.npz` or `.safetensors` file to import.
    pub file: PathBuf,
    /// The array name for a `.npy` (default: the file name without `.npy`). An `.npz`
    /// gives one array per member, named by its key.
    #[arg(long)]
    pub name: Option<String>,
    /// Replace arrays that already exist.
    #[arg(long)]
    pub overwrite: bool,
    /// For a `.safetensors`: import only this tensor (repeatable; default: all). Tensors
    /// become arrays named by their keys.
    #[arg(long = "tensor", value_name = "KEY")]
    pub tensors: Vec<String>,
}

pub fn import(a: &ImportArgs, ctx: &Ctx) -> Result<i32> {
    if crate::safetensors_cmds::is_safetensors(&a.file) {
        return crate::safetensors_cmds::import(a, ctx);
    }
    if !a.tensors.is_empty() {
        return Err(ui::invalid("--tensor applies to a .safetensors file"));
    }
    let ext = a.file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let npz = match ext.as_deref() {
        Some("npy") => false,
        Some("npz") => true,
        _ => return Err(ui::invalid(format!("{}: expected a .npy, .npz or .safetensors file", a.file.display()))),
    };
    if npz && a.name.is_some() {
        return Err(ui::invalid("--name applies to a .npy; the arrays of an .npz are named by their keys"));
    }
    if !a.file.exists() {
        return Err(Error::new(ErrorCode::NotFound, format!("no file at {}", a.file.display())));
    }
    let store = Store::open(&a.store, OpenOptions { create: true, ..OpenOptions::default() })?;
    ui::catch_ctrl_c();
    let bar = ctx.bar(0, "import", true);
    let mut cb = ui::progress(&bar);
    let imported = if npz {
        npy::import_npz(&store, &a.file, a.overwrite, Some(&mut cb))
    } else {
        let name = match &a.name {
            Some(n) => n.clone(),
            None => a.file.file_stem().and_then(|s| s.to_str()).map(str::to_string).ok_or_else(|| {
                ui::invalid(format!("cannot take an array name from {}; pass --name", a.file.display()))
            })?,
        };
        npy::import(&store, &name, &a.file, a.overwrite, Some(&mut cb)).map(|_| vec![name]).map_err(|e| with_npy_hint(e, &a.file))
    };
    bar.finish_and_clear();
    let names = imported?;
    let arrays: Vec<Value> = names
        .iter()
        .map(|n| store.info(n).map(|i| json!({"name": n, "dtype": i.dtype.numpy_name(), "shape": i.shape})))
        .collect::<Result<_>>()?;
    store.close()?;
    let text = || {
        let mut s = String::new();
        for v in &arrays {
            let shape: Vec<u64> = serde_json::from_value(v["shape"].clone()).unwrap_or_default();
            s += &format!("imported {} into {}: {} {}\n", a.file.display(), v["name"].as_str().unwrap_or(""), v["dtype"].as_str().unwrap_or(""), ui::shape(&shape));
        }
        s
    };
    let human = text();
    ctx.emit(json!({"store": a.store.display().to_string(), "file": a.file.display().to_string(), "arrays": arrays}), || human);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The store directory.
    pub store: PathBuf,
    /// The arrays to export (their live rows, in order), then the file to write: a `.npy`
    /// (exactly one array; written atomically, its header can grow for appends) or a
    /// `.safetensors` (any number of arrays, none meaning every array; written atomically).
    #[arg(value_name = "[ARRAY]... FILE", required = true, num_args = 1..)]
    pub targets: Vec<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub overwrite: bool,
    /// For a `.safetensors`: an entry of its `__metadata__` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
}

impl ExportArgs {
    /// The file to write (the last target).
    pub fn file(&self) -> &Path {
        self.targets.last().expect("clap requires one target")
    }

    /// The array names (every target but the last).
    pub fn arrays(&self) -> Result<Vec<String>> {
        let names = &self.targets[..self.targets.len() - 1];
        names.iter().map(|n| n.to_str().map(str::to_string).ok_or_else(|| ui::invalid(format!("array name {n:?} is not UTF-8")))).collect()
    }
}

pub fn export(a: &ExportArgs, ctx: &Ctx) -> Result<i32> {
    if crate::safetensors_cmds::is_safetensors(a.file()) {
        return crate::safetensors_cmds::export(a, ctx);
    }
    if !a.metadata.is_empty() {
        return Err(ui::invalid("--metadata applies to a .safetensors file"));
    }
    let arrays = a.arrays()?;
    let [array] = &arrays[..] else {
        return Err(ui::invalid(format!("a .npy holds exactly one array, but {} were given", arrays.len())));
    };
    let file = a.file();
    if !a.store.join(numpack::metadata::FILE_NAME).exists() && !a.store.join(numpack::wal::FILE_NAME).exists() {
        return Err(Error::new(ErrorCode::StoreNotFound, format!("no store at {}", a.store.display())));
    }
    let store = Store::open(&a.store, OpenOptions { read_only: true, ..OpenOptions::default() })?;
    ui::catch_ctrl_c();
    let bar = ctx.bar(0, "export", true);
    let mut cb = ui::progress(&bar);
    let info = npy::export(&store, array, file, a.overwrite, Some(&mut cb));
    bar.finish_and_clear();
    let info = info?;
    store.close()?;
    let mut v = npy_json(file, &info);
    v["store"] = json!(a.store.display().to_string());
    v["array"] = json!(array);
    ctx.emit(v, || format!("exported {} to {}: {} {}\n", array, file.display(), info.dtype.numpy_name(), ui::shape(&info.shape)));
    Ok(0)
}

#[derive(Args, Debug)]
pub struct AppendNpyArgs {
    /// The `.npy` file to grow in place.
    pub target: PathBuf,
    /// The `.npy` file whose rows are appended (same dtype and row shape; any byte order).
    pub source: PathBuf,
    /// Create the target (shaped like the source, with no rows) if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// First rewrite a target whose header has no room to grow (a file written by NumPy).
    #[arg(long)]
    pub make_appendable: bool,
    /// fsync the rows and the header before returning.
    #[arg(long)]
    pub sync: bool,
}

pub fn append_npy(a: &AppendNpyArgs, ctx: &Ctx) -> Result<i32> {
    let mut rewritten = false;
    ui::catch_ctrl_c();
    if a.target.exists() {
        let info = npy::info(&a.target)?;
        if !info.appendable && !info.shape.is_empty() {
            if !a.make_appendable {
                let why = if info.fortran_order { "it is in Fortran order" } else { "its header has no spare room" };
                return Err(Error::new(
                    ErrorCode::Unsupported,
                    format!("{} cannot grow in place ({why}); pass --make-appendable to rewrite it once with a header that can grow", a.target.display()),
                ));
            }
            let bar = ctx.bar(0, "rewrite", true);
            let mut cb = ui::progress(&bar);
            let r = npy::make_appendable(&a.target, Some(&mut cb));
            bar.finish_and_clear();
            rewritten = r.map_err(|e| with_npy_hint(e, &a.target))?;
        }
    }
    let opts = AppendOptions { sync: a.sync, create: a.create };
    let bar = ctx.bar(0, "append", true);
    let mut cb = ui::progress(&bar);
    let rows = npy::append_file(&a.target, &a.source, opts, Some(&mut cb));
    bar.finish_and_clear();
    let rows = rows.map_err(|e| with_npy_hint(e, &a.target))?;
    let info = npy::info(&a.target)?;
    let mut v = npy_json(&a.target, &info);
    v["rows"] = json!(rows);
    v["made_appendable"] = json!(rewritten);
    ctx.emit(v, || format!("appended {} to {}: now {} {}\n", a.source.display(), a.target.display(), info.dtype.numpy_name(), ui::shape(&info.shape)));
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RecoverNpyArgs {
    /// The `.npy` file left by a crashed writer (its size does not match its header).
    pub file: PathBuf,
    /// Complete an incomplete last row with zeros instead of dropping it.
    #[arg(long)]
    pub zero_fill: bool,
}

pub fn recover_npy(a: &RecoverNpyArgs, ctx: &Ctx) -> Result<i32> {
    let r = npy::recover(&a.file, a.zero_fill)?;
    let v = json!({
        "file": a.file.display().to_string(),
        "clean": r.was_clean(),
        "header_rows": r.header_rows,
        "rows": r.rows,
        "dropped_bytes": r.dropped_bytes,
        "zero_filled_bytes": r.zero_filled_bytes,
        "rewritten": r.rewritten,
    });
    ctx.emit(v, || {
        if r.was_clean() {
            format!("{}: intact ({} rows), nothing to do\n", a.file.display(), r.rows)
        } else {
            let mut s = format!("{}: header said {} rows, now {} rows", a.file.display(), r.header_rows, r.rows);
            if r.dropped_bytes > 0 {
                s += &format!("; dropped an incomplete last row ({} bytes)", r.dropped_bytes);
            }
            if r.zero_filled_bytes > 0 {
                s += &format!("; completed the last row with {} zero bytes", r.zero_filled_bytes);
            }
            if r.rewritten {
                s += "; the file was rewritten to make room in its header";
            }
            s + "\n"
        }
    });
    Ok(0)
}
