//! `.npkg` packages from the command line, for the interop tests with NumPack 0.5.0
//! (`tests/interop/npkg.sh`) and for trying packages by hand.
//!
//! ```text
//! npkg_tool pack <store> <package> [--no-compress] [--level N] [--overwrite]
//! npkg_tool unpack <package> <store> [--overwrite] [--no-verify]
//! npkg_tool info <package>
//! ```
//!
//! Each prints the package's description as one JSON object on stdout:
//! `{"version", "compression", "compression_name", "file_count", "files": [{"name",
//! "original_size", "stored_size", "crc32"}], "total_original_size", "total_stored_size"}`
//! (`crc32` is null from `info`). On failure it prints `npkg_tool: <STATUS>: <message>`
//! on stderr and exits with 1 (2 for a usage error).

use std::path::Path;
use std::process::ExitCode;

use numpack::package::{self, PackOptions, PackageInfo};
use numpack::{OpenOptions, Store};

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json(info: &PackageInfo) -> String {
    let files: Vec<String> = info
        .entries
        .iter()
        .map(|e| {
            format!(
                "{{\"name\": {}, \"original_size\": {}, \"stored_size\": {}, \"crc32\": {}}}",
                json_str(&e.name),
                e.original_size,
                e.stored_size,
                e.crc32.map_or("null".to_string(), |c| c.to_string())
            )
        })
        .collect();
    format!(
        "{{\"version\": {}, \"compression\": {}, \"compression_name\": {}, \"file_count\": {}, \"files\": [{}], \
         \"total_original_size\": {}, \"total_stored_size\": {}}}",
        info.version,
        info.compression,
        json_str(info.compression_name),
        info.entries.len(),
        files.join(", "),
        info.total_original_size,
        info.total_stored_size
    )
}

fn run(args: &[String]) -> Result<PackageInfo, Option<numpack::Error>> {
    let flag = |f: &str| args.iter().any(|a| a == f);
    let positional: Vec<&String> = {
        let mut v = Vec::new();
        let mut skip = false;
        for a in &args[1..] {
            if skip {
                skip = false;
            } else if a == "--level" {
                skip = true;
            } else if !a.starts_with("--") {
                v.push(a);
            }
        }
        v
    };
    match (args.first().map(String::as_str), positional.as_slice()) {
        (Some("pack"), [store, target]) => {
            let mut opts = PackOptions { compress: !flag("--no-compress"), overwrite: flag("--overwrite"), ..Default::default() };
            if let Some(i) = args.iter().position(|a| a == "--level") {
                opts.level = args.get(i + 1).and_then(|l| l.parse().ok()).ok_or(None)?;
            }
            let store = Store::open(store, OpenOptions::default())?;
            let info = package::pack(&store, Path::new(target), &opts, None)?;
            store.close()?;
            Ok(info)
        }
        (Some("unpack"), [pkg, target]) => Ok(package::unpack(Path::new(pkg), Path::new(target), flag("--overwrite"), !flag("--no-verify"), None)?),
        (Some("info"), [pkg]) => Ok(package::info(Path::new(pkg))?),
        _ => Err(None),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(info) => {
            println!("{}", json(&info));
            ExitCode::SUCCESS
        }
        Err(Some(e)) => {
            eprintln!("npkg_tool: {}: {}", e.code.name(), e.message);
            ExitCode::from(1)
        }
        Err(None) => {
            eprintln!(
                "usage: npkg_tool pack <store> <package> [--no-compress] [--level N] [--overwrite]\n       \
                 npkg_tool unpack <package> <store> [--overwrite] [--no-verify]\n       npkg_tool info <package>"
            );
            ExitCode::from(2)
        }
    }
}
