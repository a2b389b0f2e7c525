//! Output: text or JSON on standard output, errors on standard error, progress bars
//! (only when standard error is a terminal) and Ctrl-C as cancellation.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use numpack::{Error, ErrorCode};
use serde_json::{json, Value};

use crate::exit;

pub struct Ctx {
    pub json: bool,
    /// Progress bars are drawn (standard error is a terminal and the output is text).
    pub bars: bool,
}

impl Ctx {
    pub fn new(json: bool) -> Ctx {
        Ctx { json, bars: std::io::stderr().is_terminal() }
    }

    /// Prints `value` (with `--json`) or the text `human` builds, on standard output.
    pub fn emit(&self, value: Value, human: impl FnOnce() -> String) {
        if self.json { out_json(&format!("{value:#}\n")) } else { out(&human()) }
    }

    /// A progress bar over `total` units (`bytes` formats them as sizes), hidden unless
    /// standard error is a terminal.
    pub fn bar(&self, total: u64, what: &str, bytes: bool) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let tmpl = if bytes {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg} [{bar:30}] {pos}/{len} eta {eta}"
        };
        pb.set_style(ProgressStyle::with_template(tmpl).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
        pb.set_message(what.to_string());
        pb
    }
}

/// Characters a terminal does not show as themselves: C0/C1 controls (escape sequences
/// can move the cursor, rewrite the title or hide earlier output) and the invisible
/// format characters that reorder or hide text (bidi overrides, zero-width marks).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// `text` with every character a terminal would not show as itself written as `\u{..}`
/// (`\u00XX` inside JSON), except the characters in `keep` (a layout's line breaks and
/// tabs). The one helper through which names, paths and messages from files reach the
/// terminal: a name crafted by someone else cannot drive the terminal or hide text.
pub fn escape<'a>(text: &'a str, keep: &[char], json: bool) -> std::borrow::Cow<'a, str> {
    if !text.chars().any(|c| hidden(c) && !keep.contains(&c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut s = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) && !keep.contains(&c) {
            s.push_str(&if json { format!("\\u{:04x}", c as u32) } else { format!("\\u{{{:x}}}", c as u32) });
        } else {
            s.push(c);
        }
    }
    std::borrow::Cow::Owned(s)
}

/// A name or path as one field of a line: even line breaks and tabs are escaped, and a
/// backslash is doubled so that an escape cannot be mistaken for the name's own text.
pub fn shown(text: &str) -> String {
    escape(&text.replace('\\', "\\\\"), &[], false).into_owned()
}

/// Writes text to standard output; a closed pipe (`npk head ... | head -1`) ends quietly.
/// It passes through [`escape`], keeping only its layout (lines and tabs).
pub fn out(text: &str) {
    write_out(&escape(text, &['\n', '\t'], false));
}

/// Writes JSON to standard output, escaping what serde_json leaves raw (C1 controls,
/// format characters) as JSON escapes.
pub fn out_json(text: &str) {
    write_out(&escape(text, &['\n', '\t'], true));
}

fn write_out(text: &str) {
    let mut so = std::io::stdout().lock();
    if let Err(e) = so.write_all(text.as_bytes()).and_then(|_| so.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(exit::OK);
        }
        eprintln!("npk: cannot write the output: {e}");
        std::process::exit(exit::IO);
    }
}

/// Prints `npk: <message>` and a hint on standard error (and, with `--json`, the error as
/// JSON on standard output); returns the exit code.
pub fn report_error(ctx: &Ctx, e: &Error) -> i32 {
    let (code, hint) = exit::classify(e);
    eprintln!("npk: {}", escape(&e.message, &['\n', '\t'], false));
    if !hint.is_empty() {
        eprintln!("hint: {}", escape(hint, &['\n', '\t'], false));
    }
    if ctx.json {
        let v = json!({"error": {"status": e.code.name(), "exit_code": code, "message": e.message, "hint": hint}});
        out_json(&format!("{v:#}\n"));
    }
    code
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From now on Ctrl-C asks the running operation to stop at its next checkpoint (see
/// [`interrupted`]) instead of killing the process; a second Ctrl-C kills it.
pub fn catch_ctrl_c() {
    extern "C" fn second(_: libc::c_int) {
        // SAFETY: restoring the default action and re-raising are async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::raise(libc::SIGINT);
        }
    }
    extern "C" fn first(sig: libc::c_int) {
        on_sigint(sig);
        // SAFETY: installing a handler is async-signal-safe.
        unsafe { libc::signal(libc::SIGINT, second as *const () as libc::sighandler_t) };
    }
    // SAFETY: the handler only stores to an atomic and reinstalls a handler.
    unsafe { libc::signal(libc::SIGINT, first as *const () as libc::sighandler_t) };
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// `CANCELLED` when Ctrl-C was pressed.
pub fn check_interrupt() -> numpack::Result<()> {
    if interrupted() {
        return Err(Error::new(ErrorCode::Cancelled, "interrupted by Ctrl-C"));
    }
    Ok(())
}

/// A progress callback for the library's long operations: draws `bar` and stops on
/// Ctrl-C (the operation then fails with `CANCELLED`, exit code 11, leaving nothing
/// half-done).
pub fn progress(bar: &ProgressBar) -> impl FnMut(u64, u64) -> bool + '_ {
    move |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        !interrupted()
    }
}

/// `1234567` -> `"1.2 MiB"`.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// `[3, 4]` -> `"(3, 4)"`, `[5]` -> `"(5,)"`, as numpy prints shapes.
pub fn shape(s: &[u64]) -> String {
    match s {
        [one] => format!("({one},)"),
        _ => format!("({})", s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// An invalid-argument error.
pub fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, msg)
}

#[cfg(test)]
mod tests {
    use super::{escape, shown};

    #[test]
    fn what_a_terminal_would_not_show_is_escaped() {
        assert_eq!(escape("plain name\tand\n", &['\n', '\t'], false), "plain name\tand\n");
        assert_eq!(escape("a\u{1b}[2Jb\u{9b}c", &['\n'], false), "a\\u{1b}[2Jb\\u{9b}c");
        assert_eq!(escape("x\u{202e}y\u{200b}", &[], true), "x\\u202ey\\u200b");
        assert_eq!(shown("a\tb\\c\nd"), "a\\u{9}b\\\\c\\u{a}d");
        assert_eq!(shown("données ü 数"), "données ü 数", "printable text is left alone");
    }
}
