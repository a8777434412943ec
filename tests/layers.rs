//! The library's layer rule, checked on the source: a module imports only modules of lower layers
//! (ARCHITECTURE.md, "Layers"). A strict order also rules out import cycles between modules.
//!
//! The check reads every `.rs` file of the library (the bin side — main.rs, cli.rs, commands —
//! may use anything) and collects each `crate::X` path, including those inside `use crate::{..}`
//! groups and `super::X` from a top-level module, outside comments and string literals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may import the modules of the layers below its own, never its own
/// layer's siblings nor anything above (keep ARCHITECTURE.md's table in step with this one).
const LAYERS: &[&[&str]] = &[
    &["clock", "failpoint", "files", "lock", "records"],
    &["dns", "topology", "probe"],
    &["plan"],
    &["provider", "journal"],
    &["audit"],
    &["error"],
    &["app"],
    &["failover"],
    &["monitor", "drill"],
    &["fuzzing"],
];

/// Files that belong to the binary, not the library.
const BIN_SIDE: &[&str] = &["main", "cli", "commands"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/dns/tsig.rs` -> `dns`), and whether the file is
/// that module's root (where `super::` means the crate).
fn owner(src: &Path, file: &Path) -> (String, bool) {
    let relative = file.strip_prefix(src).expect("file under src/");
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    let is_root = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod");
    (parts[0].clone(), is_root)
}

/// The text with comments and string/char literals blanked, so that prose never counts.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let skip = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            rest.find("*/").map_or(rest.len(), |end| end + 2)
        } else if let Some(hashes) = raw_string_hashes(rest) {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            rest[body..]
                .find(&close)
                .map_or(rest.len(), |end| body + end + close.len())
        } else if rest.starts_with('"') {
            quoted_length(rest, '"')
        } else if rest.starts_with('\'') && is_char_literal(rest) {
            quoted_length(rest, '\'')
        } else {
            0
        };
        if skip == 0 {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        } else {
            out.push(' ');
            i += skip;
        }
    }
    out
}

/// `r"`, `r#"`, `r##"` ... at the start: how many hashes.
fn raw_string_hashes(text: &str) -> Option<usize> {
    let after_r = text.strip_prefix('r')?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    after_r[hashes..].starts_with('"').then_some(hashes)
}

/// `'x'` or `'\n'`, as opposed to a lifetime `'a`.
fn is_char_literal(text: &str) -> bool {
    let mut chars = text.chars().skip(1);
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

/// The length of a literal opened by `quote` at the start of `text`, escapes included.
fn quoted_length(text: &str, quote: char) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        if c == quote && !escaped {
            return i + 1;
        }
        escaped = c == '\\' && !escaped;
    }
    text.len()
}

fn identifier_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first path segment of every item of a `{a, b::c, d::{e}}` group (the text after `{`).
fn group_heads(text: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut at_item_start = true;
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                depth += 1;
                at_item_start = false;
            }
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if c.is_whitespace() => {}
            _ if at_item_start && depth == 0 => {
                heads.push(identifier_at(&text[i..]));
                at_item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// Every top-level module named by a `crate::` (or, in a module root, `super::`) path.
fn imported_modules(code: &str, is_root: bool) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut prefixes = vec!["crate::"];
    if is_root {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue; // `xcrate::` or `my_super::`, not a path start
            }
            let rest = &code[at + prefix.len()..];
            match rest.strip_prefix('{') {
                Some(group) => found.extend(group_heads(group).into_iter().map(str::to_string)),
                None => {
                    found.insert(identifier_at(rest).to_string());
                }
            }
        }
    }
    found.retain(|m| !m.is_empty() && m != "self" && m != "Error");
    found
}

/// Every library import, as (importing module, imported module, file).
fn library_imports() -> Vec<(String, String, PathBuf)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut imports = Vec::new();
    for file in files {
        let (module, is_root) = owner(&src, &file);
        if module == "lib" || BIN_SIDE.contains(&module.as_str()) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&file).expect("read source"));
        for imported in imported_modules(&code, is_root) {
            if imported != module {
                imports.push((module.clone(), imported, file.clone()));
            }
        }
    }
    imports
}

#[test]
fn every_library_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| owner(&src, f).0).collect();
    let missing: Vec<&String> = modules
        .iter()
        .filter(|m| *m != "lib" && !BIN_SIDE.contains(&m.as_str()) && layer_of(m).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer: {missing:?}; add them to LAYERS here and to ARCHITECTURE.md"
    );
}

#[test]
fn no_module_imports_its_own_layer_or_a_layer_above() {
    let mut violations = Vec::new();
    for (module, imported, file) in library_imports() {
        let (Some(own), Some(other)) = (layer_of(&module), layer_of(&imported)) else {
            continue; // unknown names: the test above names modules; others are items of lib.rs
        };
        if other >= own {
            violations.push(format!(
                "{} imports crate::{imported} (layer {other}) from layer {own}",
                file.display()
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "layer violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_super_imports() {
    // The checker must not pass vacuously: it finds every form of path the code uses.
    let code = code_only(
        "use crate::{plan::{Change, Plan}, records};\n// crate::app in a comment\n\
         let s = \"crate::audit\"; use super::dns::tsig; let x = crate::journal::open();",
    );
    let found: Vec<String> = imported_modules(&code, true).into_iter().collect();
    assert_eq!(found, ["dns", "journal", "plan", "records"]);
    assert!(imported_modules(&code, false).iter().all(|m| m != "dns"));
    let graph: BTreeMap<String, BTreeSet<String>> =
        library_imports()
            .into_iter()
            .fold(BTreeMap::new(), |mut graph, (from, to, _)| {
                graph.entry(from).or_default().insert(to);
                graph
            });
    assert!(
        graph.get("app").is_some_and(|deps| deps.contains("plan")),
        "the real source must show app -> plan; the scan found {graph:?}"
    );
}

/// Low layers that must stay free of I/O-side crates: the topology parses and validates (it
/// neither logs nor knows an HTTP client), records are pure values. Their unit tests (from
/// `#[cfg(test)]` on) may use anything, e.g. to compare a parser with `http::Uri`.
const PURE_MODULES: &[(&str, &[&str])] = &[
    (
        "records",
        &[
            "ureq",
            "tracing",
            "std::net::TcpStream",
            "std::net::UdpSocket",
        ],
    ),
    ("topology", &["ureq", "tracing"]),
    ("clock", &["ureq", "tracing"]),
];

#[test]
fn low_layers_do_not_reach_for_io_crates() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let (module, _) = owner(&src, &file);
        let Some((_, forbidden)) = PURE_MODULES.iter().find(|(m, _)| *m == module) else {
            continue;
        };
        let code = code_only(&std::fs::read_to_string(&file).expect("read source"));
        let code = code.split("#[cfg(test)]").next().unwrap_or_default();
        for name in *forbidden {
            let used = code.match_indices(&format!("{name}::")).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            });
            if used {
                violations.push(format!("{} uses {name}", file.display()));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
