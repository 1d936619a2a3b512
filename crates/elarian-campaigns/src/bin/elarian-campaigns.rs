//! Serves the campaigns HTTP API against an Elarian endpoint, or against an emulator it starts
//! in-process when no `--endpoint` is given (its app then reaches that emulator through memory,
//! not a socket). That emulator's web console (`--console`, default
//! 127.0.0.1:5558; `--no-console` to skip it) reads this API, so its campaigns page shows the
//! messages and sendings with their progress; the binary prints the page's URL.
//!
//! ```sh
//! cargo run -p elarian-campaigns -- --listen 127.0.0.1:8080 --http-api-key secret
//! cargo run -p elarian-campaigns -- --endpoint tls://tcp.elarian.dev:443 --org … --app … --api-key …
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use elarian_campaigns::{Campaigns, CampaignsConfig, Store, SystemClock};
use elarian_emulator::Emulator;
use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID};
use elarian_sdk::{ClientConfig, Elarian, Endpoint};

#[derive(Parser)]
#[command(about = "Messaging campaigns on Elarian: the HTTP API")]
struct Args {
    /// Elarian server, e.g. `tls://tcp.elarian.dev:443`; without it an emulator is started.
    #[arg(long, env = "ELARIAN_ENDPOINT")]
    endpoint: Option<String>,
    /// Organization id.
    #[arg(long, env = "ELARIAN_ORG_ID", default_value = TEST_ORG_ID)]
    org: String,
    /// App id.
    #[arg(long, env = "ELARIAN_APP_ID", default_value = TEST_APP_ID)]
    app: String,
    /// Elarian API key (never printed).
    #[arg(long, env = "ELARIAN_API_KEY", hide_env_values = true, hide_default_value = true,
          default_value = TEST_API_KEY)]
    api_key: String,
    /// Address the HTTP API listens on.
    #[arg(long, env = "CAMPAIGNS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Key HTTP clients must send (`Authorization: Bearer <key>`); never printed.
    #[arg(long, env = "CAMPAIGNS_HTTP_API_KEY", hide_env_values = true)]
    http_api_key: String,
    /// The campaigns' redb file.
    #[arg(long, env = "CAMPAIGNS_DB", default_value = "campaigns.redb")]
    db: PathBuf,
    /// Keep campaigns in memory only.
    #[arg(long)]
    in_memory: bool,
    /// Sends in flight at once per sending.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// SMS per second (0: unlimited).
    #[arg(long, default_value_t = 0)]
    sms_rate: u32,
    /// Where the embedded emulator serves its web console, which shows these campaigns (no
    /// effect with --endpoint).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:5558",
        conflicts_with = "no_console"
    )]
    console: SocketAddr,
    /// Do not serve the embedded emulator's console.
    #[arg(long)]
    no_console: bool,
}

/// The URL the embedded emulator's console reads this API at: a wildcard listen address is
/// reached on loopback.
fn api_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, listen.port()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let args = Args::parse();
    if args.http_api_key.trim().is_empty() {
        return Err("--http-api-key must not be empty".into());
    }
    // Bound first: the embedded emulator's console is told where this API answers.
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let listen = listener.local_addr()?;
    let config = ClientConfig::builder()
        .org_id(&args.org)
        .app_id(&args.app)
        .api_key(args.api_key.as_str())
        .initial_connect_timeout(Duration::from_secs(15));
    let (emulator, config, elarian) = match &args.endpoint {
        Some(url) => {
            let endpoint = url.parse::<Endpoint>()?;
            let elarian = endpoint.to_string();
            (None, config.endpoint(endpoint), elarian)
        }
        None => {
            // Nothing else connects to this emulator: no listener, the app dials it in-process.
            let mut builder = Emulator::builder().in_process_only();
            if !args.no_console {
                builder = builder
                    .console(args.console)
                    .console_campaigns(api_url(listen), args.http_api_key.as_str());
            }
            let emulator = builder.start().await?;
            if let Some(url) = emulator.console_url() {
                println!("console: {url}campaigns");
            }
            let dialer = Arc::new(emulator.in_process_dialer());
            let elarian = "in-process emulator".to_owned();
            (Some(emulator), config.dialer(dialer), elarian)
        }
    };
    let app = Elarian::new(config)?;
    app.connect().await?;
    let store = if args.in_memory {
        Store::memory()
    } else {
        Store::open(&args.db)?
    };
    let mut config = CampaignsConfig {
        concurrency: args.concurrency.max(1),
        ..CampaignsConfig::default()
    };
    if args.sms_rate > 0 {
        config
            .rates
            .insert(elarian_campaigns::ChannelType::Sms, args.sms_rate);
    }
    let campaigns =
        Campaigns::open_with_clock(app.clone(), store, Arc::new(SystemClock), config).await?;
    tracing::info!(
        listen = %listen,
        elarian = %elarian,
        embedded_emulator = emulator.is_some(),
        "campaigns API ready"
    );
    let router = elarian_campaigns::http::router(campaigns.clone(), &args.http_api_key);
    elarian_campaigns::http::serve(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    campaigns.shutdown().await;
    app.disconnect().await;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(())
}
