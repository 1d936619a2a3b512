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
                        features, cargo test --workspace
  msrv                  check that the workspace's rust-version is at least the rust-version
                        of every package in the dependency tree (from cargo metadata)
  features              check elarian-sdk and elarian-simulator with each transport feature
                        set (none, tls, websocket, both) and that `cargo tree` of each holds
                        exactly the TLS (rustls, ring, webpki) and WebSocket (tungstenite)
                        crates its features ask for
  bench [--quick] [--check] [--10m]
                        run the benchmarks in release mode: the transport's req_resp bench,
                        the end-to-end SDK bench (with the published JavaScript client when
                        node is installed), the emulator's million-reminder bench and the
                        main job, debt_collection with 1,000,000 customers and no rate limit,
                        and the million-recipient campaign bench; with --quick, smaller sizes
                        (a few minutes in all); with --check, the quick transport and
                        end-to-end benches, failing when a ratio falls below its stated floor
                        in any run (before a change lands; not in CI, whose machine is
                        shared); with --10m, only debt_collection with 10,000,000 customers
                        and a temporary --data-dir
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
        "bench" => parse_flags(rest, &["--quick", "--check", "--10m"])
            .and_then(|flags| bench(flags[0], flags[1], flags[2])),
        "js-compat" => parse_flags(rest, &[]).and_then(|_| js_compat()),
        "features" => parse_flags(rest, &[]).and_then(|_| features()),
        "msrv" => parse_flags(rest, &[]).and_then(|_| msrv()),
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
/// Messages with a field holding a credential (API key, auth token, reply token): their
/// `Debug` is written by hand so that the secret is never printed.
const SECRET_MESSAGES: [&str; 4] = [
    "AppConnectionMetadata",
    "GenerateAuthTokenReply",
    "MessageReplyToken",
    "OutboundMessage",
];

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
    // Messages that carry credentials get a hand-written, redacting `Debug` in
    // crates/elarian-proto/src/redact.rs instead of the derived one.
    config.skip_debug(
        SECRET_MESSAGES
            .iter()
            .map(|message| format!(".{PROTO_PACKAGE}.{message}")),
    );
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
    features()?;
    msrv()?;
    if skip_tests {
        println!("==> tests skipped (--skip-tests)");
    } else {
        cargo_step("tests", &["test", "--workspace"])?;
    }
    println!("ci: all checks passed");
    Ok(())
}

/// The transport feature sets a consumer of the SDK can pick, as `--features` values.
const FEATURE_SETS: [&str; 4] = ["", "tls", "websocket", "tls,websocket"];
/// The crates that take the transport features and pass them on to core and transport.
const FEATURE_CRATES: [&str; 2] = ["elarian-sdk", "elarian-simulator"];

/// `cargo xtask features`: each feature set compiles, and its dependency tree holds the TLS and
/// WebSocket crates exactly when the set asks for them (so `default-features = false,
/// features = ["websocket"]` really leaves rustls and ring out).
fn features() -> Result<()> {
    for krate in FEATURE_CRATES {
        for set in FEATURE_SETS {
            let mut args = vec!["-p", krate, "--no-default-features"];
            if !set.is_empty() {
                args.extend(["--features", set]);
            }
            let shown = if set.is_empty() { "none" } else { set };
            let mut tree = vec![
                "tree", "-e", "normal", "--prefix", "none", "--format", "{p}",
            ];
            tree.extend(&args);
            let listing = cargo_output(&tree)?;
            let wanted = set.split(',').collect::<Vec<_>>();
            check_tree(
                &listing,
                wanted.contains(&"tls"),
                wanted.contains(&"websocket"),
            )
            .map_err(|problem| Error::new(format!("{krate} with features {shown}: {problem}")))?;
            println!("==> features: {krate} [{shown}]: dependency tree as expected");
            let mut check = vec!["check", "--lib"];
            check.extend(&args);
            cargo_step(&format!("features: {krate} [{shown}]"), &check)?;
        }
    }
    Ok(())
}

/// Whether a `cargo tree --format {p}` listing has the TLS crates iff `tls` and the WebSocket
/// crates iff `websocket`; the error names what is wrong.
fn check_tree(listing: &str, tls: bool, websocket: bool) -> std::result::Result<(), String> {
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let is_tls =
        |name: &&str| name.contains("rustls") || *name == "ring" || name.contains("webpki");
    let is_websocket = |name: &&str| name.contains("tungstenite");
    for (kind, wanted, is_kind) in [
        ("TLS", tls, &is_tls as &dyn Fn(&&str) -> bool),
        ("WebSocket", websocket, &is_websocket),
    ] {
        let found: Vec<&str> = names.iter().copied().filter(|n| is_kind(n)).collect();
        match (wanted, found.is_empty()) {
            (true, true) => return Err(format!("no {kind} crate in the dependency tree")),
            (false, false) => {
                let mut found = found;
                found.sort_unstable();
                found.dedup();
                return Err(format!(
                    "{kind} crates in the dependency tree without the feature: {}",
                    found.join(", ")
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `cargo xtask msrv`: the `rust-version` each workspace member declares is at least that of
/// every package in the dependency tree, so a user on the declared toolchain can build it all.
fn msrv() -> Result<()> {
    let metadata = cargo_output(&["metadata", "--format-version", "1", "--locked"])?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata)
        .map_err(|e| Error::new(format!("cannot read cargo metadata: {e}")))?;
    let problems = msrv_problems(&metadata)?;
    if problems.is_empty() {
        println!("==> msrv: every rust-version in the tree is covered");
        Ok(())
    } else {
        Err(Error::new(format!(
            "rust-version too low:\n  {}",
            problems.join("\n  ")
        )))
    }
}

/// What is wrong with the members' rust-versions given `cargo metadata`'s output.
fn msrv_problems(metadata: &serde_json::Value) -> Result<Vec<String>> {
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .ok_or_else(|| Error::new("cargo metadata without workspace_members"))?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let packages = metadata["packages"]
        .as_array()
        .ok_or_else(|| Error::new("cargo metadata without packages"))?;
    let mut needed: Option<((u64, u64, u64), String)> = None;
    let mut declared = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or("?");
        let version = package["version"].as_str().unwrap_or("?");
        let rust_version = package["rust_version"].as_str().map(parse_rust_version);
        let is_member = package["id"]
            .as_str()
            .is_some_and(|id| members.contains(&id));
        if is_member {
            declared.push((name.to_owned(), rust_version));
        } else if let Some(rust_version) = rust_version {
            let rust_version = rust_version
                .ok_or_else(|| Error::new(format!("{name} {version}: unreadable rust-version")))?;
            if needed.as_ref().is_none_or(|(max, _)| rust_version > *max) {
                needed = Some((rust_version, format!("{name} {version}")));
            }
        }
    }
    let Some((needed, by)) = needed else {
        return Ok(Vec::new());
    };
    let mut problems = Vec::new();
    for (name, rust_version) in declared {
        match rust_version {
            Some(Some(have)) if have >= needed => {}
            Some(Some(have)) => problems.push(format!(
                "{name} declares {}.{}.{} but {by} needs {}.{}.{}",
                have.0, have.1, have.2, needed.0, needed.1, needed.2
            )),
            _ => problems.push(format!("{name} declares no (readable) rust-version")),
        }
    }
    Ok(problems)
}

/// `1.90` or `1.90.1` as a comparable triple; `None` when it is neither.
fn parse_rust_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.split('.').map(str::parse::<u64>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().transpose().ok()?.unwrap_or(0);
    let patch = parts.next().transpose().ok()?.unwrap_or(0);
    parts.next().is_none().then_some((major, minor, patch))
}

/// Runs cargo and returns its standard output; a failure is an error with its standard error.
fn cargo_output(args: &[&str]) -> Result<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| Error::new(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "`cargo {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| Error::new(format!("`cargo {}` printed non-UTF-8", args.join(" "))))
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

/// The main job at scale: `debt_collection` with no rate limit.
fn bench_debt_collection(customers: &str, data_dir: Option<&str>) -> Result<()> {
    let mut args = vec![
        "run",
        "--release",
        "-p",
        "elarian-examples",
        "--example",
        "debt_collection",
        "--",
        "--customers",
        customers,
        "--rate",
        "max",
    ];
    if let Some(dir) = data_dir {
        args.extend(["--data-dir", dir]);
    }
    cargo_step("debt_collection bench", &args)
}

/// `cargo xtask bench [--quick] [--check] [--10m]`.
fn bench(quick: bool, check: bool, ten_million: bool) -> Result<()> {
    if ten_million {
        // On demand only: hours, and about as much disk as the book needs.
        let dir = std::env::temp_dir().join("elarian-debt-collection-10m");
        let _ = std::fs::remove_dir_all(&dir);
        let result = bench_debt_collection("10000000", Some(&dir.to_string_lossy()));
        let _ = std::fs::remove_dir_all(&dir);
        return result;
    }
    let root = workspace_root();
    let mut pass_through = vec!["--"];
    if quick || check {
        pass_through.push("--quick");
    }
    if check {
        pass_through.push("--check");
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
    if check {
        println!("bench --check: every floor held");
        return Ok(());
    }
    cargo_step(
        "emulator bench",
        &with(&["bench", "-p", "elarian-benches", "--bench", "emulator"]),
    )?;
    bench_debt_collection(if quick { "100000" } else { "1000000" }, None)?;
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
    fn trees_are_checked_for_exactly_the_transport_crates_asked_for() {
        let plain = "elarian-sdk v0.1.0\ntokio v1.0.0\n";
        let tls = "elarian-sdk v0.1.0\nrustls v0.23.0\nring v0.17.0\nwebpki-roots v1.0.0\n";
        let ws = "elarian-sdk v0.1.0\ntokio-tungstenite v0.30.0\n";
        let both = format!("{tls}{ws}");
        assert_eq!(check_tree(plain, false, false), Ok(()));
        assert_eq!(check_tree(tls, true, false), Ok(()));
        assert_eq!(check_tree(ws, false, true), Ok(()));
        assert_eq!(check_tree(&both, true, true), Ok(()));
        let error = check_tree(&both, false, true).unwrap_err();
        assert!(error.contains("ring, rustls, webpki-roots"), "{error}");
        assert!(
            check_tree(&both, true, false)
                .unwrap_err()
                .contains("tungstenite")
        );
        assert!(
            check_tree(plain, true, false)
                .unwrap_err()
                .contains("no TLS crate")
        );
        // `rustls-pki-types` alone counts as TLS too.
        assert!(check_tree("rustls-pki-types v1.0.0\n", false, false).is_err());
    }

    #[test]
    fn rust_versions_are_compared_as_numbers() {
        assert_eq!(parse_rust_version("1.90"), Some((1, 90, 0)));
        assert_eq!(parse_rust_version("1.88.1"), Some((1, 88, 1)));
        assert_eq!(parse_rust_version("1.x"), None);
        assert_eq!(parse_rust_version("1.2.3.4"), None);
        assert!(parse_rust_version("1.100") > parse_rust_version("1.90"));
    }

    #[test]
    fn a_member_below_a_dependency_rust_version_is_reported() {
        let metadata = |member: &str| {
            serde_json::json!({
                "workspace_members": ["path+file:///w/sdk#0.1.0"],
                "packages": [
                    {"id": "path+file:///w/sdk#0.1.0", "name": "sdk", "version": "0.1.0",
                     "rust_version": member},
                    {"id": "registry+x#redb@4.6.0", "name": "redb", "version": "4.6.0",
                     "rust_version": "1.90"},
                    {"id": "registry+x#time@0.3.0", "name": "time", "version": "0.3.0",
                     "rust_version": "1.88.0"},
                    {"id": "registry+x#old@1.0.0", "name": "old", "version": "1.0.0",
                     "rust_version": null},
                ]
            })
        };
        let problems = msrv_problems(&metadata("1.88")).unwrap();
        assert_eq!(
            problems,
            vec!["sdk declares 1.88.0 but redb 4.6.0 needs 1.90.0".to_owned()]
        );
        assert!(msrv_problems(&metadata("1.90")).unwrap().is_empty());
        assert!(msrv_problems(&metadata("1.91.2")).unwrap().is_empty());
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
