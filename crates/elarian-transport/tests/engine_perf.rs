//! Throughput probes of the engine over in-memory transports (ignored: run with
//! `cargo test --release -p elarian-transport --test engine_perf -- --ignored --nocapture`).
//! The real benchmarks over TCP, against rsocket_rust and a raw echo, live with the io layer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elarian_transport::BoxFuture;
use elarian_transport::io::memory;
use elarian_transport::io::{FrameReader, FrameTransport, FrameWriter};
use elarian_transport::{
    ClientSession, ClientSessionConfig, Payload, RejectAll, RequestHandler, Server, ServerConfig,
    StreamError,
};

struct Echo;
impl RequestHandler for Echo {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        Box::pin(std::future::ready(Ok(payload)))
    }
}

const RUN: Duration = Duration::from_secs(2);

async fn engine(in_flight: usize) -> f64 {
    let server = Server::new(ServerConfig::default());
    let (client_end, server_end) = memory::pair(1024);
    server.serve_transport(server_end);
    let accept = tokio::spawn({
        let server = server.clone();
        async move { server.accept().await.unwrap().accept(Arc::new(Echo)) }
    });
    let client = ClientSession::connect(
        client_end,
        ClientSessionConfig::default(),
        Arc::new(RejectAll),
    )
    .await
    .unwrap();
    let _server_conn = accept.await.unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let payload = Payload::new(vec![0u8; 64]);
            while start.elapsed() < RUN {
                client
                    .connection()
                    .request_response(payload.clone())
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn raw_echo(in_flight: usize) -> f64 {
    let (a, b) = memory::pair(1024);
    let (mut rb, mut wb) = b.split();
    tokio::spawn(async move {
        while let Ok(Some(f)) = rb.read_frame().await {
            if wb.write_frame(f).await.is_err() {
                break;
            }
        }
    });
    let (mut ra, mut wa) = a.split();
    let start = Instant::now();
    let frame = bytes::Bytes::from(vec![0u8; 70]);
    for _ in 0..in_flight {
        wa.write_frame(frame.clone()).await.unwrap();
    }
    let mut n = 0u64;
    while start.elapsed() < RUN {
        ra.read_frame().await.unwrap().unwrap();
        wa.write_frame(frame.clone()).await.unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput probe; run explicitly in release mode"]
async fn throughput_over_memory() {
    for in_flight in [1, 64] {
        let raw = raw_echo(in_flight).await;
        let eng = engine(in_flight).await;
        println!(
            "in flight {in_flight:>3}: engine {eng:>10.0} req/s, raw echo {raw:>10.0} frames/s ({:.0}%)",
            100.0 * eng / raw
        );
    }
}
