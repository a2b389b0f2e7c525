//! `npk check`: the report of `numpack::check::check`.

use std::path::PathBuf;

use clap::Args;
use numpack::check::{check, Severity};
use numpack::Result;
use serde_json::json;

use crate::exit;
use crate::ui::{self, Ctx};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The store directory.
    pub store: PathBuf,
    /// Exit with code 1 only for errors, not for warnings.
    #[arg(long)]
    pub errors_only: bool,
}

/// Exit code 0 when the store is fine; 1 when a finding is an error (or a warning,
/// unless `--errors-only`). Informational findings never fail.
pub fn run(a: &CheckArgs, ctx: &Ctx) -> Result<i32> {
    let report = check(&a.store)?;
    let (errors, warnings, infos) = (report.count(Severity::Error), report.count(Severity::Warning), report.count(Severity::Info));
    let failed = errors > 0 || (warnings > 0 && !a.errors_only);
    let findings: Vec<_> = report
        .findings
        .iter()
        .map(|f| json!({"severity": f.severity.name(), "id": f.id, "file": f.file, "array": f.array, "message": f.message}))
        .collect();
    let value = json!({
        "path": a.store.display().to_string(),
        "ok": !failed,
        "arrays": report.arrays,
        "errors": errors,
        "warnings": warnings,
        "infos": infos,
        "needs_recovery": report.needs_recovery(),
        "findings": findings,
    });
    ctx.emit(value, || {
        let mut s = String::new();
        for f in &report.findings {
            let place = match (&f.file, &f.array) {
                (Some(file), Some(arr)) => format!(" {} (array {arr:?})", ui::shown(file)),
                (Some(file), None) => format!(" {}", ui::shown(file)),
                (None, Some(arr)) => format!(" array {arr:?}"),
                (None, None) => String::new(),
            };
            s += &format!("{:<7} {}{place}: {}\n", f.severity.name(), f.id, f.message);
        }
        let verdict = if errors > 0 { "DAMAGED" } else if warnings > 0 { "ok, with warnings" } else { "ok" };
        s + &format!(
            "{}: {verdict} ({} arrays; {errors} errors, {warnings} warnings, {infos} notes)\n",
            a.store.display(),
            report.arrays
        )
    });
    Ok(if failed { exit::PROBLEMS } else { exit::OK })
}
