//! The console's pages: server-rendered shells (layout, navigation, forms) whose data sections
//! the embedded script fills from the JSON API and keeps current from the event stream.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::Ctx;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn shell(page: &str, title: &str, data: &str, body: &str) -> Html<String> {
    let nav = [
        ("customers", "/", "Customers"),
        ("payments", "/payments", "Payments"),
        ("activity", "/activity", "App activity"),
        ("campaigns", "/campaigns", "Campaigns"),
    ]
    .iter()
    .map(|(id, href, label)| {
        let current = if *id == page || (page == "customer" && *id == "customers") {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{current}>{label}</a>")
    })
    .collect::<String>();
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Elarian emulator</title>
<link rel="stylesheet" href="/assets/console.css">
</head>
<body data-page="{page}"{data}>
<header class="top">
  <div class="brand"><span class="logo">◆</span> Elarian emulator <span class="muted">console</span></div>
  <nav>{nav}</nav>
  <div class="status"><label>org <select id="org"></select></label><span id="live" class="live off" title="live updates">offline</span><span id="rate" class="rate">0 cmd/s</span></div>
</header>
<main>
{body}
</main>
<script src="/assets/console.js"></script>
</body>
</html>
"#,
        title = escape(title),
    ))
}

/// `GET /`: the customer list with its search filter, and a new customer's phone.
pub(crate) async fn customers() -> Html<String> {
    shell(
        "customers",
        "Customers",
        "",
        r#"<section class="card">
  <div class="row between">
    <h1>Customers <span id="count" class="muted"></span></h1>
    <input id="search" type="search" placeholder="Filter by number, id, secondary id or tag" autocomplete="off">
  </div>
  <table class="list"><thead><tr><th>Customer</th><th>Numbers</th><th>Secondary ids</th><th>Tags</th><th>Messages</th><th>Created</th></tr></thead>
  <tbody id="customers"><tr><td colspan="6" class="muted">Loading…</td></tr></tbody></table>
</section>
<section class="card">
  <h2>Be a new customer</h2>
  <p class="muted">Send a first message from any number: the emulator creates the customer as Elarian would.</p>
  <form id="new-customer" class="row">
    <input name="customer_number" placeholder="+254700000000" required>
    <select name="channel"></select>
    <input name="text" placeholder="Message" required>
    <button>Send</button>
  </form>
  <p id="new-result" class="muted"></p>
</section>"#,
    )
}

/// `GET /customers/{id}`: one customer's state, conversations, payments and phone.
pub(crate) async fn customer(Path(id): Path<String>) -> Html<String> {
    let data = format!(" data-customer=\"{}\"", escape(&id));
    shell(
        "customer",
        &id,
        &data,
        r#"<div class="cols">
<div class="col-main">
  <section class="card"><h1 id="title">Customer</h1><div id="identity"></div></section>
  <section class="card"><h2>Conversations</h2><div id="threads" class="threads"></div></section>
  <section class="card"><h2>Sessions</h2><div id="sessions"></div></section>
  <section class="card"><h2>Wallets and transactions</h2><div id="wallets"></div><div id="transactions"></div></section>
  <section class="card"><h2>State</h2><div id="state" class="grid2"></div></section>
</div>
<aside class="col-phone">
  <section class="card phone">
    <h2>Be this customer</h2>
    <label>Number <select id="phone-number"></select></label>
    <label>App <select id="phone-app"></select></label>
    <div class="tabs" role="tablist">
      <button data-tab="msg" class="on">Message</button><button data-tab="ussd">USSD</button><button data-tab="voice">Voice</button><button data-tab="pay">Pay</button>
    </div>
    <form id="msg" class="tab on">
      <label>Channel <select name="channel"></select></label>
      <label>To <select name="channel_number"></select></label>
      <input name="subject" placeholder="Subject (email)" class="email-only">
      <textarea name="text" rows="3" placeholder="Type a message" required></textarea>
      <button>Send</button>
    </form>
    <form id="ussd" class="tab">
      <label>Code <select name="code"></select></label>
      <div id="ussd-screen" class="screen">Dial a code to start a session.</div>
      <div class="row"><input name="text" placeholder="Reply" autocomplete="off"><button name="dial">Dial</button><button name="send" disabled>Send</button><button name="cancel" type="button" disabled>Hang up</button></div>
    </form>
    <form id="voice" class="tab">
      <label>Number <select name="channel_number"></select></label>
      <div id="voice-screen" class="screen">No call. Calls the app makes to this customer ring here; you can also call the app.</div>
      <div class="row"><button name="answer">Answer / call</button><input name="digits" placeholder="Digits" size="6" autocomplete="off"><button name="press" type="button">Press</button><button name="hangup" type="button">Hang up</button></div>
    </form>
    <form id="pay" class="tab">
      <label>Paybill <select name="channel_number"></select></label>
      <div class="row"><input name="amount" type="number" min="0.01" step="0.01" placeholder="Amount" required><select name="currency"></select><button>Pay</button></div>
      <div id="prompts"></div>
    </form>
    <p id="phone-result" class="result muted"></p>
  </section>
</aside>
</div>"#,
    )
}

/// `GET /payments`: purses and transactions.
pub(crate) async fn payments() -> Html<String> {
    shell(
        "payments",
        "Payments",
        "",
        r#"<section class="card"><h1>Purses</h1><div id="purses" class="tiles"></div></section>
<section class="card"><h2>Transactions <span id="txn-count" class="muted"></span></h2><div id="transactions"></div></section>"#,
    )
}

/// `GET /activity`: connections, notifications with replies and latency, commands per second.
pub(crate) async fn activity() -> Html<String> {
    shell(
        "activity",
        "App activity",
        "",
        r#"<section class="card"><h1>Connections <span id="conn-count" class="muted"></span></h1><div id="connections"></div></section>
<section class="card"><h2>Commands</h2><div class="tiles"><div class="tile"><div class="big" id="cps">0</div><div class="muted">commands / s</div></div><div class="tile"><div class="big" id="total-cmds">0</div><div class="muted">commands while watched</div></div></div><canvas id="spark" width="600" height="60"></canvas></section>
<section class="card"><h2>Notifications</h2><p class="muted">Each notification the emulator delivered, the handler's reply and how long it took, newest first.</p><div id="notifications"></div></section>"#,
    )
}

/// `GET /campaigns`: the campaigns extension point (see `console/campaigns.rs`).
pub(crate) async fn campaigns() -> Html<String> {
    shell(
        "campaigns",
        "Campaigns",
        "",
        r#"<section class="card"><h1>Campaigns</h1><div id="campaigns"><p class="muted">Campaign sendings and their progress will show here once the emulator runs campaigns.</p></div></section>"#,
    )
}

/// The page asking for the console's access token.
pub(crate) fn login() -> Response {
    let page = shell(
        "login",
        "Access token",
        "",
        r#"<section class="card narrow"><h1>Access token</h1>
<p class="muted">This console is served on a network address and needs its access token (the emulator's <code>--console-token</code> or <code>console.access_token</code>).</p>
<form id="login" class="row"><input name="token" type="password" placeholder="Access token" required autocomplete="current-password"><button>Open</button></form></section>"#,
    );
    (StatusCode::UNAUTHORIZED, page).into_response()
}

/// The stylesheet.
pub(crate) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// The script.
pub(crate) async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

/// Anything else.
pub(crate) async fn not_found(State(_ctx): State<Arc<Ctx>>) -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}
