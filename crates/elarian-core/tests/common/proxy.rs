//! A TCP proxy whose connections can be cut or stalled, to simulate network failures without the
//! server noticing anything but a lost (or silent) transport.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    stalled: watch::Sender<bool>,
    acceptor: JoinHandle<()>,
    /// Bytes handed to the client's socket, over every connection.
    to_client: Arc<AtomicU64>,
}

/// Copies one direction; while stalled, bytes are held back (the sockets stay open). Counts
/// the bytes written into `moved`.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut stalled: watch::Receiver<bool>,
    moved: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        moved.fetch_add(n as u64, Ordering::SeqCst);
    }
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let stalled = watch::Sender::new(false);
        let to_client = Arc::new(AtomicU64::new(0));
        let acceptor = {
            let pipes = pipes.clone();
            let stalled = stalled.clone();
            let to_client = to_client.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let stalled = stalled.clone();
                    let to_client = to_client.clone();
                    let pipe = tokio::spawn(async move {
                        let Ok(outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        // Either direction ending closes both sockets.
                        tokio::select! {
                            _ = pump(in_read, out_write, stalled.subscribe(), Arc::default()) => {}
                            _ = pump(out_read, in_write, stalled.subscribe(), to_client) => {}
                        }
                    });
                    pipes.lock().unwrap().push(pipe);
                }
            })
        };
        Proxy {
            addr,
            pipes,
            stalled,
            acceptor,
            to_client,
        }
    }

    /// Bytes forwarded from the server to the client so far.
    pub fn bytes_to_client(&self) -> u64 {
        self.to_client.load(Ordering::SeqCst)
    }

    /// Drops every proxied connection (both sockets close; bytes in transit are lost).
    pub fn cut(&self) {
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }

    /// Stops (or resumes) forwarding bytes on every connection, keeping the sockets open: the
    /// peers only notice through keepalive timeouts.
    pub fn stall(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}
