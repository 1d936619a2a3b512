//! Request/response echo over loopback TCP with 128-byte payloads, 1 and 64 requests in flight,
//! for this engine, for rsocket_rust 0.7 and for a raw length-prefixed echo (the floor).
//!
//! ```text
//! cargo bench -p elarian-transport --bench req_resp            # full run
//! cargo bench -p elarian-transport --bench req_resp -- --quick # smoke run
//! cargo bench -p elarian-transport --bench req_resp -- --only=elarian --in-flight=64
//! ```
//!
//! The server runs on its own single-worker runtime in its own thread, the client on a
//! current-thread runtime, so the two sides compete for the CPU as two processes would. The
//! implementations take turns over several rounds and the median is reported, which evens out
//! noise from other work on the machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

const PAYLOAD: usize = 128;
const OURS: &str = "elarian-transport";
const RSOCKET_RUST: &str = "rsocket_rust 0.7.5";
const RAW: &str = "raw length-prefixed";

fn server_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime")
}

fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

/// One benchmarked implementation: a server to start once and a client run to time.
trait Contender {
    fn name(&self) -> &'static str;
    /// Starts the echo server on `rt` and returns its address.
    fn start_server(&self, rt: &Runtime) -> SocketAddr;
    /// Sends `requests` requests with `in_flight` outstanding at a time and waits for every answer.
    fn run(&self, rt: &Runtime, addr: SocketAddr, in_flight: usize, requests: usize);
}

// ---------------------------------------------------------------------------------------------
// This engine over its TCP transport.

struct Ours;

struct OurEcho;

impl elarian_transport::RequestHandler for OurEcho {
    fn request_response(
        &self,
        payload: elarian_transport::Payload,
    ) -> elarian_transport::responder::BoxFuture<
        'static,
        Result<elarian_transport::Payload, elarian_transport::StreamError>,
    > {
        Box::pin(async move { Ok(payload) })
    }
}

impl Contender for Ours {
    fn name(&self) -> &'static str {
        OURS
    }

    fn start_server(&self, rt: &Runtime) -> SocketAddr {
        use elarian_transport::io::TcpListener;
        use elarian_transport::{Server, ServerConfig};
        rt.block_on(async {
            let mut listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
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
                while let Some(incoming) = server.accept().await {
                    incoming.accept(Arc::new(OurEcho));
                }
            });
            addr
        })
    }

    fn run(&self, rt: &Runtime, addr: SocketAddr, in_flight: usize, requests: usize) {
        use elarian_transport::io::{FramingConfig, TcpTransport};
        use elarian_transport::{ClientSession, ClientSessionConfig, Payload, RejectAll};
        rt.block_on(async {
            let transport = TcpTransport::connect(addr, FramingConfig::default())
                .await
                .expect("connect");
            let session = ClientSession::connect(
                transport,
                ClientSessionConfig::default(),
                Arc::new(RejectAll),
            )
            .await
            .expect("setup");
            let remaining = Arc::new(AtomicUsize::new(requests));
            let body = Bytes::from(vec![7u8; PAYLOAD]);
            let mut tasks = Vec::new();
            for _ in 0..in_flight {
                let session = session.clone();
                let remaining = remaining.clone();
                let body = body.clone();
                tasks.push(tokio::spawn(async move {
                    while take_one(&remaining) {
                        let reply = session
                            .connection()
                            .request_response(Payload::new(body.clone()))
                            .await
                            .expect("request");
                        assert_eq!(reply.data.len(), PAYLOAD);
                    }
                }));
            }
            for task in tasks {
                task.await.expect("client task");
            }
            session.connection().close();
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Raw length-prefixed echo: no protocol at all, batched reads and writes. The floor.

struct Raw;

fn put_frame(out: &mut BytesMut, body: &[u8]) {
    out.put_uint(body.len() as u64, 3);
    out.put_slice(body);
}

/// Splits whole frames off the front of `buf`, returning how many and their bytes.
fn take_frames(buf: &mut BytesMut) -> (usize, Bytes) {
    let mut end = 0;
    let mut count = 0;
    while buf.len() >= end + 3 {
        let len = (usize::from(buf[end]) << 16)
            | (usize::from(buf[end + 1]) << 8)
            | usize::from(buf[end + 2]);
        if buf.len() < end + 3 + len {
            break;
        }
        end += 3 + len;
        count += 1;
    }
    (count, buf.split_to(end).freeze())
}

impl Contender for Raw {
    fn name(&self) -> &'static str {
        RAW
    }

    fn start_server(&self, rt: &Runtime) -> SocketAddr {
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    stream.set_nodelay(true).expect("nodelay");
                    tokio::spawn(async move {
                        let mut buf = BytesMut::with_capacity(64 * 1024);
                        loop {
                            match stream.read_buf(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            let (_, echo) = take_frames(&mut buf);
                            if stream.write_all(&echo).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            addr
        })
    }

    fn run(&self, rt: &Runtime, addr: SocketAddr, in_flight: usize, requests: usize) {
        rt.block_on(async {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let body = [7u8; PAYLOAD];
            let mut out = BytesMut::new();
            let first = in_flight.min(requests);
            for _ in 0..first {
                put_frame(&mut out, &body);
            }
            stream.write_all(&out).await.expect("write");
            let (mut sent, mut received) = (first, 0);
            let mut buf = BytesMut::with_capacity(64 * 1024);
            while received < requests {
                if stream.read_buf(&mut buf).await.expect("read") == 0 {
                    panic!("raw server closed early");
                }
                let (count, _) = take_frames(&mut buf);
                received += count;
                let more = count.min(requests - sent);
                if more > 0 {
                    out.clear();
                    for _ in 0..more {
                        put_frame(&mut out, &body);
                    }
                    stream.write_all(&out).await.expect("write");
                    sent += more;
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// rsocket_rust 0.7 over its own TCP transport.

struct RsocketRust;

struct RrEcho;

#[rsocket_rust::async_trait]
impl rsocket_rust::prelude::RSocket for RrEcho {
    async fn metadata_push(
        &self,
        _req: rsocket_rust::prelude::Payload,
    ) -> rsocket_rust::Result<()> {
        Ok(())
    }
    async fn fire_and_forget(
        &self,
        _req: rsocket_rust::prelude::Payload,
    ) -> rsocket_rust::Result<()> {
        Ok(())
    }
    async fn request_response(
        &self,
        req: rsocket_rust::prelude::Payload,
    ) -> rsocket_rust::Result<Option<rsocket_rust::prelude::Payload>> {
        Ok(Some(req))
    }
    fn request_stream(
        &self,
        req: rsocket_rust::prelude::Payload,
    ) -> rsocket_rust::prelude::Flux<rsocket_rust::Result<rsocket_rust::prelude::Payload>> {
        Box::pin(futures_util::stream::once(async move { Ok(req) }))
    }
    fn request_channel(
        &self,
        reqs: rsocket_rust::prelude::Flux<rsocket_rust::Result<rsocket_rust::prelude::Payload>>,
    ) -> rsocket_rust::prelude::Flux<rsocket_rust::Result<rsocket_rust::prelude::Payload>> {
        reqs
    }
}

impl Contender for RsocketRust {
    fn name(&self) -> &'static str {
        RSOCKET_RUST
    }

    fn start_server(&self, rt: &Runtime) -> SocketAddr {
        use rsocket_rust::prelude::*;
        use rsocket_rust_transport_tcp::TcpServerTransport;
        // rsocket_rust binds inside `serve`; take a free port first.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        rt.spawn(async move {
            let _ = RSocketFactory::receive()
                .transport(TcpServerTransport::from(addr))
                .acceptor(Box::new(|_setup, _socket| Ok(Box::new(RrEcho))))
                .serve()
                .await;
        });
        wait_for_port(addr);
        addr
    }

    fn run(&self, rt: &Runtime, addr: SocketAddr, in_flight: usize, requests: usize) {
        use rsocket_rust::prelude::*;
        use rsocket_rust_transport_tcp::TcpClientTransport;
        rt.block_on(async {
            let client = RSocketFactory::connect()
                .transport(TcpClientTransport::from(addr))
                .start()
                .await
                .expect("rsocket_rust connect");
            let remaining = Arc::new(AtomicUsize::new(requests));
            let body = Bytes::from(vec![7u8; PAYLOAD]);
            let mut tasks = Vec::new();
            for _ in 0..in_flight {
                let client = client.clone();
                let remaining = remaining.clone();
                let body = body.clone();
                tasks.push(tokio::spawn(async move {
                    while take_one(&remaining) {
                        let reply = client
                            .request_response(Payload::builder().set_data(body.clone()).build())
                            .await
                            .expect("rsocket_rust request");
                        assert_eq!(reply.and_then(|p| p.data().map(|d| d.len())), Some(PAYLOAD));
                    }
                }));
            }
            for task in tasks {
                task.await.expect("client task");
            }
        });
    }
}

fn take_one(remaining: &AtomicUsize) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "server did not start listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------

struct Figures {
    name: &'static str,
    rates: Vec<f64>,
}

impl Figures {
    fn median(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 5 };
    // `--only=<part of a name>` keeps one contender, for profiling.
    let only = std::env::args().find_map(|a| a.strip_prefix("--only=").map(str::to_owned));
    let all: [Box<dyn Contender>; 3] = [Box::new(Ours), Box::new(RsocketRust), Box::new(Raw)];
    let contenders: Vec<Box<dyn Contender>> = all
        .into_iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.name().contains(o)))
        .collect();

    let server_rt = server_runtime();
    let client_rt = client_runtime();
    let addrs: Vec<SocketAddr> = contenders
        .iter()
        .map(|c| c.start_server(&server_rt))
        .collect();

    println!(
        "request/response echo, {PAYLOAD}-byte payloads, loopback TCP, median of {rounds} round(s)"
    );
    // `--in-flight=<n>` runs one level only, for profiling.
    let levels: Vec<usize> = match std::env::args()
        .find_map(|a| a.strip_prefix("--in-flight=").and_then(|n| n.parse().ok()))
    {
        Some(n) => vec![n],
        None => vec![1, 64],
    };
    for in_flight in levels {
        let requests = match (in_flight, quick) {
            (1, true) => 2_000,
            (1, false) => 20_000,
            (_, true) => 20_000,
            (_, false) => 200_000,
        };
        let mut figures: Vec<Figures> = contenders
            .iter()
            .map(|c| Figures {
                name: c.name(),
                rates: Vec::new(),
            })
            .collect();
        for _ in 0..rounds {
            for ((contender, addr), figures) in contenders.iter().zip(&addrs).zip(&mut figures) {
                contender.run(&client_rt, *addr, in_flight, requests / 10); // warm-up
                let start = Instant::now();
                contender.run(&client_rt, *addr, in_flight, requests);
                figures
                    .rates
                    .push(requests as f64 / start.elapsed().as_secs_f64());
            }
        }
        println!("\n{in_flight} in flight ({requests} requests per round):");
        for f in &figures {
            println!("  {:<22} {:>10.0} req/s", f.name, f.median());
        }
        let rate = |name: &str| figures.iter().find(|f| f.name == name).map(Figures::median);
        if let (Some(ours), Some(rr), Some(raw)) = (rate(OURS), rate(RSOCKET_RUST), rate(RAW)) {
            println!(
                "  ours/rsocket_rust = {:.2}x, ours/raw = {:.0}%",
                ours / rr,
                100.0 * ours / raw
            );
        }
    }
    drop(client_rt);
    server_rt.shutdown_timeout(Duration::from_secs(1));
}
