//! Shared scaffolding of the example apps: command-line flags, "start the embedded emulator or
//! use `--endpoint`", logging, progress bars and the summary table.
//!
//! Nothing here is needed to use the SDK; it only keeps the examples short. Each example is a
//! `[[example]]` target of this package:
//!
//! ```sh
//! cargo run --release --example debt_collection                  # embedded emulator + simulator
//! cargo run --release --example debt_collection -- --customers 50
//! cargo run --release --example ussd_menu
//! cargo run --release --example quickstart
//! ```

#![warn(missing_docs, unreachable_pub)]

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use elarian_emulator::config::{
    TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID, TEST_PAYMENT_CHANNEL, TEST_PURSE_ID,
    TEST_SMS_SHORT_CODE, TEST_USSD_CODE, TEST_VOICE_NUMBER,
};
use elarian_emulator::{DeliveryStats, Emulator, EmulatorBuilder, EmulatorHandle, InProcessDialer};
use elarian_sdk::{ClientConfig, ClientConfigBuilder, Endpoint};
use indicatif::{ProgressBar, ProgressStyle};

/// Where to connect: the embedded emulator (no `--endpoint`) or any Elarian server.
///
/// Every flag can also come from the environment variable named in `--help`. Without
/// `--endpoint` the example starts an emulator in its own process, and its app and simulated
/// customers connect to it through memory (no sockets); `--loopback-tcp` makes them connect
/// over TCP on a free local port instead, as separate processes would. The org, app and
/// API key default to the emulator's test account (`elarian_emulator::config::TEST_*`), so
/// `--endpoint tcp://127.0.0.1:5555` works against a standalone `cargo run -p elarian-emulator`.
#[derive(Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Elarian server to use instead of the embedded emulator, e.g. `tls://tcp.elarian.dev:443`
    /// or `tcp://127.0.0.1:5555`.
    #[arg(long, env = "ELARIAN_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Organization id.
    #[arg(long, env = "ELARIAN_ORG_ID", default_value = TEST_ORG_ID)]
    pub org: String,
    /// App id.
    #[arg(long, env = "ELARIAN_APP_ID", default_value = TEST_APP_ID)]
    pub app: String,
    /// API key (never printed; prefer the environment variable over the flag).
    #[arg(long, env = "ELARIAN_API_KEY", hide_env_values = true, hide_default_value = true,
          default_value = TEST_API_KEY)]
    pub api_key: String,
    /// With `--endpoint`: also run the simulated customers against that server (its org must
    /// allow simulator connections). Always on with the embedded emulator.
    #[arg(long)]
    pub simulate: bool,
    /// Also trust the CA certificate(s) in this PEM file for `tls://` and `wss://` endpoints,
    /// e.g. the certificate a standalone `elarian-emulator` prints.
    #[arg(long, env = "ELARIAN_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
    /// With the embedded emulator: connect the app and the simulated customers to it over TCP
    /// on 127.0.0.1 (a free port, shown in the banner) instead of in-process through memory.
    /// Slower, but other clients can connect to that port too.
    #[arg(long, conflicts_with = "endpoint")]
    pub loopback_tcp: bool,
}

impl std::fmt::Debug for ConnectionArgs {
    // The API key is a credential: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionArgs")
            .field("endpoint", &self.endpoint)
            .field("org", &self.org)
            .field("app", &self.app)
            .field("api_key", &"<redacted>")
            .field("simulate", &self.simulate)
            .field("ca_cert", &self.ca_cert)
            .field("loopback_tcp", &self.loopback_tcp)
            .finish()
    }
}

/// The SMS number alone, for examples that only text (so `--help` lists no other channel).
#[derive(Debug, Clone, clap::Args)]
pub struct SmsArgs {
    /// SMS short code (or sender id) the app sends from and customers reply to.
    #[arg(long, env = "ELARIAN_SMS_NUMBER", default_value = TEST_SMS_SHORT_CODE)]
    pub sms_number: String,
}

/// The channels of a USSD app that texts receipts and takes payments (no voice).
#[derive(Debug, Clone, clap::Args)]
pub struct UssdChannelArgs {
    /// SMS short code (or sender id) the app sends from and customers reply to.
    #[arg(long, env = "ELARIAN_SMS_NUMBER", default_value = TEST_SMS_SHORT_CODE)]
    pub sms_number: String,
    /// USSD code customers dial.
    #[arg(long, env = "ELARIAN_USSD_CODE", default_value = TEST_USSD_CODE)]
    pub ussd_code: String,
    /// Mobile-money payment channel (paybill) checkouts go through.
    #[arg(long, env = "ELARIAN_PAYMENT_CHANNEL", default_value = TEST_PAYMENT_CHANNEL)]
    pub payment_channel: String,
    /// Purse that collected money is credited to.
    #[arg(long, env = "ELARIAN_PURSE_ID", default_value = TEST_PURSE_ID)]
    pub purse_id: String,
}

/// The channels of an app that texts, calls and takes payments (no USSD). Defaults are the
/// emulator's test account.
#[derive(Debug, Clone, clap::Args)]
pub struct ChannelArgs {
    /// SMS short code (or sender id) the app sends from and customers reply to.
    #[arg(long, env = "ELARIAN_SMS_NUMBER", default_value = TEST_SMS_SHORT_CODE)]
    pub sms_number: String,
    /// Voice number the app calls from.
    #[arg(long, env = "ELARIAN_VOICE_NUMBER", default_value = TEST_VOICE_NUMBER)]
    pub voice_number: String,
    /// Mobile-money payment channel (paybill) checkouts go through.
    #[arg(long, env = "ELARIAN_PAYMENT_CHANNEL", default_value = TEST_PAYMENT_CHANNEL)]
    pub payment_channel: String,
    /// Purse that collected money is credited to.
    #[arg(long, env = "ELARIAN_PURSE_ID", default_value = TEST_PURSE_ID)]
    pub purse_id: String,
}

/// How clients reach the server.
#[derive(Debug, Clone)]
enum Route {
    /// Over the network: `--endpoint`, or the embedded emulator's TCP listener with
    /// `--loopback-tcp`.
    Endpoint(Endpoint),
    /// Through memory, to the embedded emulator.
    InProcess(Arc<InProcessDialer>),
}

/// The server the example talks to, and the emulator behind it when it is embedded.
pub struct Server {
    emulator: Option<EmulatorHandle>,
    route: Route,
    args: ConnectionArgs,
    /// The contents of `--ca-cert`, read once at start.
    ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("route", &self.route)
            .field("embedded", &self.emulator.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts the embedded emulator when no `--endpoint` is given (clients connect in-process,
    /// or with `--loopback-tcp` over TCP on `127.0.0.1`, a free port); otherwise only checks
    /// that the endpoint parses.
    pub async fn start(args: &ConnectionArgs) -> anyhow::Result<Server> {
        Server::start_with(args, |builder| builder).await
    }

    /// As [`start`](Self::start), with the embedded emulator's builder adjusted by `tune` (for
    /// example tighter limits in a test).
    pub async fn start_with(
        args: &ConnectionArgs,
        tune: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder,
    ) -> anyhow::Result<Server> {
        let (emulator, route) = match &args.endpoint {
            Some(url) => {
                let endpoint = url
                    .parse::<Endpoint>()
                    .with_context(|| format!("invalid --endpoint {url:?}"))?;
                (None, Route::Endpoint(endpoint))
            }
            None => {
                // The web console lets a person watch the example's customers live.
                let builder = Emulator::builder().console(([127, 0, 0, 1], 0));
                let builder = if args.loopback_tcp {
                    builder.tcp(([127, 0, 0, 1], 0))
                } else {
                    builder.in_process_only()
                };
                let emulator = tune(builder)
                    .start()
                    .await
                    .context("cannot start the embedded emulator")?;
                let route = if args.loopback_tcp {
                    Route::Endpoint(
                        emulator
                            .endpoint()
                            .context("the embedded emulator has no TCP listener")?,
                    )
                } else {
                    Route::InProcess(Arc::new(emulator.in_process_dialer()))
                };
                (Some(emulator), route)
            }
        };
        let ca_pem = match &args.ca_cert {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("cannot read --ca-cert {}", path.display()))?,
            ),
            None => None,
        };
        Ok(Server {
            emulator,
            route,
            args: args.clone(),
            ca_pem,
        })
    }

    /// True when the example runs its own in-process emulator.
    pub fn is_embedded(&self) -> bool {
        self.emulator.is_some()
    }

    /// Whether to run simulated customers: always with the embedded emulator, with
    /// `--simulate` against another server.
    pub fn simulate(&self) -> bool {
        self.is_embedded() || self.args.simulate
    }

    /// The endpoint clients connect to; `None` when they connect to the embedded emulator
    /// in-process.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match &self.route {
            Route::Endpoint(endpoint) => Some(endpoint),
            Route::InProcess(_) => None,
        }
    }

    /// Where clients connect, for messages: the endpoint, or `the in-process emulator`.
    pub fn target(&self) -> String {
        match &self.route {
            Route::Endpoint(endpoint) => endpoint.to_string(),
            Route::InProcess(_) => "the in-process emulator".to_owned(),
        }
    }

    /// A client configuration for this server (org, app, API key, and the endpoint or the
    /// embedded emulator's in-process dialer). Use it for
    /// `Elarian::new` and `Simulator::new`, which set the role themselves. The first connection
    /// gives up after 15 s (the SDK's default is 60 s): an example should fail fast when the
    /// server is not there. Connection errors are logged by the SDK (`RUST_LOG`).
    pub fn config(&self) -> ClientConfigBuilder {
        let builder = ClientConfig::builder()
            .org_id(&self.args.org)
            .app_id(&self.args.app)
            .api_key(self.args.api_key.as_str())
            .initial_connect_timeout(Duration::from_secs(15));
        let builder = match &self.route {
            Route::Endpoint(endpoint) => builder.endpoint(endpoint.clone()),
            Route::InProcess(dialer) => builder.dialer(dialer.clone()),
        };
        match &self.ca_pem {
            // An unusable file fails `Elarian::new` with a config error naming it.
            Some(pem) => builder.root_certificate_pem(pem),
            None => builder,
        }
    }

    /// One line saying where the example runs, for its banner.
    pub fn describe(&self) -> String {
        if let Some(emulator) = &self.emulator {
            let at = match &self.route {
                Route::Endpoint(endpoint) => format!("at {endpoint} (loopback TCP)"),
                Route::InProcess(_) => "connected in-process".to_owned(),
            };
            match emulator.console_url() {
                Some(url) => format!("embedded emulator {at} (console: {url})"),
                None => format!("embedded emulator {at}"),
            }
        } else {
            format!(
                "{} (org {}, app {})",
                self.target(),
                self.args.org,
                self.args.app
            )
        }
    }

    /// What the embedded emulator's notification delivery shed or refused (`None` against
    /// another server).
    pub fn delivery_stats(&self) -> Option<DeliveryStats> {
        self.emulator.as_ref().map(EmulatorHandle::delivery_stats)
    }

    /// History entries (messages, sessions, transactions, activity) the embedded emulator
    /// dropped because a customer had more than its `history_limit`, if it runs here.
    pub fn history_trimmed(&self) -> Option<u64> {
        self.emulator.as_ref().map(|e| e.engine().history_trimmed())
    }

    /// Stops the embedded emulator, if any.
    pub async fn shutdown(self) {
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default: warnings and errors), so
/// that the examples' own output stays readable.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second call (e.g. from a test) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// How often [`progress_bar`] prints a line when stdout is not a terminal.
pub const PROGRESS_LINE_INTERVAL: Duration = Duration::from_secs(5);

/// A progress bar of `len` steps on stderr, hidden when stderr is not a terminal (CI logs).
/// When stdout is not a terminal either (a log file, CI), a line such as
/// `enrolled: 120/1000 after 5 s` goes to stdout every [`PROGRESS_LINE_INTERVAL`] until the
/// bar is finished or dropped, so a long run still shows it is moving.
pub fn progress_bar(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = styled_bar(len, prefix);
    if !std::io::stdout().is_terminal() {
        print_progress_lines(&bar, PROGRESS_LINE_INTERVAL, |line| println!("{line}"));
    }
    bar
}

/// Calls `print` with a progress line every `every` until `bar` is finished or dropped. From a
/// thread of its own, so it works with or without a runtime and never delays the example.
fn print_progress_lines(
    bar: &ProgressBar,
    every: Duration,
    print: impl Fn(String) + Send + 'static,
) {
    let weak = bar.downgrade();
    let spawned = std::thread::Builder::new()
        .name("progress-lines".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(bar) = weak.upgrade() else { return };
                if bar.is_finished() {
                    return;
                }
                print(progress_line(&bar));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no progress lines: cannot start their thread");
    }
}

/// `prefix: position/length after N s`.
fn progress_line(bar: &ProgressBar) -> String {
    format!(
        "{}: {}/{} after {} s",
        bar.prefix(),
        bar.position(),
        bar.length().unwrap_or(0),
        bar.elapsed().as_secs()
    )
}

fn styled_bar(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    // The template is a constant: it only fails to parse if it is edited wrongly.
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(prefix);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A two-column table printed at the end of a run.
///
/// ```
/// let mut table = elarian_examples::SummaryTable::new("Summary");
/// table.row("customers", 10).row("elapsed", "1.2 s");
/// assert!(table.render().contains("customers"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct SummaryTable {
    title: String,
    rows: Vec<(String, String)>,
}

impl SummaryTable {
    /// An empty table with a title.
    pub fn new(title: impl Into<String>) -> Self {
        SummaryTable {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, label: impl Into<String>, value: impl ToString) -> &mut Self {
        self.rows.push((label.into(), value.to_string()));
        self
    }

    /// The table as text, one row per line.
    pub fn render(&self) -> String {
        let label_width = self.rows.iter().map(|(l, _)| l.chars().count()).max();
        let value_width = self.rows.iter().map(|(_, v)| v.chars().count()).max();
        let (lw, vw) = (label_width.unwrap_or(0), value_width.unwrap_or(0));
        let width = (lw + vw + 5).max(self.title.chars().count() + 4);
        let vw = width - lw - 5;
        let line = "-".repeat(width);
        let mut out = String::new();
        let _ = writeln!(out, "+{line}+");
        let _ = writeln!(out, "| {:<w$} |", self.title, w = width - 2);
        let _ = writeln!(out, "+{line}+");
        for (label, value) in &self.rows {
            let _ = writeln!(out, "| {label:<lw$} | {value:>vw$} |");
        }
        let _ = writeln!(out, "+{line}+");
        out
    }

    /// Prints the table to stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Formats an amount of money with thousands separators, e.g. `KES 1,234,500.00`.
pub fn money(currency: &str, amount: f64) -> String {
    let cents = (amount * 100.0).round() as i64;
    let (sign, cents) = if cents < 0 {
        ("-", -cents)
    } else {
        ("", cents)
    };
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{currency} {sign}{grouped}.{:02}", cents % 100)
}

/// The process's peak resident memory in bytes (`VmHWM` of `/proc/self/status`); `None` where
/// that file does not exist (not Linux).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Resolves when the process receives Ctrl-C (or never, where signals are unavailable).
pub async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_rounds_to_cents() {
        assert_eq!(money("KES", 1_234_500.0), "KES 1,234,500.00");
        assert_eq!(money("KES", 999.999), "KES 1,000.00");
        assert_eq!(money("KES", 0.5), "KES 0.50");
        assert_eq!(money("KES", -12.3), "KES -12.30");
    }

    #[test]
    fn peak_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_memory_bytes().is_some_and(|bytes| bytes > 0));
        }
    }

    #[test]
    fn progress_lines_come_until_the_bar_is_finished() {
        let bar = styled_bar(10, "enrolled");
        bar.set_position(3);
        let (tx, rx) = std::sync::mpsc::channel();
        print_progress_lines(&bar, Duration::from_millis(20), move |line| {
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(5)).expect("a line");
        assert!(line.starts_with("enrolled: 3/10 after "), "{line}");
        bar.finish();
        // At most one more line (one already under way), then none.
        std::thread::sleep(Duration::from_millis(100));
        while rx.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(100));
        assert!(rx.try_recv().is_err(), "lines after the bar finished");
    }

    fn flags_of(args: clap::Command) -> Vec<String> {
        args.get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect()
    }

    #[test]
    fn channel_flag_groups_list_only_their_flags() {
        use clap::Args as _;
        let sms = flags_of(SmsArgs::augment_args(clap::Command::new("quickstart")));
        assert_eq!(sms, ["sms-number"]);
        let ussd = flags_of(UssdChannelArgs::augment_args(clap::Command::new("ussd")));
        assert!(ussd.contains(&"ussd-code".to_owned()), "{ussd:?}");
        assert!(!ussd.contains(&"voice-number".to_owned()), "{ussd:?}");
        let all = flags_of(ChannelArgs::augment_args(clap::Command::new("debt")));
        assert!(all.contains(&"voice-number".to_owned()), "{all:?}");
        assert!(!all.contains(&"ussd-code".to_owned()), "{all:?}");
    }

    fn connection_args(endpoint: String, ca_cert: Option<PathBuf>) -> ConnectionArgs {
        ConnectionArgs {
            endpoint: Some(endpoint),
            org: TEST_ORG_ID.into(),
            app: TEST_APP_ID.into(),
            api_key: TEST_API_KEY.into(),
            simulate: false,
            ca_cert,
            loopback_tcp: false,
        }
    }

    #[tokio::test]
    async fn ca_cert_trusts_the_certificate_the_emulator_prints() {
        let emulator = Emulator::builder()
            .tls(([127, 0, 0, 1], 0))
            .start()
            .await
            .unwrap();
        let endpoint = emulator.tls_endpoint().unwrap().to_string();
        let path =
            std::env::temp_dir().join(format!("elarian-examples-ca-{}.pem", std::process::id()));
        std::fs::write(&path, emulator.tls_certificate_pem().unwrap()).unwrap();

        let server = Server::start(&connection_args(endpoint.clone(), Some(path.clone())))
            .await
            .unwrap();
        let app = elarian_sdk::Elarian::new(server.config()).unwrap();
        app.connect()
            .await
            .expect("the printed certificate is trusted");
        app.disconnect().await;

        // Without it the certificate is unknown, and the error says so.
        let server = Server::start(&connection_args(endpoint, None))
            .await
            .unwrap();
        let app = elarian_sdk::Elarian::new(
            server
                .config()
                .initial_connect_timeout(Duration::from_millis(500)),
        )
        .unwrap();
        let error = app.connect().await.unwrap_err();
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(e) = source {
            text.push_str(&format!(": {e}"));
            source = e.source();
        }
        assert!(text.contains("certificate"), "{text}");

        let missing = connection_args("tcp://127.0.0.1:1".into(), Some(path.with_extension("no")));
        let error = Server::start(&missing).await.unwrap_err();
        assert!(format!("{error:#}").contains("--ca-cert"), "{error:#}");
        std::fs::remove_file(&path).unwrap();
        emulator.shutdown().await;
    }

    #[tokio::test]
    async fn the_embedded_emulator_is_reached_in_process_unless_loopback_tcp_is_asked_for() {
        for loopback_tcp in [false, true] {
            let args = ConnectionArgs {
                endpoint: None,
                loopback_tcp,
                ..connection_args(String::new(), None)
            };
            let server = Server::start(&args).await.unwrap();
            let banner = server.describe();
            assert!(banner.contains("console: http://127.0.0.1:"), "{banner}");
            if loopback_tcp {
                let endpoint = server.endpoint().expect("a TCP endpoint").to_string();
                assert!(endpoint.starts_with("tcp://127.0.0.1:"), "{endpoint}");
                assert!(banner.contains(&endpoint), "{banner}");
                assert!(server.config().build().unwrap().dialer().is_none());
            } else {
                assert!(server.endpoint().is_none());
                assert!(banner.contains("in-process"), "{banner}");
                assert_eq!(server.target(), "the in-process emulator");
                assert!(server.config().build().unwrap().dialer().is_some());
            }
            let app = elarian_sdk::Elarian::new(server.config()).unwrap();
            app.connect().await.expect("the app connects");
            let sim = elarian_simulator::Simulator::new(server.config()).unwrap();
            sim.connect().await.expect("the simulator connects");
            sim.disconnect().await;
            app.disconnect().await;
            server.shutdown().await;
        }
    }

    #[test]
    fn the_endpoint_and_loopback_tcp_flags_exclude_each_other() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            connection: ConnectionArgs,
        }
        use clap::Parser as _;
        assert!(Cli::try_parse_from(["x", "--loopback-tcp"]).is_ok());
        assert!(
            Cli::try_parse_from(["x", "--loopback-tcp", "--endpoint", "tcp://127.0.0.1:1"])
                .is_err()
        );
    }

    #[test]
    fn table_aligns_columns_and_fits_the_title() {
        let mut table = SummaryTable::new("A rather long title for two rows");
        table.row("a", 1).row("longer label", "value");
        let text = table.render();
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
        assert!(text.contains("| longer label |"));
    }
}

/// Compiles the Rust snippets of the README as doctests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeSnippets;

/// Compiles the Rust snippets of `docs/getting-started.md` as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/getting-started.md")]
pub struct GettingStartedSnippets;
