//! `npk`: inspect, verify, compact and package numpack stores from the shell.
//!
//! Every subcommand prints human-readable text, or one JSON document with `--json`, and
//! exits with a code from the table in [`exit`]. Errors print `npk: <message>` and a hint
//! on standard error.
//!
//! Adding a subcommand: one variant in [`Command`] (its doc comment is its help), one
//! `run` function taking its arguments and the [`ui::Ctx`], and one line in [`dispatch`].

mod check_cmd;
mod exit;
mod format;
mod npy_cmds;
mod safetensors_cmds;
mod package_cmds;
mod store_cmds;
mod ui;

use clap::{Parser, Subcommand};

/// Inspect, verify, compact and package numpack stores, and move arrays to and from .npy.
#[derive(Parser, Debug)]
#[command(name = "npk", version, about = "Inspect, verify, compact and package numpack stores, and move arrays to and from .npy.", long_about = None)]
struct Cli {
    /// Print one JSON document on standard output instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Summary of a store: every array's dtype, shape, live and deleted rows, bytes.
    Info(store_cmds::InfoArgs),
    /// List the arrays of a store.
    Ls(store_cmds::LsArgs),
    /// Print the first rows of an array.
    Head(store_cmds::RowsArgs),
    /// Print the last rows of an array.
    Tail(store_cmds::RowsArgs),
    /// Min, max, mean, std and NaN count of arrays (or of each column with --axis 0).
    Stats(store_cmds::StatsArgs),
    /// Verify a store without changing it; exit code 1 when it finds problems.
    Check(check_cmd::CheckArgs),
    /// Reclaim the space of deleted rows (and recover and fold the log on the way).
    Compact(store_cmds::CompactArgs),
    /// Pack a store into one .npkg file.
    Pack(package_cmds::PackArgs),
    /// Unpack a .npkg file into a store directory.
    Unpack(package_cmds::UnpackArgs),
    /// List the files of a .npkg package without unpacking it.
    PackageInfo(package_cmds::PackageInfoArgs),
    /// Import a .npy (or every array of an .npz, or tensors of a .safetensors) into a store, streamed.
    Import(npy_cmds::ImportArgs),
    /// Export an array to a .npy file (appendable), or arrays to a .safetensors file; streamed, atomic.
    Export(npy_cmds::ExportArgs),
    /// Append the rows of one .npy file to another in place (safe with other appenders).
    AppendNpy(npy_cmds::AppendNpyArgs),
    /// Repair a .npy left by a crashed writer: fix its shape, drop or zero-fill a partial row.
    RecoverNpy(npy_cmds::RecoverNpyArgs),
}

/// Runs a subcommand: `Ok(exit code)` (0, or 1 when `check` finds problems).
fn dispatch(command: &Command, ctx: &ui::Ctx) -> numpack::Result<i32> {
    match command {
        Command::Info(a) => store_cmds::info(a, ctx),
        Command::Ls(a) => store_cmds::ls(a, ctx),
        Command::Head(a) => store_cmds::head(a, ctx),
        Command::Tail(a) => store_cmds::tail(a, ctx),
        Command::Stats(a) => store_cmds::stats(a, ctx),
        Command::Check(a) => check_cmd::run(a, ctx),
        Command::Compact(a) => store_cmds::compact(a, ctx),
        Command::Pack(a) => package_cmds::pack(a, ctx),
        Command::Unpack(a) => package_cmds::unpack(a, ctx),
        Command::PackageInfo(a) => package_cmds::package_info(a, ctx),
        Command::Import(a) => npy_cmds::import(a, ctx),
        Command::Export(a) => npy_cmds::export(a, ctx),
        Command::AppendNpy(a) => npy_cmds::append_npy(a, ctx),
        Command::RecoverNpy(a) => npy_cmds::recover_npy(a, ctx),
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => exit::OK,
                _ => exit::USAGE,
            };
            let _ = e.print();
            // Scripts asking for JSON get the usage error as JSON too.
            if code == exit::USAGE && std::env::args().any(|a| a == "--json") {
                let text = e.to_string();
                let msg = text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
                let v = serde_json::json!({"error": {"status": "USAGE", "exit_code": code, "message": msg, "hint": "see `npk --help`"}});
                ui::out_json(&format!("{v:#}\n"));
            }
            std::process::exit(code);
        }
    };
    let ctx = ui::Ctx::new(cli.json);
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&cli.command, &ctx))) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => ui::report_error(&ctx, &e),
        Err(_) => ui::report_error(&ctx, &numpack::Error::new(numpack::ErrorCode::Panic, "internal error (a panic; see above)")),
    };
    std::process::exit(code);
}
