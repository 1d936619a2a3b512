//! Request/response echo over loopback TCP with 128-byte payloads, 1 and 64 requests in flight,
//! for this engine, for rsocket_rust 0.7 and for a raw length-prefixed echo (the floor).
//!
//! ```text
//! cargo bench -p elarian-transport --bench req_resp            # full run
//! cargo bench -p elarian-transport --bench req_resp -- --quick # smoke run
//! cargo bench -p elarian-transport --bench req_resp -- --only=elarian --in-flight=64
//! cargo bench -p elarian-transport --bench req_resp -- --runs=7 --check  # fail below a floor
//! ```
//!
//! The server runs on its own single-worker runtime in its own thread, the client on a
//! current-thread runtime, so the two sides compete for the CPU as two processes would. The
//! implementations take turns over several runs; every ratio is computed within one run (so
//! both sides of it saw the same machine) and reported as min, median and max over the runs.
//! Beside requests per second, each contender's CPU time per request (both peers) and cores
//! busy are reported: the work per request travels between machines, the rate much less.

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
    ) -> elarian_transport::BoxFuture<
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
// CPU time of this process. Both peers run in it, so a run's CPU time is the work of both.

/// CPU time used so far by this process's live threads, in nanoseconds: the sum of the first
/// field of each `/proc/self/task/*/schedstat` (nanosecond precision, where `/proc/self/stat`
/// counts 10 ms ticks). The runtimes' threads live for the whole bench, so no thread's time is
/// lost between two readings. `None` off Linux.
fn cpu_nanos() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let mut path = task.ok()?.path();
        path.push("schedstat");
        // A thread may end between the listing and the read: it then adds nothing.
        if let Ok(text) = std::fs::read_to_string(&path) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// One timed run of one contender.
#[derive(Clone, Copy)]
struct Sample {
    /// Requests per second.
    rate: f64,
    /// CPU time per request, both peers, in microseconds.
    cpu_micros: Option<f64>,
    /// CPU time over wall time: cores kept busy by both peers.
    cores_busy: Option<f64>,
}

fn timed(run: impl FnOnce(), requests: usize) -> Sample {
    let cpu_before = cpu_nanos();
    let start = Instant::now();
    run();
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu_before, cpu_nanos()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before) as f64 / 1e9),
        _ => None,
    };
    Sample {
        rate: requests as f64 / wall,
        cpu_micros: cpu.map(|c| c * 1e6 / requests as f64),
        cores_busy: cpu.map(|c| c / wall),
    }
}

/// Minimum, median (the upper one of an even count) and maximum.
fn spread(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    Some((*v.first()?, v[v.len() / 2], *v.last()?))
}

/// A ratio computed within one round.
type RatioOf = fn(&Round) -> Option<f64>;

/// A ratio the project commits to, checked in every run by `--check`.
struct Floor {
    in_flight: usize,
    what: &'static str,
    at_least: f64,
    ratio: RatioOf,
}

/// One round: a sample of every contender, measured in turn.
struct Round(Vec<(&'static str, Sample)>);

impl Round {
    fn get(&self, name: &str) -> Option<Sample> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }
}

const FLOORS: [Floor; 2] = [
    Floor {
        in_flight: 64,
        what: "requests/s, ours / rsocket_rust",
        at_least: 4.0,
        ratio: |r| Some(r.get(OURS)?.rate / r.get(RSOCKET_RUST)?.rate),
    },
    Floor {
        in_flight: 64,
        what: "CPU per request, rsocket_rust / ours",
        at_least: 4.0,
        ratio: |r| Some(r.get(RSOCKET_RUST)?.cpu_micros? / r.get(OURS)?.cpu_micros?),
    },
];

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let quick = flag("--quick");
    // `--check` fails the run when a ratio of FLOORS falls below its floor in any run.
    let check = flag("--check");
    // `--runs=N` (or the older `--rounds=N`): how many times the whole comparison is repeated.
    let runs: usize = value("--runs")
        .or_else(|| value("--rounds"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 3 } else { 5 })
        .max(1);
    // `--only=<part of a name>` keeps one contender, for profiling.
    let only = value("--only");
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
        "request/response echo, {PAYLOAD}-byte payloads, loopback TCP, {runs} run(s) of every \
         contender in turn; CPU is both peers' (one process), per request"
    );
    // `--in-flight=<n>` runs one level only, for profiling.
    let levels: Vec<usize> = match value("--in-flight").and_then(|n| n.parse().ok()) {
        Some(n) => vec![n],
        None => vec![1, 64],
    };
    let mut failed = Vec::new();
    for in_flight in levels {
        let requests = match (in_flight, quick) {
            (1, true) => 2_000,
            (1, false) => 20_000,
            (_, true) => 20_000,
            (_, false) => 200_000,
        };
        let mut rounds = Vec::new();
        for _ in 0..runs {
            let mut round = Round(Vec::new());
            for (contender, addr) in contenders.iter().zip(&addrs) {
                contender.run(&client_rt, *addr, in_flight, requests / 10); // warm-up
                let sample = timed(
                    || contender.run(&client_rt, *addr, in_flight, requests),
                    requests,
                );
                round.0.push((contender.name(), sample));
            }
            rounds.push(round);
        }
        println!("\n{in_flight} in flight ({requests} requests per run):");
        println!(
            "  {:<22} {:>10} {:>21} {:>13} {:>11}",
            "contender", "req/s", "min - max", "CPU µs/req", "cores busy"
        );
        for contender in &contenders {
            let samples: Vec<Sample> = rounds
                .iter()
                .filter_map(|r| r.get(contender.name()))
                .collect();
            let Some((min, median, max)) = spread(samples.iter().map(|s| s.rate)) else {
                continue;
            };
            let cpu = spread(samples.iter().filter_map(|s| s.cpu_micros))
                .map_or("?".to_owned(), |(_, m, _)| format!("{m:.2}"));
            let busy = spread(samples.iter().filter_map(|s| s.cores_busy))
                .map_or("?".to_owned(), |(_, m, _)| format!("{m:.2}"));
            println!(
                "  {:<22} {:>10.0} {:>21} {:>13} {:>11}",
                contender.name(),
                median,
                format!("{min:.0} - {max:.0}"),
                cpu,
                busy
            );
        }
        let ratios: [(&str, RatioOf); 3] = [
            ("req/s ours / rsocket_rust", |r| {
                Some(r.get(OURS)?.rate / r.get(RSOCKET_RUST)?.rate)
            }),
            ("req/s ours / raw", |r| {
                Some(r.get(OURS)?.rate / r.get(RAW)?.rate)
            }),
            ("CPU/req rsocket_rust / ours", |r| {
                Some(r.get(RSOCKET_RUST)?.cpu_micros? / r.get(OURS)?.cpu_micros?)
            }),
        ];
        for (what, ratio) in ratios {
            if let Some((min, median, max)) = spread(rounds.iter().filter_map(ratio)) {
                println!("  {what:<28} min {min:.2}  median {median:.2}  max {max:.2}");
            }
        }
        for floor in FLOORS.iter().filter(|f| f.in_flight == in_flight) {
            let Some((min, _, _)) = spread(rounds.iter().filter_map(floor.ratio)) else {
                continue;
            };
            let verdict = if min >= floor.at_least {
                "holds"
            } else {
                "BELOW"
            };
            println!(
                "  floor: {} >= {:.1} in every run: {verdict} (lowest {min:.2})",
                floor.what, floor.at_least
            );
            if min < floor.at_least {
                failed.push(format!(
                    "{in_flight} in flight: {} {min:.2} < {:.1}",
                    floor.what, floor.at_least
                ));
            }
        }
    }
    drop(client_rt);
    server_rt.shutdown_timeout(Duration::from_secs(1));
    if check && !failed.is_empty() {
        eprintln!("check failed: {}", failed.join("; "));
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
