//! Running the published JavaScript client (npm `elarian`) from `tools/js-bench`.
//!
//! The JavaScript client connects over TLS TCP only, so scripts get the emulator's TLS port and
//! trust its self-signed certificate through `NODE_EXTRA_CA_CERTS`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::{BenchError, Result};

/// `tools/js-bench` in the workspace.
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|root| root.join("tools").join("js-bench"))
        .unwrap_or_else(|| PathBuf::from("tools/js-bench"))
}

/// The version `node --version` prints, or `None` when node is not installed.
pub async fn node_version() -> Option<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        Command::new("node")
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs `npm ci` in `tools/js-bench` (the versions of its `package-lock.json`) unless the
/// `elarian` package is already there.
pub async fn ensure_installed(timeout: Duration) -> Result<()> {
    let dir = js_dir();
    if dir.join("node_modules").join("elarian").is_dir() {
        return Ok(());
    }
    eprintln!(
        "installing the JavaScript client: npm ci in {}",
        dir.display()
    );
    let output = tokio::time::timeout(
        timeout,
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| BenchError::new(format!("npm ci timed out after {timeout:?}")))?
    .map_err(|e| BenchError::new(format!("cannot run npm: {e}")))?;
    if !output.status.success() {
        return Err(BenchError::new(format!(
            "npm ci failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Writes the emulator's certificate where node can read it; removed on drop.
#[derive(Debug)]
pub struct CertFile(PathBuf);

impl CertFile {
    /// Writes `pem` to a fresh file in the temp dir.
    pub fn write(pem: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "elarian-bench-{}-{nanos}-ca.pem",
            std::process::id()
        ));
        std::fs::write(&path, pem)
            .map_err(|e| BenchError::new(format!("cannot write {}: {e}", path.display())))?;
        Ok(CertFile(path))
    }

    /// Where the certificate is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for CertFile {
    fn drop(&mut self) {
        // Best effort: a leftover public certificate in /tmp is harmless.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `node SCRIPT ARGS…` in `tools/js-bench`, trusting `ca`, echoing its stderr, and returns
/// its stdout lines. Fails when it exits non-zero or runs longer than `timeout` (it is killed).
pub async fn run_script(
    script: &str,
    args: &[String],
    ca: &CertFile,
    timeout: Duration,
) -> Result<Vec<String>> {
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(js_dir())
        .env("NODE_EXTRA_CA_CERTS", ca.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BenchError::new(format!("cannot run node {script}: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| BenchError::new("node's stdout is not piped"))?;
    let run = async {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout).lines();
        while let Some(line) = reader
            .next_line()
            .await
            .map_err(|e| BenchError::new(format!("reading node's output: {e}")))?
        {
            println!("  [node] {line}");
            lines.push(line);
        }
        let status = child
            .wait()
            .await
            .map_err(|e| BenchError::new(format!("waiting for node: {e}")))?;
        Ok::<_, BenchError>((status, lines))
    };
    let (status, lines) = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| BenchError::new(format!("node {script} timed out after {timeout:?}")))??;
    if !status.success() {
        return Err(BenchError::new(format!("node {script} failed: {status}")));
    }
    Ok(lines)
}
