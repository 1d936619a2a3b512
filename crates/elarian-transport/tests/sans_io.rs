//! The sans-IO core (`frame`, `protocol` and the `payload` they carry) stands alone, like
//! quinn-proto: it may name only itself, never the I/O layer, the tokio driver, the driver's
//! errors or an async runtime. Rustc cannot enforce a layering inside one crate, so this test
//! reads the sources and fails on a forbidden path.

use std::path::{Path, PathBuf};

/// Modules of this crate the core may use through `crate::`.
const CORE: &[&str] = &["frame", "protocol", "payload"];
/// Crates the core must not use: runtimes and async plumbing belong to the driver.
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "futures_util",
    "futures",
    "tokio_rustls",
    "tokio_tungstenite",
    "rustls",
];
/// Modules of this crate outside the core, for `super::` paths that climb out of it.
const OUTSIDE: &[&str] = &[
    "io",
    "connection",
    "client",
    "server",
    "error",
    "responder",
    "limit",
];

/// The code of `source` without comments, so that doc links to the driver do not count.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut in_block = 0usize;
    for line in source.lines() {
        let mut rest = line;
        loop {
            if in_block > 0 {
                match rest.find("*/") {
                    Some(end) => {
                        in_block -= 1;
                        rest = &rest[end + 2..];
                    }
                    None => break,
                }
            } else {
                let line_comment = rest.find("//");
                let block = rest.find("/*");
                match (line_comment, block) {
                    (Some(l), None) => {
                        out.push_str(&rest[..l]);
                        break;
                    }
                    (Some(l), Some(b)) if l < b => {
                        out.push_str(&rest[..l]);
                        break;
                    }
                    (_, Some(b)) => {
                        out.push_str(&rest[..b]);
                        in_block += 1;
                        rest = &rest[b + 2..];
                    }
                    (None, None) => {
                        out.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push('\n');
    }
    out
}

/// The path roots used in `code`: for `crate::a::b`, `crate::{a, b::c}` and `super::a`, the
/// pairs (`crate`, `a`)...; for any other `x::y`, (`x`, `y`).
fn path_heads(code: &str) -> Vec<(String, String)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut heads = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let root: String = bytes[start..i].iter().collect();
        if i + 1 < bytes.len() && bytes[i] == ':' && bytes[i + 1] == ':' {
            let mut j = i + 2;
            if j < bytes.len() && bytes[j] == '{' {
                // A use group: the first segment of every item at the group's top level.
                let mut depth = 0usize;
                let mut item = String::new();
                let mut items = Vec::new();
                while j < bytes.len() {
                    let c = bytes[j];
                    j += 1;
                    match c {
                        '{' if depth == 0 => depth = 1,
                        '{' => {
                            depth += 1;
                            item.push(c);
                        }
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                items.push(std::mem::take(&mut item));
                                break;
                            }
                            item.push(c);
                        }
                        ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                        _ => item.push(c),
                    }
                }
                for item in items {
                    let head: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                    if !head.is_empty() {
                        heads.push((root.clone(), head));
                    }
                }
            } else {
                let s = j;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                heads.push((root, bytes[s..j].iter().collect()));
            }
        }
    }
    heads
}

/// What is wrong with the core file `source`, one line per forbidden path.
fn violations(source: &str) -> Vec<String> {
    let code = strip_comments(source);
    let mut found = Vec::new();
    for (root, head) in path_heads(&code) {
        let bad = match root.as_str() {
            "crate" => !CORE.contains(&head.as_str()),
            "super" => OUTSIDE.contains(&head.as_str()),
            other => FORBIDDEN_CRATES.contains(&other),
        };
        if bad {
            found.push(format!("{root}::{head}"));
        }
    }
    found
}

fn core_files() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("frame.rs"), src.join("payload.rs")];
    let protocol = src.join("protocol");
    let entries = std::fs::read_dir(&protocol).expect("src/protocol is readable");
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn the_sans_io_core_names_no_io_driver_or_runtime() {
    let files = core_files();
    assert!(
        files.len() > 3,
        "expected frame.rs, payload.rs and protocol/"
    );
    let mut report = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("a readable source file");
        for v in violations(&source) {
            report.push(format!("{}: {v}", file.display()));
        }
    }
    assert!(
        report.is_empty(),
        "the sans-IO core uses what it must not:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_catches_every_form_of_a_forbidden_path() {
    for bad in [
        "use crate::io::MAX_FRAME_LEN;",
        "use crate::{frame::Frame, io::TransportError};",
        "use crate::{CloseReason, Payload};",
        "use crate::error::RequestError;",
        "use super::connection::Connection;",
        "let t = tokio::time::Instant::now();",
        "use futures_util::StreamExt;",
        "fn f() -> crate::client::ClientSession { make() }",
        "use crate::{\n    frame::Frame,\n    server::Server,\n};",
    ] {
        assert!(!violations(bad).is_empty(), "not caught: {bad}");
    }
    for good in [
        "use crate::frame::{ErrorCode, Frame};",
        "use crate::{frame::Frame, payload::Payload};",
        "use super::budget::Budgets;",
        "use std::io::Write;",
        "/// See [`Connection`](crate::Connection).\nfn f() {}",
        "// crate::io is the I/O layer\nfn f() {}",
        "/* tokio::spawn */ fn f() {}",
    ] {
        assert_eq!(violations(good), Vec::<String>::new(), "flagged: {good}");
    }
}
