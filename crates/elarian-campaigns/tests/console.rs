//! The emulator's console shows the campaigns of a real campaigns HTTP API over a socket: the
//! wiring the `elarian-campaigns` binary does for its embedded emulator.

mod common;

use std::net::SocketAddr;

use common::*;
use elarian_campaigns::*;
use elarian_emulator::config::EmulatorConfig;
use elarian_emulator::{Emulator, EmulatorHandle};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "console-test-key";

/// The console's HTML at `path`, with its status code.
async fn get(console: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(console).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("the console answers in time")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, text)
}

/// An emulator whose console reads campaigns from `campaigns_url` with `key`.
async fn emulator_with_console(campaigns_url: &str, key: &str) -> EmulatorHandle {
    let mut config = EmulatorConfig::default();
    config.orgs[0].channels.email.push(EMAIL_SENDER.into());
    Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .console(([127, 0, 0, 1], 0))
        .console_campaigns(campaigns_url, key)
        .config(config)
        .start()
        .await
        .expect("the emulator starts with its console")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_messages_sendings_and_progress_from_the_campaigns_api() {
    // The API's address comes first: the emulator's console is told where to read.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let url = format!("http://{api}/");
    let emu = emulator_with_console(&url, KEY).await;
    let console = emu.console_addr().unwrap();
    let app = app(&emu).await;
    let (_sim, phones) = simulator(&emu).await;
    let clock = ManualClock::new(start());
    let c = campaigns(&app, Store::memory(), &clock, test_config()).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(http::serve(
        listener,
        http::router(c.clone(), KEY),
        async move {
            let _ = stopped.await;
        },
    ));

    // Nothing yet.
    let (status, page) = get(console, "/campaigns").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("No messages yet."), "{page}");

    // A message with a sending that runs to its end, and a draft with a name to escape.
    let mut message = sms_message("Hello {{name}}");
    message.name = "Loan reminder".into();
    let m = c.create_message(message).await.unwrap();
    let payload = SendingPayload {
        recipients: vec![
            inline(&number(40, 1), json!({"name": "Ann"})),
            inline(&number(40, 2), json!({"name": "Bo"})),
            inline(&number(40, 3), json!({})),
        ],
        scheduled_at: Some(start()),
        ..SendingPayload::default()
    };
    let s = c.create_sending(m.id, payload).await.unwrap();
    wait_for("the sending to be transmitted", || async {
        c.tick().await.unwrap();
        c.sending(s.id).await.unwrap().status == SendingStatus::Transmitted
    })
    .await;
    wait_for("both phones to get the text", || async {
        phones.count() == 2
    })
    .await;
    let mut draft = sms_message("Later");
    draft.name = "<b>Draft</b> & co".into();
    let d = c.create_message(draft).await.unwrap();
    c.create_sending(
        d.id,
        SendingPayload {
            recipients: vec![inline(&number(40, 4), json!({}))],
            draft: true,
            ..SendingPayload::default()
        },
    )
    .await
    .unwrap();

    let (status, page) = get(console, "/campaigns").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!(
            "From the campaigns API at <span class=\"mono\">{url}</span>"
        )),
        "{page}"
    );
    assert!(page.contains("Loan reminder"), "{page}");
    assert!(
        page.contains(&format!("data-sending=\"{}\"", s.id)),
        "{page}"
    );
    assert!(page.contains(">transmitted<"), "{page}");
    // Three recipients: two sent, one skipped for its missing merge field: all settled.
    assert!(page.contains("3/3"), "{page}");
    assert!(page.contains(">draft<"), "{page}");
    assert!(page.contains("&lt;b&gt;Draft&lt;/b&gt; &amp; co"), "{page}");
    assert!(!page.contains("<b>Draft</b>"), "{page}");
    assert!(!page.contains(KEY), "the API key never reaches the page");
    // Newest first.
    let newest = page.find("Draft&lt;/b&gt;").unwrap();
    assert!(newest < page.find("Loan reminder").unwrap());
    // The fragment the page's script re-fetches is the same section.
    let (status, fragment) = get(console, "/fragments/campaigns").await;
    assert_eq!(status, 200);
    assert!(fragment.contains("Loan reminder") && fragment.contains("3/3"));

    // A wrong key shows the API's refusal on the page instead of hanging or failing it.
    let wrong = emulator_with_console(&url, "not-the-key").await;
    let (status, page) = get(wrong.console_addr().unwrap(), "/campaigns").await;
    assert_eq!(status, 200);
    assert!(page.contains("answered 401"), "{page}");
    wrong.shutdown().await;

    // So does an API that is gone.
    let _ = stop.send(());
    c.shutdown().await;
    let gone = emulator_with_console("http://127.0.0.1:1/", KEY).await;
    let (_, page) = get(gone.console_addr().unwrap(), "/fragments/campaigns").await;
    assert!(page.contains("cannot reach the campaigns API"), "{page}");
    gone.shutdown().await;

    app.disconnect().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_malformed_campaigns_url_stops_the_emulator_from_starting() {
    let err = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .console(([127, 0, 0, 1], 0))
        .console_campaigns("https://campaigns.example/", KEY)
        .start()
        .await
        .expect_err("only plain http is supported");
    assert!(err.to_string().contains("campaigns URL"), "{err}");
    let err = Emulator::builder()
        .tcp(([127, 0, 0, 1], 0))
        .console(([127, 0, 0, 1], 0))
        .console_campaigns("http://127.0.0.1:8080/", "")
        .start()
        .await
        .expect_err("an empty key");
    assert!(err.to_string().contains("must not be empty"), "{err}");
}
