//! The HTTP API through a real socket, with a tiny HTTP/1.1 client.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use elarian_campaigns::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "test-http-key";

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if !payload.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    if let Some(key) = key {
        request.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&payload);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| {
            l.split_once(": ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap()
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn server(c: &Campaigns) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = http::router(c.clone(), KEY);
    tokio::spawn(http::serve(listener, router, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_in_the_seed_shapes_with_auth_pagination_and_json_errors() {
    let emu = emulator().await;
    let app = app(&emu).await;
    let (_sim, phones) = simulator(&emu).await;
    let clock = ManualClock::new(start());
    let c = campaigns(&app, Store::memory(), &clock, test_config()).await;
    let (addr, _stop) = server(&c).await;

    // Auth.
    assert_eq!(call(addr, "GET", "/messages", None, None).await.status, 401);
    let wrong = call(addr, "GET", "/messages", Some("nope"), None).await;
    assert_eq!(
        (wrong.status, wrong.body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    // A message, in the seed's shape.
    let new = json!({
        "name": "DD3", "shorten_urls": true, "track_in_shortener": false,
        "channels": [{
            "type": "sms", "sender": {"type": "alphanumeric", "value": "83044"},
            "template": {"type": "plain", "content": {"body": "Hei {{name}}"}}
        }]
    });
    let m = call(addr, "POST", "/messages", Some(KEY), Some(new.clone())).await;
    assert_eq!(m.status, 201, "{}", m.body);
    let mid = m.body["id"].as_u64().unwrap();
    let mut keys: Vec<&str> = m
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "campaign_id",
            "channels",
            "created_at",
            "id",
            "latest_sending",
            "name",
            "sendings_count",
            "sendings_status",
            "service",
            "shorten_urls",
            "track_in_shortener",
            "updated_at"
        ]
    );
    assert_eq!(m.body["sendings_status"], "draft");
    assert_eq!(
        m.body["channels"][0]["template"]["content"],
        json!({"body": "Hei {{name}}"})
    );
    let decoded: Message = from_json(&m.body.to_string()).unwrap();
    assert_eq!(decoded.name, "DD3");

    // Validation and JSON errors name the field.
    let mut push = new.clone();
    push["channels"][0]["type"] = json!("push");
    let r = call(addr, "POST", "/messages", Some(KEY), Some(push)).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("channels[0].type"))
    );
    let mut bad = new.clone();
    bad["channels"][0]["sender"]["type"] = json!("shortcode");
    let r = call(addr, "POST", "/messages", Some(KEY), Some(bad)).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (400, Some("channels[0].sender.type"))
    );
    assert_eq!(r.body["error"]["code"], "invalid_json");
    let r = call(addr, "GET", "/messages/42424242", Some(KEY), None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = call(addr, "GET", "/messages/abc", Some(KEY), None).await;
    assert_eq!(r.status, 404);
    let r = call(addr, "GET", "/nowhere", Some(KEY), None).await;
    assert_eq!(r.status, 404);
    let r = call(addr, "GET", "/messages?per_page=0", Some(KEY), None).await;
    assert_eq!(r.status, 400);

    // Pagination.
    for i in 0..3 {
        let mut more = new.clone();
        more["name"] = json!(format!("extra {i}"));
        assert_eq!(
            call(addr, "POST", "/messages", Some(KEY), Some(more))
                .await
                .status,
            201
        );
    }
    let p = call(addr, "GET", "/messages?page=2&per_page=3", Some(KEY), None).await;
    assert_eq!(p.status, 200);
    assert_eq!(p.header("x-total-count"), Some("4"));
    assert_eq!(p.body.as_array().unwrap().len(), 1);
    assert_eq!(p.body[0]["name"], "extra 2");

    // An audience and a sending with both the audience and inline recipients.
    let a = call(
        addr,
        "POST",
        "/audiences",
        Some(KEY),
        Some(json!({
            "name": "vip",
            "recipients": [
                {"msisdn": number(10, 1), "properties": {"name": "Ann"}},
                {"msisdn": number(10, 2), "properties": {"name": "Bo"}}
            ]
        })),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let aid = a.body["id"].as_u64().unwrap();
    assert_eq!(a.body["recipients_count"], 2);
    let s = call(addr, "POST", &format!("/messages/{mid}/sendings"), Some(KEY), Some(json!({
        "audience_id": aid,
        "scheduled_with": {"in": "15 minutes", "type": "relative"},
        "recipients": [
            {"member_id": null, "msisdn": number(10, 2), "email": null, "app_token": null, "properties": {"name": "Bo"}},
            {"msisdn": number(10, 3), "properties": {"name": "Cy"}}
        ]
    }))).await;
    assert_eq!(s.status, 201, "{}", s.body);
    let sid = s.body["id"].as_u64().unwrap();
    assert_eq!(s.body["status"], "scheduled");
    assert_eq!(
        s.body["scheduled_with"],
        json!({"in": "15 minutes", "type": "relative"})
    );
    assert_eq!(s.body["scheduled_at"], "2026-01-01T09:15:00.000Z");
    let decoded: Sending = from_json(&s.body.to_string()).unwrap();
    assert_eq!(decoded.recipients.len(), 2);
    let m = call(addr, "GET", &format!("/messages/{mid}"), Some(KEY), None).await;
    assert_eq!(m.body["sendings_status"], "scheduled");
    assert_eq!(m.body["latest_sending"]["recipients_count"], 2);
    assert_eq!(m.body["latest_sending"]["audience_id"], aid);
    assert!(m.body["latest_sending"].get("recipients").is_none());

    // Back to draft, then scheduled again, then it runs.
    let d = call(
        addr,
        "PUT",
        &format!("/messages/{mid}/sendings/{sid}"),
        Some(KEY),
        Some(json!({"draft": true})),
    )
    .await;
    assert_eq!(d.body["status"], "draft");
    let r = call(
        addr,
        "PUT",
        &format!("/messages/{mid}/sendings/{sid}"),
        Some(KEY),
        Some(json!({"scheduled_with": {"in": "1 minute", "type": "relative"}})),
    )
    .await;
    assert_eq!(r.body["status"], "scheduled");
    clock.advance(Duration::from_secs(60));
    c.tick().await.unwrap();
    wait_status(&c, sid, SendingStatus::Transmitted).await;
    wait_for("three phones", || async { phones.count() == 3 }).await;
    let pr = call(
        addr,
        "GET",
        &format!("/messages/{mid}/sendings/{sid}/progress"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(
        (
            pr.body["recipients"].as_u64(),
            pr.body["duplicates"].as_u64(),
            pr.body["sent"].as_u64()
        ),
        (Some(3), Some(1), Some(3))
    );
    let ds = call(
        addr,
        "GET",
        &format!("/messages/{mid}/sendings/{sid}/dispatches?per_page=2"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(ds.body.as_array().unwrap().len(), 2);
    assert_eq!(ds.header("x-total-count"), Some("3"));

    // Final: rescheduling and cancelling are conflicts; cloning gives a draft.
    let r = call(
        addr,
        "POST",
        &format!("/messages/{mid}/sendings/{sid}/cancel"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("illegal_transition"))
    );
    let cl = call(
        addr,
        "POST",
        &format!("/messages/{mid}/sendings/{sid}/clone"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(
        (cl.status, cl.body["status"].as_str()),
        (201, Some("draft"))
    );
    let clone_id = cl.body["id"].as_u64().unwrap();
    let cancelled = call(
        addr,
        "POST",
        &format!("/messages/{mid}/sendings/{clone_id}/cancel"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    let list = call(
        addr,
        "GET",
        &format!("/messages/{mid}/sendings"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(list.header("x-total-count"), Some("2"));
    let m = call(addr, "GET", &format!("/messages/{mid}"), Some(KEY), None).await;
    assert_eq!(m.body["sendings_status"], "finished");
    // A sending under another message is not found there.
    let other = p.body[0]["id"].as_u64().unwrap();
    assert_eq!(
        call(
            addr,
            "GET",
            &format!("/messages/{other}/sendings/{sid}"),
            Some(KEY),
            None
        )
        .await
        .status,
        404
    );

    // Audience CRUD.
    let up = call(
        addr,
        "PUT",
        &format!("/audiences/{aid}"),
        Some(KEY),
        Some(json!({"name": "vip2", "recipients": []})),
    )
    .await;
    assert_eq!(
        (
            up.body["name"].as_str(),
            up.body["recipients_count"].as_u64()
        ),
        (Some("vip2"), Some(0))
    );
    let rs = call(
        addr,
        "GET",
        &format!("/audiences/{aid}/recipients"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(rs.body, json!([]));
    assert_eq!(
        call(
            addr,
            "DELETE",
            &format!("/audiences/{aid}"),
            Some(KEY),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(addr, "GET", &format!("/audiences/{aid}"), Some(KEY), None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(addr, "DELETE", &format!("/messages/{mid}"), Some(KEY), None)
            .await
            .status,
        204
    );
    c.shutdown().await;
}
