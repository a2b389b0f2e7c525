//! Subcommands on packages: pack, unpack, package-info.

use std::path::PathBuf;

use clap::Args;
use numpack::package::{self, PackOptions, PackageInfo};
use numpack::{OpenOptions, Result, Store};
use serde_json::{json, Value};

use crate::ui::{self, Ctx};

fn info_json(path: &std::path::Path, i: &PackageInfo) -> Value {
    json!({
        "package": path.display().to_string(),
        "version": i.version,
        "compression": i.compression_name,
        "files": i.entries.iter().map(|e| json!({
            "name": e.name,
            "original_size": e.original_size,
            "stored_size": e.payload_size(),
            "crc32": e.crc32,
        })).collect::<Vec<_>>(),
        "total_original_size": i.total_original_size,
        "total_stored_size": i.total_stored_size,
    })
}

fn info_text(i: &PackageInfo) -> String {
    let w = i.entries.iter().map(|e| ui::shown(&e.name).chars().count()).max().unwrap_or(4).max(4);
    let mut s = format!("{:<w$}  {:>12} {:>12}\n", "file", "size", "stored");
    for e in &i.entries {
        s += &format!("{:<w$}  {:>12} {:>12}\n", ui::shown(&e.name), ui::size(e.original_size), ui::size(e.payload_size()));
    }
    s
}

#[derive(Args, Debug)]
pub struct PackArgs {
    /// The store directory.
    pub store: PathBuf,
    /// The package to write (default: `<store>.npkg` beside the store).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Store files raw instead of compressing them with zstd.
    #[arg(long)]
    pub no_compress: bool,
    /// zstd level.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub level: i32,
    /// Replace an existing package.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn pack(a: &PackArgs, ctx: &Ctx) -> Result<i32> {
    if !a.store.join(numpack::metadata::FILE_NAME).exists() {
        return Err(numpack::Error::new(numpack::ErrorCode::StoreNotFound, format!("no store at {}", a.store.display())));
    }
    let target = a.output.clone().unwrap_or_else(|| package::default_package_path(&a.store));
    // Writable where possible: packing folds the log into metadata.npkm first.
    let store = Store::open(&a.store, OpenOptions::default())?;
    ui::catch_ctrl_c();
    let bar = ctx.bar(0, "pack", true);
    let mut cb = ui::progress(&bar);
    let opts = PackOptions { compress: !a.no_compress, level: a.level, overwrite: a.overwrite };
    let info = package::pack(&store, &target, &opts, Some(&mut cb));
    bar.finish_and_clear();
    let info = info?;
    store.close()?;
    let mut v = info_json(&target, &info);
    v["store"] = json!(a.store.display().to_string());
    ctx.emit(v, || {
        format!(
            "packed {} into {}: {} files, {} -> {}\n",
            a.store.display(),
            target.display(),
            info.entries.len(),
            ui::size(info.total_original_size),
            ui::size(info.total_stored_size)
        )
    });
    Ok(0)
}

#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// The package file.
    pub package: PathBuf,
    /// The store directory to create (default: beside the package, named after it).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Replace an existing store at the target (only once the package is validated).
    #[arg(long)]
    pub overwrite: bool,
    /// Skip the CRC check of the unpacked files.
    #[arg(long)]
    pub no_verify: bool,
}

pub fn unpack(a: &UnpackArgs, ctx: &Ctx) -> Result<i32> {
    let target = a.output.clone().unwrap_or_else(|| package::default_unpack_path(&a.package));
    ui::catch_ctrl_c();
    let bar = ctx.bar(0, "unpack", true);
    let mut cb = ui::progress(&bar);
    let info = package::unpack(&a.package, &target, a.overwrite, !a.no_verify, Some(&mut cb));
    bar.finish_and_clear();
    let info = info?;
    let mut v = info_json(&a.package, &info);
    v["store"] = json!(target.display().to_string());
    ctx.emit(v, || format!("unpacked {} into {}: {} files, {}\n", a.package.display(), target.display(), info.entries.len(), ui::size(info.total_original_size)));
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PackageInfoArgs {
    /// The package file.
    pub package: PathBuf,
}

pub fn package_info(a: &PackageInfoArgs, ctx: &Ctx) -> Result<i32> {
    let info = package::info(&a.package)?;
    ctx.emit(info_json(&a.package, &info), || {
        format!(
            "{}: package version {}, compression {}, {} files, {} ({} stored)\n{}",
            a.package.display(),
            info.version,
            info.compression_name,
            info.entries.len(),
            ui::size(info.total_original_size),
            ui::size(info.total_stored_size),
            info_text(&info)
        )
    });
    Ok(0)
}
