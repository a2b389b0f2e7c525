//! `npk import` / `npk export` for `.safetensors` files (over `numpack::safetensors`).

use std::path::Path;

use numpack::safetensors::{self, ExportOptions, Header, ImportOptions};
use numpack::{Error, ErrorCode, OpenOptions, Result, Store};
use serde_json::{json, Value};

use crate::npy_cmds::{ExportArgs, ImportArgs};
use crate::ui::{self, Ctx};

/// Whether `path` names a `.safetensors` file (by its extension).
pub fn is_safetensors(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

fn tensors_json(h: &Header) -> Vec<Value> {
    h.tensors.iter().map(|t| json!({"name": t.name, "dtype": t.dtype_name, "shape": t.shape})).collect()
}

pub fn import(a: &ImportArgs, ctx: &Ctx) -> Result<i32> {
    if a.name.is_some() {
        return Err(ui::invalid("--name applies to a .npy; the tensors of a .safetensors are named by their keys (select them with --tensor)"));
    }
    let info = safetensors::info(&a.file)?;
    let store = Store::open(&a.store, OpenOptions { create: true, ..OpenOptions::default() })?;
    ui::catch_ctrl_c();
    let bar = ctx.bar(0, "import", true);
    let mut cb = ui::progress(&bar);
    let opts = ImportOptions { names: (!a.tensors.is_empty()).then_some(&a.tensors[..]), overwrite: a.overwrite };
    let imported = safetensors::import(&store, &a.file, &opts, Some(&mut cb));
    bar.finish_and_clear();
    let names = imported?;
    let arrays: Vec<Value> = names
        .iter()
        .map(|n| store.info(n).map(|i| json!({"name": n, "dtype": i.dtype.numpy_name(), "shape": i.shape})))
        .collect::<Result<_>>()?;
    store.close()?;
    let metadata: serde_json::Map<String, Value> = info.header.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let human = arrays
        .iter()
        .map(|v| {
            let shape: Vec<u64> = serde_json::from_value(v["shape"].clone()).unwrap_or_default();
            format!("imported {} into {}: {} {}\n", a.file.display(), v["name"].as_str().unwrap_or(""), v["dtype"].as_str().unwrap_or(""), ui::shape(&shape))
        })
        .collect::<String>();
    ctx.emit(json!({"store": a.store.display().to_string(), "file": a.file.display().to_string(), "arrays": arrays, "metadata": metadata}), || human);
    Ok(0)
}

pub fn export(a: &ExportArgs, ctx: &Ctx) -> Result<i32> {
    let metadata = a
        .metadata
        .iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| ui::invalid(format!("--metadata {kv:?}: expected KEY=VALUE"))))
        .collect::<Result<Vec<_>>>()?;
    if !a.store.join(numpack::metadata::FILE_NAME).exists() && !a.store.join(numpack::wal::FILE_NAME).exists() {
        return Err(Error::new(ErrorCode::StoreNotFound, format!("no store at {}", a.store.display())));
    }
    let store = Store::open(&a.store, OpenOptions { read_only: true, ..OpenOptions::default() })?;
    ui::catch_ctrl_c();
    let bar = ctx.bar(0, "export", true);
    let mut cb = ui::progress(&bar);
    let arrays = a.arrays()?;
    let opts = ExportOptions { names: (!arrays.is_empty()).then_some(&arrays[..]), metadata: &metadata, overwrite: a.overwrite };
    let header = safetensors::export(&store, a.file(), &opts, Some(&mut cb));
    bar.finish_and_clear();
    let header = header?;
    store.close()?;
    let tensors = tensors_json(&header);
    let human = format!("exported {} arrays to {}\n", tensors.len(), a.file().display());
    ctx.emit(json!({"store": a.store.display().to_string(), "file": a.file().display().to_string(), "tensors": tensors}), || human);
    Ok(0)
}
