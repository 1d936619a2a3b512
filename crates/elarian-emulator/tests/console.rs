//! The web console in a real browser: headless Chromium driven over the Chrome DevTools
//! Protocol (a WebSocket, with the tokio-tungstenite the workspace already has).
//!
//! One browser serves the whole file (one test function walks every scenario, so Chromium starts
//! once). Without a Chromium binary the test prints SKIPPED loudly and passes; CI installs
//! Debian's `chromium` first (`.ci/run`). Screenshots of the main pages go to the target dir,
//! and to `docs/images/` when `UPDATE_SCREENSHOTS=1`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use elarian_emulator::config::{TEST_API_KEY, TEST_APP_ID, TEST_ORG_ID, TEST_PURSE_ID};
use elarian_emulator::{Emulator, EmulatorHandle};
use elarian_sdk::{
    Cash, ClientConfig, CustomerNumber, Elarian, GetDigits, Message, MessagingChannelNumber,
    PaymentChannelNumber, PaymentCounterParty, Prompt, Say, SecondaryId, Tag, UssdMenu,
    VoiceAction,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Bound on every wait, so a broken console fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(20);

fn find_chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A headless Chromium, killed on drop.
struct Browser {
    child: tokio::process::Child,
    port: u16,
    _profile: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    async fn launch(binary: &PathBuf) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "elarian-console-test-{}-{}",
            std::process::id(),
            fastrand_suffix()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let mut child = tokio::process::Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let url = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited without a DevTools URL");
        })
        .await
        .expect("chromium prints its DevTools URL in time");
        // Keeps draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let port = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .and_then(|h| h.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("a port in the DevTools URL");
        Browser {
            child,
            port,
            _profile: TempDir(profile),
        }
    }

    /// Opens a new tab and connects to it.
    async fn tab(&self) -> Tab {
        let text = http(
            ("127.0.0.1", self.port),
            "PUT /json/new?about:blank HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let target: Value = serde_json::from_str(body).expect("a target description");
        // Built from the id: the advertised URL may name `localhost`, which can resolve to ::1.
        let ws_url = format!(
            "ws://127.0.0.1:{}/devtools/page/{}",
            self.port,
            target["id"].as_str().expect("a target id")
        );
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(ws_url))
            .await
            .unwrap()
            .expect("connects to the tab");
        let mut tab = Tab { ws, next: 0 };
        tab.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        tab.call("Page.enable", json!({})).await;
        tab
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn fastrand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// One tab over CDP.
struct Tab {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

impl Tab {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let request = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(WsMessage::text(request)).await.unwrap();
        tokio::time::timeout(WAIT, async {
            loop {
                let msg = self.ws.next().await.expect("tab open").unwrap();
                let WsMessage::Text(text) = msg else { continue };
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["id"].as_u64() == Some(id) {
                    if let Some(e) = v.get("error") {
                        panic!("{method} failed: {e}");
                    }
                    return v["result"].clone();
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method} answered in time"))
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for("document.readyState === 'complete' && !!document.querySelector('main')")
            .await;
    }

    /// Waits until `expression` is truthy (one that throws, e.g. on an element not rendered yet,
    /// counts as not yet).
    async fn wait_for(&mut self, expression: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let v = self
                .eval(&format!(
                    "(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"
                ))
                .await;
            if v == json!(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let body = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!("timed out waiting for {expression}; page text:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&mut self, selector: &str) -> String {
        let v = self
            .eval(&format!(
                "(document.querySelector({}) || {{}}).textContent || ''",
                json!(selector)
            ))
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    async fn screenshot(&mut self, name: &str) {
        // Lets the last render and the live badge settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64_decode(r["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/images");
            std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
        }
    }
}

/// An amount as the console shows it: `12,345.00`.
fn grouped(amount: f64) -> String {
    let fixed = format!("{amount:.2}");
    let (int, frac) = fixed.split_once('.').unwrap();
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}.{frac}")
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// One HTTP/1.1 exchange: reads the head, then the body by its Content-Length (servers may keep
/// the connection open despite `Connection: close`).
async fn http(addr: impl tokio::net::ToSocketAddrs, request: &str) -> String {
    tokio::time::timeout(WAIT, async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                });
                if length.is_some_and(|len| body.len() >= len) || n == 0 {
                    return text;
                }
            }
            if n == 0 {
                return text;
            }
        }
    })
    .await
    .expect("an HTTP answer in time")
}

/// A POST to the console's JSON API from outside the browser (another client of the emulator).
async fn post(addr: SocketAddr, path: &str, body: Value) -> Value {
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let text = http(addr, &request).await;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON reply, got {text}"))
}

const CAMPAIGNS_KEY: &str = "campaigns-test-key";

/// A campaigns HTTP API answering with fixed data in the campaigns crate's shapes (the real one
/// is exercised by `crates/elarian-campaigns/tests/console.rs`; this crate cannot depend on it).
async fn campaigns_api() -> SocketAddr {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    async fn answer(headers: HeaderMap, body: Value) -> axum::response::Response {
        let authorized = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {CAMPAIGNS_KEY}"));
        if !authorized {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": {"code": "unauthorized", "message": "wrong key"}})),
            )
                .into_response();
        }
        let total = body.as_array().map(|a| a.len());
        let mut response = axum::Json(body).into_response();
        if let Some(total) = total {
            response.headers_mut().insert("x-total-count", total.into());
        }
        response
    }
    let messages = json!([
        {"id": 1, "name": "Loan reminder, December", "campaign_id": "dec-2026", "sendings_status": "scheduled", "sendings_count": 2, "updated_at": "2026-12-02T09:00:00.000Z", "channels": [{"type": "sms"}]},
        {"id": 2, "name": "Welcome offer", "campaign_id": null, "sendings_status": "draft", "sendings_count": 1, "updated_at": "2026-12-02T10:30:00.000Z", "channels": [{"type": "whatsapp"}]},
    ]);
    let router = axum::Router::new()
        .route(
            "/messages",
            axum::routing::get(move |h: HeaderMap| answer(h, messages.clone())),
        )
        .route(
            "/messages/{id}/sendings",
            axum::routing::get(|h: HeaderMap, axum::extract::Path(id): axum::extract::Path<u64>| async move {
                let list = if id == 1 {
                    json!([
                        {"id": 1, "status": "transmitted", "scheduled_at": "2026-12-01T09:00:00.000Z"},
                        {"id": 2, "status": "transmitting", "scheduled_at": "2026-12-02T09:00:00.000Z"},
                    ])
                } else {
                    json!([{"id": 3, "status": "draft", "scheduled_at": null}])
                };
                answer(h, list).await
            }),
        )
        .route(
            "/messages/{id}/sendings/{sid}/progress",
            axum::routing::get(|h: HeaderMap, axum::extract::Path((_, sid)): axum::extract::Path<(u64, u64)>| async move {
                let progress = match sid {
                    1 => json!({"sending_id": 1, "recipients": 1200, "sent": 1180, "delivered": 1150, "failed": 8, "failed_after_send": 0, "unknown": 0, "not_sent": 0, "skipped": {"missing_field": 12}}),
                    2 => json!({"sending_id": 2, "recipients": 5000, "sent": 2100, "delivered": 1900, "failed": 3, "failed_after_send": 0, "unknown": 0, "not_sent": 0, "skipped": {}}),
                    _ => json!({"sending_id": sid, "recipients": 300, "sent": 0, "delivered": 0, "failed": 0, "skipped": {}}),
                };
                answer(h, progress).await
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

async fn start() -> EmulatorHandle {
    Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .console(([127, 0, 0, 1], 0))
        .start()
        .await
        .expect("the emulator starts with its console")
}

/// The app under test: a two-screen USSD menu, written with the SDK.
async fn app(emulator: &EmulatorHandle) -> Elarian {
    let config = ClientConfig::builder()
        .org_id(TEST_ORG_ID)
        .app_id(TEST_APP_ID)
        .api_key(TEST_API_KEY)
        .endpoint(emulator.endpoint().unwrap())
        .command_timeout(WAIT)
        .initial_connect_timeout(WAIT);
    let app = Elarian::new(config).unwrap();
    app.on_ussd_session(|notification, _customer, app_data, responder| async move {
        let input = notification.input.text.clone().unwrap_or_default();
        let menu = match input.trim() {
            "" => UssdMenu::new("Welcome to Pesa Loans\n1. Balance\n2. Exit"),
            "1" => UssdMenu::terminal("Your loan balance is KES 1,500"),
            _ => UssdMenu::terminal("Goodbye"),
        };
        responder.reply(Some(menu), app_data);
    });
    app.on_voice_call(|notification, _customer, app_data, responder| async move {
        let actions = match notification.voice.dtmf_digits {
            Some(digits) => vec![VoiceAction::Say(Say::new(format!(
                "You pressed {digits}. Goodbye"
            )))],
            None => vec![
                VoiceAction::Say(Say::new("Welcome to Pesa Loans")),
                VoiceAction::GetDigits(GetDigits {
                    num_digits: Some(1),
                    prompt: Some(Prompt::Say(Say::new("Press 1 to pay"))),
                    ..Default::default()
                }),
            ],
        };
        responder.reply(Some(actions), app_data);
    });
    tokio::time::timeout(WAIT, app.connect())
        .await
        .unwrap()
        .expect("the app connects");
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_browser() {
    tokio::time::timeout(Duration::from_secs(180), walk_the_console())
        .await
        .expect("the browser scenarios finish within three minutes");
}

async fn walk_the_console() {
    let Some(chromium) = find_chromium() else {
        eprintln!(
            "\n=== SKIPPED: console browser tests: no chromium found (install Debian's `chromium`, or set CHROMIUM=/path/to/chrome) ===\n"
        );
        return;
    };
    let campaigns = campaigns_api().await;
    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .console(([127, 0, 0, 1], 0))
        .console_campaigns(format!("http://{campaigns}/"), CAMPAIGNS_KEY)
        .start()
        .await
        .expect("the emulator starts with its console");
    let console = emulator.console_addr().unwrap();
    let url = emulator.console_url().unwrap();
    let app = app(&emulator).await;
    let browser = Browser::launch(&chromium).await;
    let mut tab = browser.tab().await;

    // Customers the list shows and filters: by number, tag and secondary id.
    let numbers = ["+254700100001", "+254700100002", "+254700100003"];
    for (i, n) in numbers.iter().enumerate() {
        let c = app.customer(CustomerNumber::cellular(*n));
        c.update_tags(vec![Tag::new(
            "tier",
            if i == 0 { "gold" } else { "silver" },
        )])
        .await
        .unwrap();
        c.update_secondary_ids(vec![SecondaryId::new(
            "account",
            format!("ACC-{}", 500 + i),
        )])
        .await
        .unwrap();
    }

    // 1. The customer list filters.
    tab.goto(&url).await;
    tab.wait_for("document.querySelectorAll('#customers tr[data-id]').length === 3")
        .await;
    tab.wait_for("document.querySelector('#live').textContent === 'live'")
        .await;
    tab.screenshot("console-customers").await;
    tab.eval("window.__notReloaded = true").await;
    tab.eval(
        "(() => { const s = document.querySelector('#search'); s.value = 'gold'; s.dispatchEvent(new Event('input')); })()",
    )
    .await;
    tab.wait_for("document.querySelectorAll('#customers tr[data-id]').length === 1")
        .await;
    assert!(tab.text("#customers").await.contains(numbers[0]));
    tab.eval(
        "(() => { const s = document.querySelector('#search'); s.value = 'ACC-502'; s.dispatchEvent(new Event('input')); })()",
    )
    .await;
    tab.wait_for(&format!(
        "document.querySelector('#customers').textContent.includes('{}') && document.querySelectorAll('#customers tr[data-id]').length === 1",
        numbers[2]
    ))
    .await;
    tab.eval(
        "(() => { const s = document.querySelector('#search'); s.value = 'nobody-has-this'; s.dispatchEvent(new Event('input')); })()",
    )
    .await;
    tab.wait_for("document.querySelectorAll('#customers tr[data-id]').length === 0")
        .await;
    // Filtered in place, with the filter in the address for a reload or a link.
    assert_eq!(tab.eval("window.__notReloaded === true").await, json!(true));
    assert_eq!(
        tab.eval("location.search").await,
        json!("?q=nobody-has-this")
    );
    // The same list, rendered by the server for a first load of that address.
    tab.goto(&format!("{url}?q=gold")).await;
    tab.wait_for("document.querySelectorAll('#customers tr[data-id]').length === 1")
        .await;
    assert!(tab.text("#customers").await.contains(numbers[0]));

    // 2. A simulated SMS appears in the thread without a reload.
    let customer_id = app
        .customer(CustomerNumber::cellular(numbers[0]))
        .get_state()
        .await
        .unwrap()
        .customer_id;
    tab.goto(&format!("{url}customers/{customer_id}")).await;
    tab.wait_for("document.querySelector('#title').textContent.includes('el_cst_')")
        .await;
    tab.wait_for("document.querySelector('#live').textContent === 'live'")
        .await;
    tab.eval("window.__notReloaded = true").await;
    let reply = post(
        console,
        "/api/simulate/message",
        json!({"customer_number": numbers[0], "channel": "sms", "channel_number": "83044", "text": "Hello from a simulated phone"}),
    )
    .await;
    assert_eq!(reply["status"], json!(true), "{reply}");
    tab.wait_for(
        "[...document.querySelectorAll('.thread .bubble.in')].some(b => b.textContent === 'Hello from a simulated phone')",
    )
    .await;
    assert_eq!(tab.eval("window.__notReloaded === true").await, json!(true));

    // 3. A USSD menu walked from the page against the running app.
    tab.eval("document.querySelector('[data-tab=ussd]').click()")
        .await;
    tab.eval("document.querySelector('#ussd [name=dial]').click()")
        .await;
    tab.wait_for(
        "document.querySelector('#ussd-screen').textContent.includes('Welcome to Pesa Loans')",
    )
    .await;
    tab.eval(
        "(() => { const f = document.querySelector('#ussd'); f.text.value = '1'; f.send.click(); })()",
    )
    .await;
    tab.wait_for("document.querySelector('#ussd-screen').textContent.includes('Your loan balance is KES 1,500')")
        .await;
    // The session shows in the USSD thread step by step, and as a completed session.
    tab.wait_for(
        "(() => { const t = document.querySelector('.thread[data-channel=ussd]'); return t && t.textContent.includes('Welcome to Pesa Loans') && t.textContent.includes('Your loan balance'); })()",
    )
    .await;
    tab.wait_for("document.querySelector('#sessions').textContent.includes('ussd')")
        .await;
    tab.screenshot("console-customer").await;

    // 4. A payment from the page changes the balance shown.
    let (before, _) = emulator
        .engine()
        .purse_balance(TEST_ORG_ID, TEST_PURSE_ID)
        .unwrap();
    tab.eval("document.querySelector('[data-tab=pay]').click()")
        .await;
    tab.eval(
        "(() => { const f = document.querySelector('#pay'); f.amount.value = '250'; f.querySelector('button').click(); })()",
    )
    .await;
    tab.wait_for("document.querySelector('#phone-result').textContent === 'Payment sent.'")
        .await;
    // The customer's transactions update live …
    tab.wait_for("document.querySelector('#transactions').textContent.includes('250.00')")
        .await;
    let (after, _) = emulator
        .engine()
        .purse_balance(TEST_ORG_ID, TEST_PURSE_ID)
        .unwrap();
    assert_eq!(after, before + 250.0);
    // … and the payments page shows the new purse balance.
    tab.goto(&format!("{url}payments")).await;
    let shown = format!("KES {}", grouped(after));
    tab.wait_for(&format!(
        "document.querySelector('[data-purse] .big').textContent === {}",
        json!(shown)
    ))
    .await;
    tab.wait_for("document.querySelector('#transactions tr[data-transaction]')")
        .await;
    tab.screenshot("console-payments").await;

    // 5. The app calls the customer: the call rings on the page, is answered, digits pressed.
    tab.goto(&format!("{url}customers/{customer_id}")).await;
    tab.wait_for("document.querySelector('#live').textContent === 'live' && document.querySelector('#title').textContent.includes('el_cst_')")
        .await;
    tab.eval("window.__notReloaded = true").await;
    tab.eval("document.querySelector('[data-tab=voice]').click()")
        .await;
    let customer = app.customer(CustomerNumber::cellular(numbers[0]));
    let placed = customer
        .send_message(
            MessagingChannelNumber::voice("+254711621711"),
            Message::voice(vec![VoiceAction::Say(Say::new("Hello"))]),
        )
        .await
        .unwrap();
    assert!(placed.status.is_success(), "{placed:?}");
    tab.wait_for("document.querySelector('#call').textContent.includes('Incoming call')")
        .await;
    tab.eval("document.querySelector('#voice [name=answer]').click()")
        .await;
    tab.wait_for("document.querySelector('#voice-screen').textContent.includes('Press 1 to pay')")
        .await;
    tab.eval(
        "(() => { const f = document.querySelector('#voice'); f.digits.value = '1'; f.press.click(); })()",
    )
    .await;
    tab.wait_for(
        "document.querySelector('#voice-screen').textContent.includes('You pressed 1. Goodbye')",
    )
    .await;
    tab.wait_for("document.querySelector('.thread[data-channel=voice]') && document.querySelector('.thread[data-channel=voice]').textContent.includes('pressed 1')")
        .await;

    // 6. A checkout prompt from the app shows on the page and is approved there.
    let checkout = app
        .initiate_payment(
            PaymentCounterParty::Customer {
                customer_number: CustomerNumber::cellular(numbers[0]),
                channel_number: PaymentChannelNumber::cellular("83044"),
            },
            PaymentCounterParty::Purse {
                purse_id: TEST_PURSE_ID.into(),
            },
            Cash::new("KES", 120.0),
        )
        .await
        .unwrap();
    let txn = checkout.transaction_id.clone().expect("a transaction id");
    tab.eval("document.querySelector('[data-tab=pay]').click()")
        .await;
    tab.wait_for(&format!(
        "document.querySelector('#prompts [data-approve=\"{txn}\"]')"
    ))
    .await;
    tab.screenshot("console-phone").await;
    tab.eval(&format!(
        "document.querySelector('#prompts [data-approve=\"{txn}\"]').click()"
    ))
    .await;
    tab.wait_for(&format!(
        "(() => {{ const r = document.querySelector('#transactions tr[data-transaction=\"{txn}\"]'); return r && r.textContent.includes('success'); }})()"
    ))
    .await;
    tab.wait_for("document.querySelectorAll('#prompts .prompt').length === 0")
        .await;
    assert_eq!(tab.eval("window.__notReloaded === true").await, json!(true));

    // 7. App activity: the SDK app's connection and the notifications with their replies.
    tab.goto(&format!("{url}activity")).await;
    tab.wait_for("document.querySelector('#connections').textContent.includes('el_app_WZFQdt')")
        .await;
    post(
        console,
        "/api/simulate/ussd",
        json!({"customer_number": numbers[1], "code": "*83044#", "text": ""}),
    )
    .await;
    // The new notification arrives live: a second menu among the replies.
    tab.wait_for("[...document.querySelectorAll('#notifications tr')].filter(r => r.textContent.includes('receivedMessage') && r.textContent.includes('Welcome to Pesa Loans')).length >= 2")
        .await;
    tab.screenshot("console-activity").await;

    // 8. Campaigns, read by the server from a campaigns HTTP API.
    tab.goto(&format!("{url}campaigns")).await;
    tab.wait_for("document.querySelectorAll('.campaign').length === 2")
        .await;
    assert!(
        tab.text(".campaign[data-message='1']")
            .await
            .contains("1200/1200")
    );
    assert!(tab.text("#campaigns").await.contains("Welcome offer"));
    tab.screenshot("console-campaigns").await;

    drop(tab);
    drop(browser);
    app.disconnect().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_non_loopback_console_needs_an_access_token() {
    let refused = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .console(([0, 0, 0, 0], 0))
        .start()
        .await;
    let err = refused.expect_err("refused without a token");
    assert!(err.to_string().contains("access token"), "{err}");

    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .console(([0, 0, 0, 0], 0))
        .console_access_token("s3cret")
        .start()
        .await
        .expect("starts with a token");
    let port = emulator.console_addr().unwrap().port();
    let get = |auth: &'static str| async move {
        let req = format!(
            "GET /api/overview HTTP/1.1\r\nHost: 10.1.2.3\r\n{auth}Connection: close\r\n\r\n"
        );
        http(("127.0.0.1", port), &req).await
    };
    assert!(get("").await.starts_with("HTTP/1.1 401"));
    assert!(
        get("Authorization: Bearer nope\r\n")
            .await
            .starts_with("HTTP/1.1 401")
    );
    assert!(
        get("Authorization: Bearer s3cret\r\n")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        get("Cookie: elarian_console_token=s3cret\r\n")
            .await
            .starts_with("HTTP/1.1 200")
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_api_answers_bad_input_with_an_error_not_a_panic() {
    let emulator = start().await;
    let console = emulator.console_addr().unwrap();
    let cases = [
        (
            "/api/simulate/message",
            json!({"customer_number": "+254700200001", "channel": "pigeon", "channel_number": "83044", "text": "hi"}),
            "unknown channel",
        ),
        (
            "/api/simulate/payment",
            json!({"customer_number": "+254700200001", "channel_number": "83044", "currency": "KES", "amount": -5}),
            "positive",
        ),
        (
            "/api/simulate/voice",
            json!({"customer_number": "+254700200001", "channel_number": "+254711621711", "action": "digits", "digits": "12a"}),
            "digits",
        ),
        (
            "/api/simulate/payments/el_txn_nope",
            json!({"status": "maybe"}),
            "unknown payment status",
        ),
        (
            "/api/simulate/message",
            json!({"org": "el_org_nope", "customer_number": "+254700200001", "channel": "sms", "channel_number": "83044", "text": "hi"}),
            "unknown org",
        ),
    ];
    for (path, body, expected) in cases {
        let reply = post(console, path, body).await;
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{path}: {reply}");
    }
    // A message to a channel number the org does not own is the engine's refusal, as a
    // simulator would get it.
    let refused = post(
        console,
        "/api/simulate/message",
        json!({"customer_number": "+254700200001", "channel": "sms", "channel_number": "99999", "text": "hi"}),
    )
    .await;
    assert_eq!(refused["status"], json!(false), "{refused}");
    // An unknown customer is a 404 with a reason.
    let missing = http(
        console,
        "GET /api/customers/el_cst_nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // A request naming another host is refused (DNS rebinding).
    let foreign = http(
        console,
        "GET /api/overview HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn every_section_is_served_alone_as_server_rendered_html() {
    // No app answers here: the customer's message waits for no reply.
    let config = elarian_emulator::config::EmulatorConfig {
        notification_reply_timeout_ms: 200,
        ..Default::default()
    };
    let emulator = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .console(([127, 0, 0, 1], 0))
        .config(config)
        .start()
        .await
        .expect("the emulator starts with its console");
    let console = emulator.console_addr().unwrap();
    let get = |path: String| async move {
        let text = http(
            console,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
        let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    };
    let sent = post(
        console,
        "/api/simulate/message",
        json!({"customer_number": "+254700300001", "channel": "sms", "channel_number": "83044", "text": "<script>alert(1)</script>"}),
    )
    .await;
    assert_eq!(sent["status"], json!(true), "{sent}");

    let (status, list) = get("/fragments/customers?q=300001".into()).await;
    assert_eq!(status, 200);
    assert!(!list.contains("<html"), "a fragment, not a page: {list}");
    let id = list
        .split("data-id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the customer's row")
        .to_owned();
    let (_, none) = get("/fragments/customers?q=nobody-has-this".into()).await;
    assert!(none.contains("No customer matches."), "{none}");

    let (status, view) = get(format!("/fragments/customers/{id}/view")).await;
    assert_eq!(status, 200);
    assert!(
        view.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !view.contains("<script>"),
        "the customer's text is escaped: {view}"
    );
    let (status, _) = get(format!("/fragments/customers/{id}/phone")).await;
    assert_eq!(status, 200);
    let (status, _) = get(format!("/fragments/customers/{id}/bogus")).await;
    assert_eq!(status, 404);
    let (status, missing) = get("/fragments/customers/el_cst_nope/view".into()).await;
    assert_eq!(status, 404);
    assert!(missing.contains("no customer el_cst_nope"), "{missing}");
    let (status, payments) = get("/fragments/payments".into()).await;
    assert_eq!(status, 200);
    assert!(payments.contains("data-purse="), "{payments}");
    let (status, _) = get("/fragments/payments?org=el_org_nope".into()).await;
    assert_eq!(status, 404);
    let (status, connections) = get("/fragments/activity/connections".into()).await;
    assert_eq!(status, 200);
    assert!(
        connections.contains("Flow control")
            && connections.contains("Phone notifications not kept (no simulator connected)"),
        "{connections}"
    );
    let (_, campaigns) = get("/fragments/campaigns".into()).await;
    assert!(campaigns.contains("No campaigns source"), "{campaigns}");

    // The page embeds the same sections; a filter in the address is rendered, escaped.
    let (status, page) = get("/?q=%3Cb%3E300001".into()).await;
    assert_eq!(status, 200);
    assert!(page.contains("value=\"&lt;b&gt;300001\""), "{page}");
    assert!(page.contains("data-fragment=\"/fragments/customers?q=%3Cb%3E300001\""));
    let (status, page) = get(format!("/customers/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("data-fragment=\"/fragments/customers/{id}/view\"")));
    let (status, _) = get("/customers/el_cst_nope".into()).await;
    assert_eq!(status, 404);
    emulator.shutdown().await;
}
