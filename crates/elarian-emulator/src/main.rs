//! `elarian-emulator`: runs a local, wire-compatible Elarian server.
//!
//! Without listener flags it listens on 127.0.0.1: TCP 5555, TLS 5556 (self-signed) and
//! WebSocket 5557, and serves the web console on http://127.0.0.1:5558/. See
//! `docs/emulator.md`.
//!
//! What to connect with (endpoints, org, app, API key, certificate) goes to stdout; logs go to
//! stderr, without colours when stderr is not a terminal.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use elarian_emulator::Emulator;
use elarian_emulator::config::{EmulatorConfig, PaymentFailure};

/// Every customer record, notification and frame is a small allocation: with glibc's malloc
/// the million-reminder burst spent about half again as much CPU per notification as with
/// mimalloc, for about 60 MiB more peak memory (docs/benchmarks.md, "Encoded customer records
/// and the notification rate").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A local, wire-compatible Elarian server for development and tests.
#[derive(Debug, Parser)]
#[command(name = "elarian-emulator", version, about)]
struct Args {
    /// Listen for RSocket over plain TCP on ADDR (e.g. 127.0.0.1:5555).
    #[arg(long, value_name = "ADDR")]
    tcp: Option<SocketAddr>,
    /// Listen for RSocket over TLS on ADDR; self-signed for localhost unless --cert/--key.
    #[arg(long, value_name = "ADDR")]
    tls: Option<SocketAddr>,
    /// Listen for RSocket over WebSocket on ADDR.
    #[arg(long, value_name = "ADDR")]
    ws: Option<SocketAddr>,
    /// PEM certificate chain for --tls.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key for --tls.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Keep state durably in DIR (created if needed); in memory without it.
    #[arg(long, value_name = "DIR", env = "ELARIAN_EMULATOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// JSON configuration of orgs, apps, keys, purses and channel numbers.
    #[arg(long, value_name = "FILE", env = "ELARIAN_EMULATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Serve the web console on ADDR (default: the config's `console.addr`, 127.0.0.1:5558).
    #[arg(long, value_name = "ADDR", conflicts_with = "no_console")]
    console: Option<SocketAddr>,
    /// Do not serve the web console.
    #[arg(long)]
    no_console: bool,
    /// Access token the console asks for; required for a non-loopback --console address.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ELARIAN_CONSOLE_TOKEN",
        hide_env_values = true
    )]
    console_token: Option<String>,
    /// Show the campaigns of this campaigns HTTP API (`http://host:port/`) on the console.
    #[arg(long, value_name = "URL", env = "ELARIAN_CAMPAIGNS_URL")]
    campaigns_url: Option<String>,
    /// API key of the --campaigns-url API.
    #[arg(
        long,
        value_name = "KEY",
        env = "ELARIAN_CAMPAIGNS_KEY",
        hide_env_values = true
    )]
    campaigns_key: Option<String>,
    /// Print the default configuration as JSON and exit.
    #[arg(long)]
    print_default_config: bool,
    #[command(flatten)]
    payments: PaymentArgs,
    /// Most connections at once (overrides `limits.max_connections` of the config).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Largest first frame (SETUP or RESUME) of a connection, in bytes.
    #[arg(long, value_name = "BYTES")]
    max_setup_frame_bytes: Option<usize>,
    /// Most bytes being reassembled from fragments on one connection.
    #[arg(long, value_name = "BYTES")]
    max_connection_reassembly_bytes: Option<usize>,
    /// Most bytes being reassembled from fragments across all connections.
    #[arg(long, value_name = "BYTES")]
    max_total_reassembly_bytes: Option<usize>,
    /// Most detached sessions kept for resumption.
    #[arg(long, value_name = "N")]
    max_detached_sessions: Option<usize>,
    /// Most bytes of resume buffers held by detached sessions.
    #[arg(long, value_name = "BYTES")]
    max_detached_bytes: Option<usize>,
    /// Longest keepalive lifetime a client may ask for, in seconds.
    #[arg(long, value_name = "SECS")]
    max_keepalive_lifetime_secs: Option<u64>,
    /// Failed RESUMEs allowed per peer address per window.
    #[arg(long, value_name = "N")]
    max_resume_failures: Option<u32>,
    /// The window of --max-resume-failures, in seconds.
    #[arg(long, value_name = "SECS")]
    resume_failure_window_secs: Option<u64>,
}

/// Settlement of payments that need no customer confirmation; overrides the config's
/// `payments` section.
#[derive(Debug, clap::Args)]
struct PaymentArgs {
    /// Settle payouts and transfers MS milliseconds after they are initiated.
    #[arg(long, value_name = "MS")]
    payment_settle_delay_ms: Option<u64>,
    /// Make payments to payees matching PATTERN fail (`*` matches any run of characters;
    /// repeatable): a customer number, channel destination, wallet id or purse id.
    #[arg(long, value_name = "PATTERN")]
    fail_payments_to: Vec<String>,
    /// The status those payments end with (e.g. failed, insufficient_funds, rejected).
    #[arg(long, value_name = "STATUS", default_value = "failed")]
    payment_failure_status: String,
}

impl PaymentArgs {
    /// Applies the flags to the configuration; the rules from flags come before the file's.
    fn apply(&self, config: &mut EmulatorConfig) -> anyhow::Result<()> {
        if let Some(ms) = self.payment_settle_delay_ms {
            config.payments.settle_delay_ms = ms;
        }
        let rules = self
            .fail_payments_to
            .iter()
            .map(|payee| PaymentFailure::new(payee.clone(), self.payment_failure_status.clone()));
        config.payments.fail.splice(0..0, rules);
        config.validate()?;
        Ok(())
    }
}

impl Args {
    /// Applies the limit flags over the config file's `limits`.
    fn apply_limits(&self, limits: &mut elarian_emulator::config::LimitsConfig) {
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = self.$field {
                    limits.$field = v;
                }
            )*};
        }
        set!(
            max_connections,
            max_setup_frame_bytes,
            max_connection_reassembly_bytes,
            max_total_reassembly_bytes,
            max_detached_sessions,
            max_detached_bytes,
            max_keepalive_lifetime_secs,
            max_resume_failures,
            resume_failure_window_secs
        );
    }
}

const DEFAULT_TCP: &str = "127.0.0.1:5555";
const DEFAULT_TLS: &str = "127.0.0.1:5556";
const DEFAULT_WS: &str = "127.0.0.1:5557";

const CERT_FILE: &str = "tls-cert.pem";
const KEY_FILE: &str = "tls-key.pem";

/// The self-signed certificate kept in the data dir, created on first use.
fn persistent_certificate(dir: &std::path::Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .context("generating a self-signed certificate")?;
    std::fs::write(&cert, generated.cert.pem())
        .with_context(|| format!("writing {}", cert.display()))?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
    Ok((cert, key))
}

/// Writes a file only its owner can read (a private key).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A certificate file written for this run only, removed when the emulator stops (also when it
/// stops on an error).
struct TemporaryFile(PathBuf);

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            eprintln!("warning: cannot remove {}: {e}", self.0.display());
        }
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (how service managers and `docker stop`
/// ask a process to stop), so the temporary certificate is removed then too.
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("waiting for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C"),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}

/// The lines that tell a newcomer how to connect: the first app's org, app and API key (the
/// key is the emulator's own test credential, not a secret of anyone's), and a one-line Rust
/// example.
fn connect_instructions(config: &EmulatorConfig, endpoint: &str, ca_cert: Option<&Path>) -> String {
    let Some((org, app, key)) = config.orgs.iter().find_map(|org| {
        let app = org.apps.iter().find(|app| !app.api_keys.is_empty())?;
        Some((&org.id, &app.id, &app.api_keys[0]))
    }) else {
        return "no app with an API key is configured: add one to the --config file".to_owned();
    };
    let certificate = match ca_cert {
        Some(path) => format!(
            ".root_certificate_pem(&std::fs::read({:?})?)",
            path.display().to_string()
        ),
        None => String::new(),
    };
    format!(
        "org:     {org}\napp:     {app}\napi key: {key}\nconnect: \
         Elarian::builder().org_id({org:?}).app_id({app:?}).api_key({key:?})\
         .endpoint_url({endpoint:?}){certificate}.connect().await?"
    )
}

async fn run() -> anyhow::Result<()> {
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    let mut args = Args::parse();
    if args.print_default_config {
        println!(
            "{}",
            serde_json::to_string_pretty(&EmulatorConfig::default())?
        );
        return Ok(());
    }
    if args.tcp.is_none() && args.tls.is_none() && args.ws.is_none() {
        args.tcp = Some(DEFAULT_TCP.parse()?);
        args.tls = Some(DEFAULT_TLS.parse()?);
        args.ws = Some(DEFAULT_WS.parse()?);
    }
    let mut config = match &args.config {
        Some(path) => EmulatorConfig::load(path)?,
        None => EmulatorConfig::default(),
    };
    args.payments.apply(&mut config)?;
    let console_addr = match (args.no_console, args.console) {
        (true, _) => None,
        (false, Some(addr)) => Some(addr),
        (false, None) => config.console.addr,
    };
    let console_token = args
        .console_token
        .clone()
        .or_else(|| config.console.access_token.clone());
    args.apply_limits(&mut config.limits);
    let mut builder = Emulator::builder().config(config.clone());
    if let Some(addr) = console_addr {
        builder = builder.console(addr);
        if let Some(token) = console_token {
            builder = builder.console_access_token(token);
        }
        let campaigns_url = args
            .campaigns_url
            .clone()
            .or(config.console.campaigns_url.clone());
        let campaigns_key = args
            .campaigns_key
            .clone()
            .or(config.console.campaigns_key.clone());
        match (campaigns_url, campaigns_key) {
            (Some(url), Some(key)) => builder = builder.console_campaigns(url, key),
            (None, None) => {}
            _ => anyhow::bail!("--campaigns-url and --campaigns-key go together"),
        }
    }
    if let Some(addr) = args.tcp {
        builder = builder.tcp(addr);
    }
    if let Some(addr) = args.tls {
        let pem_files = match (&args.cert, &args.key, &args.data_dir) {
            (Some(cert), Some(key), _) => Some((cert.clone(), key.clone())),
            // With a data dir the self-signed certificate is kept, so clients trust it once.
            (_, _, Some(dir)) => Some(persistent_certificate(dir)?),
            _ => None,
        };
        builder = match pem_files {
            Some((cert, key)) => builder.tls_with_certificate(
                addr,
                std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?,
                std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?,
            ),
            None => builder.tls(addr),
        };
    }
    if let Some(addr) = args.ws {
        builder = builder.ws(addr);
    }
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir);
    }
    let emulator = builder.start().await?;

    if let Some(endpoint) = emulator.endpoint() {
        println!("tcp:  {endpoint}");
    }
    if let Some(endpoint) = emulator.tls_endpoint() {
        println!("tls:  {endpoint}");
    }
    if let Some(endpoint) = emulator.ws_endpoint() {
        println!("ws:   {endpoint}");
    }
    let mut temporary = None;
    let mut certificate = None;
    if let Some(url) = emulator.console_url() {
        println!("console: {url}");
    }
    if let Some(pem) = emulator.tls_certificate_pem() {
        let path = match (&args.cert, &args.data_dir) {
            (Some(cert), _) => cert.clone(),
            (None, Some(dir)) => dir.join(CERT_FILE),
            (None, None) => {
                let path = std::env::temp_dir()
                    .join(format!("elarian-emulator-{}-cert.pem", std::process::id()));
                std::fs::write(&path, pem)
                    .with_context(|| format!("writing {}", path.display()))?;
                temporary = Some(TemporaryFile(path.clone()));
                path
            }
        };
        println!(
            "tls certificate (trust it in clients, e.g. the examples' --ca-cert): {}",
            path.display()
        );
        certificate = Some(path);
    }
    // Prefer the plain TCP endpoint in the example line: nothing to trust.
    let shown = match (
        emulator.endpoint(),
        emulator.tls_endpoint(),
        emulator.ws_endpoint(),
    ) {
        (Some(tcp), _, _) => Some((tcp.to_string(), None)),
        (None, Some(tls), _) => Some((tls.to_string(), certificate.as_deref())),
        (None, None, Some(ws)) => Some((ws.to_string(), None)),
        _ => None,
    };
    if let Some((endpoint, ca_cert)) = shown {
        println!("{}", connect_instructions(&config, &endpoint, ca_cert));
    }
    match &args.data_dir {
        Some(dir) => println!("data dir: {}", dir.display()),
        None => println!("data: in memory (use --data-dir to keep it)"),
    }
    println!("press Ctrl-C to stop");

    let stopped = stop_signal().await;
    println!("stopping");
    emulator.shutdown().await;
    drop(temporary);
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_name_the_first_app_and_a_connect_line() {
        let config = EmulatorConfig::default();
        let text = connect_instructions(&config, "tcp://127.0.0.1:5555", None);
        let org = &config.orgs[0];
        let app = &org.apps[0];
        assert!(text.contains(&format!("org:     {}", org.id)), "{text}");
        assert!(text.contains(&format!("app:     {}", app.id)), "{text}");
        assert!(
            text.contains(&format!("api key: {}", app.api_keys[0])),
            "{text}"
        );
        let line = text.lines().last().unwrap();
        assert!(line.starts_with("connect: Elarian::builder()"), "{line}");
        assert!(
            line.contains(".endpoint_url(\"tcp://127.0.0.1:5555\")"),
            "{line}"
        );
        assert!(line.ends_with(".connect().await?"), "{line}");

        let tls = connect_instructions(
            &config,
            "tls://localhost:5556",
            Some(Path::new("/tmp/c.pem")),
        );
        assert!(
            tls.contains(".root_certificate_pem(&std::fs::read(\"/tmp/c.pem\")?)"),
            "{tls}"
        );
    }

    #[test]
    fn a_temporary_certificate_is_removed_when_dropped() {
        let path =
            std::env::temp_dir().join(format!("elarian-emulator-test-{}.pem", std::process::id()));
        std::fs::write(&path, "x").unwrap();
        drop(TemporaryFile(path.clone()));
        assert!(!path.exists());
    }
}
