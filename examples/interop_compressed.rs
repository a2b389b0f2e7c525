//! Compressed arrays and NumPack 0.4.5 (the upstream package).
//!
//! `cargo run --example interop_compressed -- <dir>`
//!     writes `<dir>/mixed.npk`: a plain float64 array `plain` (4 × 3, values 0..12) and
//!     an int64 array `z` (10,000 × 3, row r = [r, 2r, -r]) saved compressed; closes it.
//!     `tests/interop/check_upstream_compressed.py` then checks that NumPack lists both,
//!     loads `plain` exactly, and refuses `z` (it finds no `data_z.npkd`) instead of
//!     returning data.
//!
//! `cargo run --example interop_compressed -- --verify <dir>`
//!     reopens `<dir>/mixed.npk` (after NumPack opened and closed it) and checks both
//!     arrays are intact and `z` still compressed. Prints "N passed, M failed".
//!
//! `tests/interop/run.sh` runs both.

use std::path::Path;
use std::process::ExitCode;

use numpack::{Compression, DType, OpenOptions, SaveOptions, Store};

const ROWS: i64 = 10_000;

fn plain() -> Vec<u8> {
    (0..12).flat_map(|i| (i as f64).to_le_bytes()).collect()
}

fn z() -> Vec<u8> {
    (0..ROWS).flat_map(|r| [r, 2 * r, -r]).flat_map(|v| v.to_le_bytes()).collect()
}

fn write(dir: &Path) -> numpack::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| numpack::Error::io("cannot create", dir, e))?;
    let s = Store::open(dir.join("mixed.npk"), OpenOptions { drop_if_exists: true, ..Default::default() })?;
    s.save("plain", DType::Float64, &[4, 3], &plain())?;
    let opts = SaveOptions { compression: Some(Compression { level: 3 }) };
    s.save_with("z", DType::Int64, &[ROWS as u64, 3], &z(), &opts)?;
    s.close()
}

fn verify(dir: &Path) -> numpack::Result<(u32, u32)> {
    let s = Store::open(dir.join("mixed.npk"), OpenOptions::default())?;
    let mut ok = 0;
    let mut bad = 0;
    let mut check = |cond: bool, what: &str| {
        if cond {
            ok += 1;
        } else {
            bad += 1;
            println!("FAIL {what}");
        }
    };
    check(s.names()? == ["plain", "z"], "both arrays listed");
    check(s.load("plain")?.1 == plain(), "plain array intact");
    check(s.load("z")?.1 == z(), "compressed array intact");
    check(s.compression("z")?.is_some(), "compressed array still compressed");
    check(s.compression("plain")?.is_none(), "plain array still plain");
    s.close()?;
    Ok((ok, bad))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, dir] if flag == "--verify" => verify(Path::new(dir)).map(|(ok, bad)| {
            println!("{ok} passed, {bad} failed");
            bad == 0
        }),
        [dir] if !dir.starts_with("--") => write(Path::new(dir)).map(|()| true),
        _ => {
            eprintln!("usage: interop_compressed <dir> | interop_compressed --verify <dir>");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("interop_compressed: {e}");
            ExitCode::FAILURE
        }
    }
}
