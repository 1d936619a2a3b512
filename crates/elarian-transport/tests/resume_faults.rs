//! Resumption under fire: a TCP proxy between a resumable client and the server cuts every
//! connection over and over while thousands of pipelined request/responses run. The client
//! reconnects through the proxy and resumes; every request must complete exactly once with its own
//! response, and the server must see every request exactly once.
#![cfg(feature = "tcp")]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use elarian_transport::BoxFuture;
use elarian_transport::io::{FramingConfig, TcpListener, TcpTransport};
use elarian_transport::{
    ClientSession, ClientSessionConfig, Payload, RejectAll, RequestHandler, ResumeError, Server,
    ServerConfig, StreamError,
};
use tokio::sync::watch;

/// A TCP proxy whose connections can all be cut at once.
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(0u64);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                    // Both sockets drop here, mid-frame as often as not.
                });
            }
        });
        Proxy { addr, cut }
    }

    /// Drops every connection through the proxy.
    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// Echoes the request and records every request id it sees.
struct RecordingEcho {
    seen: Arc<Mutex<HashSet<Bytes>>>,
    duplicates: Arc<AtomicUsize>,
}

impl RequestHandler for RecordingEcho {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let fresh = self
            .seen
            .lock()
            .map(|mut seen| seen.insert(payload.data.clone()))
            .unwrap_or(false);
        if !fresh {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        Box::pin(async move { Ok(payload) })
    }
}

async fn start_server(
    seen: Arc<Mutex<HashSet<Bytes>>>,
    duplicates: Arc<AtomicUsize>,
) -> SocketAddr {
    let mut listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerConfig::default());
    tokio::spawn({
        let server = server.clone();
        async move {
            while let Ok((transport, _)) = listener.accept().await {
                server.serve_transport(transport);
            }
        }
    });
    tokio::spawn(async move {
        let responder = Arc::new(RecordingEcho { seen, duplicates });
        while let Some(incoming) = server.accept().await {
            incoming.accept(responder.clone());
        }
    });
    addr
}

async fn run(total: usize, in_flight: usize, min_cuts: usize) {
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let duplicates = Arc::new(AtomicUsize::new(0));
    let server = start_server(seen.clone(), duplicates.clone()).await;
    let proxy = Proxy::start(server).await;

    let config = ClientSessionConfig {
        resume_token: Some(Bytes::from_static(b"resume-faults-test")),
        connect_timeout: Duration::from_secs(5),
        ..ClientSessionConfig::default()
    };
    let transport = TcpTransport::connect(proxy.addr, FramingConfig::default())
        .await
        .unwrap();
    let session = ClientSession::connect(transport, config, Arc::new(RejectAll))
        .await
        .expect("connect through the proxy");

    // Reconnects through the proxy and resumes whenever the transport is lost.
    let resumes = Arc::new(AtomicUsize::new(0));
    let reconnector = tokio::spawn({
        let session = session.clone();
        let resumes = resumes.clone();
        let proxy_addr = proxy.addr;
        async move {
            loop {
                session.disconnected().await;
                if session.connection().is_closed() {
                    return Err::<(), _>("session closed".to_owned());
                }
                let transport =
                    match TcpTransport::connect(proxy_addr, FramingConfig::default()).await {
                        Ok(t) => t,
                        Err(e) => return Err(format!("reconnect failed: {e}")),
                    };
                match session.resume(transport).await {
                    Ok(()) => {
                        resumes.fetch_add(1, Ordering::Relaxed);
                    }
                    // The new connection may itself have been cut; the next round retries.
                    Err(ResumeError::Timeout) => {}
                    Err(e) => return Err(format!("resume failed: {e}")),
                }
            }
        }
    });

    // Requests run in slices: a request may start only once its id is below `allowed`, which
    // moves up one slice per cut. So the cuts spread over the whole run however fast it goes.
    let cuts_planned = min_cuts + 2;
    let slice = (total / (cuts_planned + 1)).max(1);
    let (allowed_tx, allowed_rx) = watch::channel(slice.min(total));

    // Pipelined requests, each with a unique id that must come back as its own response.
    let next_id = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let session = session.clone();
            let next_id = next_id.clone();
            let completed = completed.clone();
            let mut allowed = allowed_rx.clone();
            tokio::spawn(async move {
                loop {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    if id >= total {
                        return Ok::<_, String>(());
                    }
                    allowed
                        .wait_for(|limit| id < *limit)
                        .await
                        .map_err(|_| "the test driver stopped".to_owned())?;
                    let request = Bytes::from(format!("request-{id}"));
                    let reply = session
                        .connection()
                        .request_response(Payload::new(request.clone()))
                        .await
                        .map_err(|e| format!("request {id} failed: {e}"))?;
                    if reply.data != request {
                        return Err(format!("request {id} got the response {:?}", reply.data));
                    }
                    completed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Cuts the connection when a slice is nearly done, so that about half the pipeline is in
    // flight at that moment, and only while the session is attached; then opens the next slice.
    let mut cuts = 0;
    let mut limit = slice.min(total);
    while cuts < cuts_planned {
        let due = limit.saturating_sub(in_flight / 2);
        if completed.load(Ordering::Relaxed) >= due && !session.is_detached() {
            proxy.cut_all();
            cuts += 1;
            limit = (limit + slice).min(total);
            allowed_tx.send_replace(limit);
        }
        if reconnector.is_finished() {
            panic!("the reconnector stopped: {:?}", reconnector.await);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    allowed_tx.send_replace(total);
    while completed.load(Ordering::Relaxed) < total {
        if reconnector.is_finished() {
            panic!("the reconnector stopped: {:?}", reconnector.await);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    for worker in workers {
        worker.await.unwrap().unwrap();
    }
    println!(
        "{total} requests, {cuts} cuts, {} resumes",
        resumes.load(Ordering::Relaxed)
    );
    assert_eq!(completed.load(Ordering::Relaxed), total);
    assert!(cuts >= min_cuts, "only {cuts} cuts happened");
    assert!(
        resumes.load(Ordering::Relaxed) >= cuts,
        "{} resumes for {cuts} cuts",
        resumes.load(Ordering::Relaxed)
    );
    assert_eq!(
        duplicates.load(Ordering::Relaxed),
        0,
        "the server saw requests twice"
    );
    assert_eq!(seen.lock().unwrap().len(), total);
    reconnector.abort();
    session.connection().close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_completes_once_across_20_cuts() {
    tokio::time::timeout(Duration::from_secs(120), run(10_000, 64, 20))
        .await
        .expect("the run did not finish in time");
}

/// The long version: `cargo test -p elarian-transport --release --test resume_faults -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long soak; run on demand"]
async fn every_request_completes_once_across_200_cuts() {
    tokio::time::timeout(Duration::from_secs(600), run(200_000, 64, 200))
        .await
        .expect("the run did not finish in time");
}
