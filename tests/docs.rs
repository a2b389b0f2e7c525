//! The README stays true to the code: its C conventions are the ones documented in
//! `src/ffi/mod.rs`, and every `npk_*` name it mentions exists in the header.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn readme_conventions_match_the_ffi_module_docs() {
    let src = read("src/ffi/mod.rs");
    let doc: Vec<&str> = src
        .lines()
        .skip_while(|l| *l != "//! # API conventions")
        .skip(2)
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.strip_prefix("//! ").unwrap_or(l.strip_prefix("//!").unwrap()))
        .collect();
    let readme = read("README.md");
    let section: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("<!-- c-api-conventions"))
        .skip(1)
        .take_while(|l| !l.starts_with("<!-- /c-api-conventions"))
        .collect();
    assert!(!doc.is_empty());
    assert_eq!(section.join("\n").trim_end(), doc.join("\n").trim_end(), "README's C conventions differ from src/ffi/mod.rs");
}

fn npk_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("npk_") {
        let start = i + pos;
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if start > 0 && ident(bytes[start - 1]) {
            i = start + 4;
            continue;
        }
        let end = (start..bytes.len()).find(|&j| !ident(bytes[j])).unwrap_or(bytes.len());
        if end > start + 4 {
            out.insert(text[start..end].to_string()); // not the bare prefix `npk_`
        }
        i = end;
    }
    out
}

#[test]
fn every_npk_name_in_the_readme_exists_in_the_header() {
    let header = npk_names(&read("include/numpack.h"));
    let missing: Vec<String> = npk_names(&read("README.md")).into_iter().filter(|n| !header.contains(n)).collect();
    assert!(missing.is_empty(), "README names {missing:?}, which the header does not declare");
}
