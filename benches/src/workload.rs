//! The measured workloads: the SDK command mix, and a burst of due reminders answered by an app.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use elarian_emulator::EmulatorHandle;
use elarian_sdk::{CustomerNumber, DataValue, Elarian, Reminder};
use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::alloc_count::{self, Allocs};
use crate::clock::JumpClock;
use crate::usage::cpu_time;
use crate::{BenchError, Result, app_config, connect, connect_app};

/// How many operations took how long.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Operations completed.
    pub count: u64,
    /// Wall time they took.
    pub elapsed: Duration,
    /// CPU time this process (client and in-process emulator) used meanwhile, when known.
    pub cpu: Option<Duration>,
    /// Allocations on the client's threads meanwhile, when counted (see [`alloc_count`]).
    pub allocs: Option<Allocs>,
}

impl Rate {
    /// Measures from now: call [`Stopwatch::stop`] with the count when done.
    pub fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: cpu_time(),
            allocs: alloc_count::snapshot(),
        }
    }

    /// Operations per second.
    pub fn per_sec(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU microseconds per operation, when known.
    pub fn cpu_micros_per_op(&self) -> Option<f64> {
        self.cpu
            .map(|cpu| cpu.as_secs_f64() * 1e6 / (self.count.max(1) as f64))
    }

    /// Average cores busy in this process: below the machine's core count means the run waited
    /// (on latency, or on other load of the machine).
    pub fn cores_busy(&self) -> Option<f64> {
        self.cpu
            .map(|cpu| cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// Allocations and allocated bytes per operation on the client's threads, when counted.
    pub fn allocs_per_op(&self) -> Option<(f64, f64)> {
        let n = self.count.max(1) as f64;
        self.allocs
            .map(|a| (a.count as f64 / n, a.bytes as f64 / n))
    }

    /// `"12.3 µs CPU/op, 1.4 cores busy"` (and `", client 4.2 allocs/op (310 B)"` when
    /// allocations are counted), or an empty string when CPU time is unknown.
    pub fn cpu_summary(&self) -> String {
        let allocs = match self.allocs_per_op() {
            Some((count, bytes)) => format!(", client {count:.2} allocs/op ({bytes:.0} B)"),
            None => String::new(),
        };
        match (self.cpu_micros_per_op(), self.cores_busy()) {
            (Some(per_op), Some(busy)) => {
                format!("{per_op:.1} µs CPU/op, {busy:.2} cores busy{allocs}")
            }
            _ => allocs,
        }
    }
}

/// A running measurement, from [`Rate::start`].
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: Instant,
    cpu: Option<Duration>,
    allocs: Option<Allocs>,
}

impl Stopwatch {
    /// The rate of `count` operations since the start.
    pub fn stop(&self, count: u64) -> Rate {
        let elapsed = self.wall.elapsed();
        let cpu = match (self.cpu, cpu_time()) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        let allocs = match (self.allocs, alloc_count::snapshot()) {
            (Some(before), Some(after)) => Some(after.since(before)),
            _ => None,
        };
        Rate {
            count,
            elapsed,
            cpu,
            allocs,
        }
    }

    /// When the measurement started.
    pub fn started(&self) -> Instant {
        self.wall
    }
}

/// Runs `total` commands alternating `update_metadata` (even) and `get_state` (odd) from
/// `in_flight` concurrent workers, each on its own customer (`number_prefix` + 5 digits): the
/// mix `tools/js-bench/bench.js` runs through the JavaScript client.
pub async fn command_mix(
    app: &Elarian,
    number_prefix: &str,
    in_flight: usize,
    total: u64,
) -> Result<Rate> {
    let issued = Arc::new(AtomicU64::new(0));
    let stopwatch = Rate::start();
    let mut workers = Vec::with_capacity(in_flight);
    for worker in 0..in_flight {
        let customer = app.customer(CustomerNumber::cellular(format!(
            "{number_prefix}{worker:05}"
        )));
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<(), BenchError>(());
                }
                if n.is_multiple_of(2) {
                    let metadata =
                        HashMap::from([("visits".to_owned(), DataValue::string(n.to_string()))]);
                    customer
                        .update_metadata(metadata)
                        .await
                        .map_err(|e| BenchError::new(format!("update_metadata: {e}")))?;
                } else {
                    customer
                        .get_state()
                        .await
                        .map_err(|e| BenchError::new(format!("get_state: {e}")))?;
                }
            }
        }));
    }
    for worker in workers {
        worker
            .await
            .map_err(|e| BenchError::new(format!("worker task: {e}")))??;
    }
    Ok(stopwatch.stop(total))
}

/// Figures of one reminder burst.
#[derive(Debug, Clone, Copy)]
pub struct BurstReport {
    /// Setting the reminders (one `add_reminder` per customer, which also creates it).
    pub setup: Rate,
    /// From the instant the reminders came due to the last reply of the app's handler.
    pub delivery: Rate,
    /// From the instant they came due to the first notification reaching the handler.
    pub first_notification: Duration,
}

/// What the reminder handler has seen.
struct Seen {
    count: AtomicU64,
    first: std::sync::Mutex<Option<Instant>>,
    changed: Notify,
}

/// Gives `customers` customers one reminder each, all due within the same minute, then makes
/// that minute arrive at once (the emulator runs on `clock`) and measures how fast the
/// emulator delivers them to one connected app whose `on_reminder` handler replies to each.
///
/// Setup goes over the wire through the SDK with `setup_in_flight` commands pipelined. The app
/// runs up to `handlers` notification handlers at once (the SDK's
/// `max_concurrent_notifications`). `progress` prints a line every so often on stderr.
pub async fn reminder_burst(
    emulator: &EmulatorHandle,
    clock: &JumpClock,
    customers: u64,
    setup_in_flight: usize,
    handlers: usize,
    progress: bool,
) -> Result<BurstReport> {
    let seen = Arc::new(Seen {
        count: AtomicU64::new(0),
        first: std::sync::Mutex::new(None),
        changed: Notify::new(),
    });
    let endpoint = emulator
        .endpoint()
        .ok_or_else(|| BenchError::new("the emulator has no TCP listener"))?;
    let receiver = connect(
        app_config(endpoint)
            .allow_notifications(true)
            .max_concurrent_notifications(handlers.max(1)),
    )
    .await?;
    let handler_seen = seen.clone();
    receiver.on_reminder(move |_notification, _customer, app_data, responder| {
        let seen = handler_seen.clone();
        async move {
            responder.reply(None, app_data);
            {
                let mut first = seen.first.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(Instant::now);
            }
            seen.count.fetch_add(1, Ordering::Relaxed);
            seen.changed.notify_one();
        }
    });
    // A second, simplex connection sets the reminders, as a separate back office would.
    let setter = connect_app(emulator, false).await?;

    // Far enough ahead that none comes due during setup, however long it takes.
    let minute = SystemTime::now() + Duration::from_secs(3600);
    let stopwatch = Rate::start();
    let mut done = 0u64;
    let mut last_report = Instant::now();
    let mut results = futures_util::stream::iter(0..customers)
        .map(|i| {
            let customer = setter.customer(CustomerNumber::cellular(format!("+2548{i:08}")));
            let reminder = Reminder::new("bench", minute + Duration::from_secs(i % 60))
                .with_payload("benchmark");
            async move { customer.add_reminder(reminder).await }
        })
        .buffer_unordered(setup_in_flight.max(1));
    while let Some(result) = results.next().await {
        result.map_err(|e| BenchError::new(format!("add_reminder: {e}")))?;
        done += 1;
        if progress && last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "  setup: {done}/{customers} reminders ({:.0}/s)",
                done as f64 / stopwatch.started().elapsed().as_secs_f64()
            );
        }
    }
    drop(results);
    let setup = stopwatch.stop(customers);
    if seen.count.load(Ordering::Relaxed) != 0 {
        return Err(BenchError::new(
            "reminders fired during setup: the emulator is not on the benchmark's clock",
        ));
    }

    // The whole minute arrives at once.
    clock.jump(Duration::from_secs(3600 + 61));
    let stopwatch = Rate::start();
    let due = stopwatch.started();
    // The emulator's scheduler sleeps up to a second when nothing is due; a reminder earlier
    // than every pending one wakes it, as any new reminder would in production. It is counted.
    // (A second ahead of the system clock for the SDK, so already due on the emulator's.)
    let wake_at = SystemTime::now() + Duration::from_secs(1);
    setter
        .customer(CustomerNumber::cellular("+254899999999"))
        .add_reminder(Reminder::new("bench", wake_at).with_payload("benchmark"))
        .await
        .map_err(|e| BenchError::new(format!("add_reminder (wake-up): {e}")))?;
    let expected = customers + 1;

    // A stall (nothing delivered for this long) fails the run instead of hanging it.
    let stall = Duration::from_secs(60);
    let mut last_count = 0;
    let mut last_change = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let count = seen.count.load(Ordering::Relaxed);
        if count >= expected {
            break;
        }
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
        } else if last_change.elapsed() > stall {
            return Err(BenchError::new(format!(
                "delivery stalled at {count}/{expected} notifications"
            )));
        }
        if progress && last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "  delivery: {count}/{expected} notifications ({:.0}/s)",
                count as f64 / due.elapsed().as_secs_f64()
            );
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), seen.changed.notified()).await;
    }
    let delivery = stopwatch.stop(expected);
    let first_notification = seen
        .first
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map(|first| first.saturating_duration_since(due))
        .unwrap_or_default();
    setter.disconnect().await;
    receiver.disconnect().await;
    Ok(BurstReport {
        setup,
        delivery,
        first_notification,
    })
}
