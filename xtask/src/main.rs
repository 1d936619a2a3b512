//! Project automation, run as `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! Each subcommand is one function below; arguments are parsed by hand to keep this tool's
//! dependencies down to what code generation needs.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  codegen [--check]     regenerate crates/elarian-proto/src/generated.rs from
                        crates/elarian-proto/proto/*.proto (pure Rust: protox + prost-build);
                        with --check, regenerate into a temporary directory and fail if the
                        checked-in file differs
  ci [--skip-tests]     run the CI checks in order: cargo fmt --check, cargo clippy
                        (-D warnings), cargo doc (-D warnings), codegen --check,
                        cargo test --workspace
  bench [--quick]       run the benchmarks in release mode: the transport's req_resp bench,
                        the end-to-end SDK bench (with the published JavaScript client when
                        node is installed), the emulator's million-reminder bench and the
                        million-recipient campaign bench; with
                        --quick, smaller sizes (a few minutes in all)
  js-compat             run the published JavaScript client (npm `elarian`, tools/js-bench)
                        against an in-process emulator over TLS: commands and notification
                        handlers; fails when any check fails
  help                  print this message
";

/// Protobuf package of every wire file; prost-build names its output after it.
const PROTO_PACKAGE: &str = "com.elarian.hera.proto";
/// Where the checked-in code lives, relative to the workspace root.
const GENERATED_RS: &str = "crates/elarian-proto/src/generated.rs";
const PROTO_DIR: &str = "crates/elarian-proto/proto";
/// Put on top of the generated file so readers know not to edit it by hand.
const GENERATED_HEADER: &str =
    "// Generated from crates/elarian-proto/proto/*.proto by `cargo xtask codegen`. Do not edit.\n";

/// A failure worth a one-line explanation; the process exits non-zero with it.
#[derive(Debug)]
struct Error {
    message: String,
    /// The command line was wrong: show the usage text and exit with 2.
    usage: bool,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            usage: false,
        }
    }

    fn usage(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            usage: true,
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "codegen" => parse_flags(rest, &["--check"]).and_then(|flags| codegen(flags[0])),
        "ci" => parse_flags(rest, &["--skip-tests"]).and_then(|flags| ci(flags[0])),
        "bench" => parse_flags(rest, &["--quick"]).and_then(|flags| bench(flags[0])),
        "js-compat" => parse_flags(rest, &[]).and_then(|_| js_compat()),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(Error::usage(format!("unknown command `{other}`"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            if err.usage {
                eprint!("\n{USAGE}");
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}

/// Returns, for each allowed flag in order, whether it was given; anything else is an error.
fn parse_flags(args: &[String], allowed: &[&str]) -> Result<Vec<bool>> {
    let mut seen = vec![false; allowed.len()];
    for arg in args {
        match allowed.iter().position(|flag| flag == arg) {
            Some(index) => seen[index] = true,
            None => return Err(Error::usage(format!("unknown option `{arg}`"))),
        }
    }
    Ok(seen)
}

fn workspace_root() -> PathBuf {
    // xtask sits one level below the workspace root; this holds wherever cargo is invoked from.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// `cargo xtask codegen [--check]`.
fn codegen(check: bool) -> Result<()> {
    let root = workspace_root();
    let scratch = ScratchDir::new("codegen")?;
    let fresh = generate(&root, scratch.path())?;
    let target = root.join(GENERATED_RS);
    if check {
        let current = fs::read_to_string(&target)
            .map_err(|e| Error::new(format!("cannot read {}: {e}", target.display())))?;
        if current != fresh {
            return Err(Error::new(format!(
                "{} is out of date with {PROTO_DIR}/ (run `cargo xtask codegen`)\n{}",
                GENERATED_RS,
                first_difference(&current, &fresh)
            )));
        }
        println!("codegen: {GENERATED_RS} is up to date");
    } else {
        fs::write(&target, fresh)
            .map_err(|e| Error::new(format!("cannot write {}: {e}", target.display())))?;
        println!("codegen: wrote {GENERATED_RS}");
    }
    Ok(())
}

/// Compiles the `.proto` files and returns the formatted Rust source, using `out_dir` as scratch.
fn generate(root: &Path, out_dir: &Path) -> Result<String> {
    let proto_dir = root.join(PROTO_DIR);
    let files = proto_files(&proto_dir)?;
    let descriptors = protox::Compiler::new([&proto_dir])
        .map_err(|e| Error::new(format!("protox: {e}")))?
        // Source info carries the comments that prost-build turns into rustdoc.
        .include_source_info(true)
        .include_imports(true)
        .open_files(&files)
        .map_err(|e| Error::new(format!("protox: {e:?}")))?
        .file_descriptor_set();

    let mut config = prost_build::Config::new();
    config.out_dir(out_dir);
    config
        .compile_fds(descriptors)
        .map_err(|e| Error::new(format!("prost-build: {e}")))?;

    let produced = out_dir.join(format!("{PROTO_PACKAGE}.rs"));
    let body = fs::read_to_string(&produced)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", produced.display())))?;
    let staged = out_dir.join("generated.rs");
    fs::write(&staged, format!("{GENERATED_HEADER}{body}"))
        .map_err(|e| Error::new(format!("cannot write {}: {e}", staged.display())))?;
    // prettyplease's layout differs from rustfmt's, and `cargo fmt --check` sees this file, so
    // both the write and the check paths go through the same rustfmt.
    rustfmt(root, &staged)?;
    fs::read_to_string(&staged)
        .map_err(|e| Error::new(format!("cannot read {}: {e}", staged.display())))
}

/// The `.proto` file names in `dir`, sorted so the compile order never depends on the filesystem.
fn proto_files(dir: &Path) -> Result<Vec<String>> {
    let entries =
        fs::read_dir(dir).map_err(|e| Error::new(format!("cannot list {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::new(format!("cannot list {}: {e}", dir.display())))?;
        let path = entry.path();
        if path.extension() == Some(OsStr::new("proto"))
            && let Some(name) = path.file_name().and_then(OsStr::to_str)
        {
            files.push(name.to_owned());
        }
    }
    if files.is_empty() {
        return Err(Error::new(format!("no .proto files in {}", dir.display())));
    }
    files.sort();
    Ok(files)
}

fn rustfmt(root: &Path, file: &Path) -> Result<()> {
    let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let mut command = Command::new(rustfmt);
    command.args(["--edition", "2024"]);
    // The staged file is outside the workspace, so point rustfmt at the workspace's config if any.
    if ["rustfmt.toml", ".rustfmt.toml"]
        .iter()
        .any(|name| root.join(name).is_file())
    {
        command.arg("--config-path").arg(root);
    }
    command.arg(file);
    let status = command
        .status()
        .map_err(|e| Error::new(format!("cannot run rustfmt: {e}")))?;
    if !status.success() {
        return Err(Error::new(format!("rustfmt failed on {}", file.display())));
    }
    Ok(())
}

/// Describes the first line where `current` and `fresh` part ways.
fn first_difference(current: &str, fresh: &str) -> String {
    let mut old_lines = current.lines();
    let mut new_lines = fresh.lines();
    let mut line = 1usize;
    loop {
        match (old_lines.next(), new_lines.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (None, None) => return "files differ only in line endings".to_owned(),
            (a, b) => {
                return format!(
                    "first difference at line {line}:\n  checked in: {}\n  generated:  {}",
                    a.unwrap_or("<end of file>"),
                    b.unwrap_or("<end of file>")
                );
            }
        }
    }
}

/// `cargo xtask ci [--skip-tests]`.
fn ci(skip_tests: bool) -> Result<()> {
    cargo_step("format", &["fmt", "--all", "--", "--check"])?;
    cargo_step(
        "lint",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Every public item is documented and every intra-doc link resolves.
    cargo_step_with_env(
        "docs",
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    println!("==> codegen: cargo xtask codegen --check");
    codegen(true)?;
    if skip_tests {
        println!("==> tests skipped (--skip-tests)");
    } else {
        cargo_step("tests", &["test", "--workspace"])?;
    }
    println!("ci: all checks passed");
    Ok(())
}

fn cargo_step(name: &str, args: &[&str]) -> Result<()> {
    cargo_step_with_env(name, args, &[])
}

fn cargo_step_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    // Inside `cargo xtask`, CARGO names the cargo that launched us; keep using the same one.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let shown_env: String = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    println!("==> {name}: {shown_env}cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| Error::new(format!("{name}: cannot run cargo: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{name} failed: `cargo {}` exited with {status}",
            args.join(" ")
        )))
    }
}

/// The transport bench, written in `elarian-transport`; skipped when absent.
const TRANSPORT_BENCH: &str = "crates/elarian-transport/benches/req_resp.rs";

/// `cargo xtask bench [--quick]`.
fn bench(quick: bool) -> Result<()> {
    let root = workspace_root();
    let mut pass_through = vec!["--"];
    if quick {
        pass_through.push("--quick");
    }
    let with = |args: &[&'static str]| -> Vec<&'static str> {
        args.iter().chain(pass_through.iter()).copied().collect()
    };
    if root.join(TRANSPORT_BENCH).is_file() {
        cargo_step(
            "transport bench",
            &with(&["bench", "-p", "elarian-transport", "--bench", "req_resp"]),
        )?;
    } else {
        println!("==> transport bench skipped: {TRANSPORT_BENCH} does not exist yet");
    }
    cargo_step(
        "end-to-end bench",
        &with(&["bench", "-p", "elarian-benches", "--bench", "e2e"]),
    )?;
    cargo_step(
        "emulator bench",
        &with(&["bench", "-p", "elarian-benches", "--bench", "emulator"]),
    )?;
    cargo_step(
        "campaign bench",
        &with(&["bench", "-p", "elarian-benches", "--bench", "campaign"]),
    )?;
    println!(
        "bench: the figures are printed above; docs/benchmarks.md records them with the \
         machine they were measured on (update it by hand when they change)"
    );
    Ok(())
}

/// `cargo xtask js-compat`. A compatibility check, not a measurement: the dev profile, whose
/// build `cargo test --workspace` has already made in CI.
fn js_compat() -> Result<()> {
    cargo_step(
        "js-compat",
        &["run", "-p", "elarian-benches", "--bin", "js-compat"],
    )
}

/// A directory under the system temp dir, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(purpose: &str) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "elarian-xtask-{purpose}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(ScratchDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in /tmp is harmless.
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_are_reported_in_the_order_they_are_allowed() {
        let flags = parse_flags(&args(&["--check"]), &["--check"]).expect("valid");
        assert_eq!(flags, [true]);
        let flags = parse_flags(&[], &["--skip-tests"]).expect("valid");
        assert_eq!(flags, [false]);
    }

    #[test]
    fn an_unknown_flag_is_a_usage_error() {
        let err = parse_flags(&args(&["--chek"]), &["--check"]).expect_err("rejected");
        assert!(err.usage);
        assert!(err.message.contains("--chek"));
    }

    #[test]
    fn the_first_differing_line_is_shown() {
        let report = first_difference("a\nb\nc\n", "a\nx\nc\n");
        assert!(report.contains("line 2"), "{report}");
        assert!(report.contains("checked in: b"), "{report}");
        assert!(report.contains("generated:  x"), "{report}");
        let report = first_difference("a\n", "a\nb\n");
        assert!(report.contains("<end of file>"), "{report}");
    }

    #[test]
    fn the_proto_files_are_found_in_sorted_order() {
        let files = proto_files(&workspace_root().join(PROTO_DIR)).expect("proto dir lists");
        assert!(files.contains(&"app_socket.proto".to_owned()));
        assert!(files.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
