//! Checks the published JavaScript client (npm `elarian`) against the emulator: starts an
//! in-process emulator with a TLS listener and runs `tools/js-bench/compat.js` against it, which
//! exits 0 only when every command and notification handler behaved.
//!
//! ```text
//! cargo run -p elarian-benches --bin js-compat      # or: cargo xtask js-compat
//! ```

use std::process::ExitCode;
use std::time::Duration;

use elarian_benches::{BenchError, Result, js};
use elarian_emulator::Emulator;
use elarian_sdk::{CustomerNumber, Tag};

/// The customer the Rust SDK tags before the JavaScript client runs.
const RUST_CUSTOMER: &str = "+254712000999";

#[tokio::main]
async fn main() -> ExitCode {
    elarian_benches::init_logging();
    match run().await {
        Ok(()) => {
            println!("js-compat: the JavaScript client works against the emulator");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("js-compat failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    if std::env::args().len() > 1 {
        return Err(BenchError::new("js-compat takes no arguments"));
    }
    let version = js::node_version().await.ok_or_else(|| {
        BenchError::new("node is not installed: cannot run the JavaScript client")
    })?;
    js::ensure_installed(Duration::from_secs(180)).await?;
    let emulator = Emulator::builder()
        .tls(([127, 0, 0, 1], 0))
        .tcp(([127, 0, 0, 1], 0))
        .start()
        .await
        .map_err(|e| BenchError::new(format!("emulator: {e}")))?;
    let result = async {
        let port = emulator
            .tls_addr()
            .ok_or_else(|| BenchError::new("the emulator has no TLS listener"))?
            .port();
        let pem = emulator
            .tls_certificate_pem()
            .ok_or_else(|| BenchError::new("the emulator has no TLS certificate"))?;
        let ca = js::CertFile::write(pem)?;
        // A customer whose state the Rust SDK wrote, for the JavaScript client to read: the two
        // clients share customers in practice.
        let app = elarian_benches::connect_app(&emulator, false).await?;
        app.customer(CustomerNumber::cellular(RUST_CUSTOMER))
            .update_tags(vec![Tag::new("written-by", "rust")])
            .await
            .map_err(|e| BenchError::new(format!("Rust SDK update_tags: {e}")))?;
        app.disconnect().await;
        println!("js-compat: node {version}, emulator TLS on localhost:{port}");
        js::run_script(
            "compat.js",
            &["localhost".into(), port.to_string(), RUST_CUSTOMER.into()],
            &ca,
            Duration::from_secs(120),
        )
        .await
        .map(drop)
    }
    .await;
    emulator.shutdown().await;
    result
}
