//! Shared code of the end-to-end benchmarks (`benches/e2e.rs`, `benches/emulator.rs`) and of the
//! JavaScript compatibility check (`src/bin/js-compat.rs`).
//!
//! Everything here is built on public APIs only: `elarian-sdk` on the client side and
//! `Emulator::builder()` on the server side, so the figures are what an application sees over the
//! real wire.

pub mod alloc_count;
pub mod clock;
pub mod floor;
pub mod js;
pub mod options;
pub mod usage;
pub mod workload;

use std::time::Duration;

use elarian_emulator::EmulatorHandle;
use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
use elarian_sdk::{ClientConfig, ClientConfigBuilder, Elarian, Endpoint};

/// Why a benchmark could not run to the end.
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl BenchError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        BenchError(message.into())
    }
}

/// Result of the benchmark helpers.
pub type Result<T> = std::result::Result<T, BenchError>;

/// The emulator and the client on separate tokio runtimes, as two processes would be: the
/// emulator's tasks never run on the client's worker threads and the other way round. Sizes
/// come from `ELARIAN_BENCH_SERVER_THREADS` and `ELARIAN_BENCH_CLIENT_THREADS` (0 for a
/// current-thread client). By default the emulator has a worker per core, like the
/// `elarian-emulator` binary, and the client runs on one thread (a current-thread runtime), like
/// the JavaScript client on node's event loop it is compared with.
pub struct Runtimes {
    /// Runs the emulator (start it with `server.block_on(builder.start())`).
    pub server: tokio::runtime::Runtime,
    /// Runs the SDK and the measurements. Its threads are marked for
    /// [`alloc_count`]; with a current-thread runtime (the default) mark the thread that calls
    /// `block_on` with [`alloc_count::client_thread`].
    pub client: tokio::runtime::Runtime,
}

impl Runtimes {
    /// Builds both runtimes.
    pub fn new() -> Result<Self> {
        let threads = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(default)
        };
        let build = |name: &str, workers: usize, client: bool| {
            let mut builder = if workers == 0 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(workers);
                b
            };
            if client {
                // Threads the client runtime starts (workers, blocking pool) count as the SDK's
                // side; a current-thread runtime's own thread is marked by its caller.
                builder.on_thread_start(alloc_count::mark_client_thread);
            }
            builder
                .enable_all()
                .thread_name(name)
                .build()
                .map_err(|e| BenchError::new(format!("cannot build the {name} runtime: {e}")))
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Runtimes {
            server: build(
                "emulator",
                threads("ELARIAN_BENCH_SERVER_THREADS", cores).max(1),
                false,
            )?,
            client: build("client", threads("ELARIAN_BENCH_CLIENT_THREADS", 0), true)?,
        })
    }
}

/// Bound on connecting and on any single command of a benchmark.
pub const WAIT: Duration = Duration::from_secs(30);

/// A config for the emulator's default test app at `endpoint`.
pub fn app_config(endpoint: Endpoint) -> ClientConfigBuilder {
    ClientConfig::builder()
        .org_id(TEST_ORG_ID)
        .app_id(TEST_APP_ID)
        .api_key(TEST_API_KEY)
        .endpoint(endpoint)
        .command_timeout(WAIT)
        .initial_connect_timeout(WAIT)
}

/// Connects an app to the emulator's TCP listener (`notifications`: whether the emulator may send
/// it notifications). Handlers must be registered by the caller before or after.
pub async fn connect_app(emulator: &EmulatorHandle, notifications: bool) -> Result<Elarian> {
    let endpoint = emulator
        .endpoint()
        .ok_or_else(|| BenchError::new("the emulator has no TCP listener"))?;
    connect(app_config(endpoint).allow_notifications(notifications)).await
}

/// Builds and connects an app, bounded by [`WAIT`].
pub async fn connect(config: ClientConfigBuilder) -> Result<Elarian> {
    let app = Elarian::new(config).map_err(|e| BenchError::new(format!("config: {e}")))?;
    tokio::time::timeout(WAIT, app.connect())
        .await
        .map_err(|_| BenchError::new("connecting to the emulator timed out"))?
        .map_err(|e| BenchError::new(format!("connecting to the emulator: {e}")))?;
    Ok(app)
}

/// Installs the `tracing` subscriber the bench programs log through (`RUST_LOG`, default warn).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second call (or another subscriber) is harmless for a benchmark.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Formats a rate with thousands separators, e.g. `12,345`.
pub fn thousands(value: f64) -> String {
    let rounded = value.round().max(0.0) as u64;
    let digits = rounded.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
