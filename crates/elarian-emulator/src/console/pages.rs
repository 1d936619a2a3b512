//! The console's pages, rendered on the server: layout, navigation, the customer's phone forms
//! and every data section (see [`super::fragments`]), each marked with the fragment URL the
//! embedded script re-fetches it from when the event stream says it changed.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::Ctx;
use super::api;
use super::fragments::{self, ViewQuery};

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

/// A section the page's script keeps current: `url` serves its HTML again, `watch` names the
/// events that change it (see `assets/console.js`).
fn live(id: &str, url: &str, watch: &str, html: &str) -> String {
    format!(
        "<div id=\"{id}\" data-fragment=\"{url}\" data-watch=\"{watch}\">{html}</div>",
        url = escape(url),
        watch = escape(watch),
    )
}

fn shell(
    ctx: &Ctx,
    q: &ViewQuery,
    page: &str,
    title: &str,
    data: &str,
    body: &str,
) -> Html<String> {
    let org_query = q.org_query('?');
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
        format!(
            "<a href=\"{href}{}\"{current}>{label}</a>",
            escape(&org_query)
        )
    })
    .collect::<String>();
    let orgs: String = if page == "login" {
        String::new()
    } else {
        ctx.engine
            .config()
            .orgs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let selected = match &q.org {
                    Some(org) => *org == o.id,
                    None => i == 0,
                };
                format!(
                    "<option{}>{}</option>",
                    if selected { " selected" } else { "" },
                    escape(&o.id)
                )
            })
            .collect()
    };
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
  <form class="status" method="get"{action} id="org-form"><label>org <select name="org" id="org">{orgs}</select></label><noscript><button>Show</button></noscript><span id="live" class="live off" title="live updates">offline</span><span id="rate" class="rate">0 cmd/s</span></form>
</header>
<main>
{body}
</main>
<script src="/assets/console.js"></script>
</body>
</html>
"#,
        title = escape(title),
        // Another org has other customers: switching goes to its list.
        action = if page == "customer" {
            " action=\"/\""
        } else {
            ""
        },
    ))
}

fn org_of<'a>(ctx: &'a Ctx, q: &ViewQuery) -> Option<&'a crate::config::OrgConfig> {
    let config = ctx.engine.config();
    match &q.org {
        Some(id) => config.org(id),
        None => config.orgs.first(),
    }
}

fn options<'a>(values: impl IntoIterator<Item = (String, &'a str)>) -> String {
    values
        .into_iter()
        .map(|(value, label)| {
            format!(
                "<option value=\"{}\">{}</option>",
                escape(&value),
                escape(label)
            )
        })
        .collect()
}

/// The org's messaging channels as `channel|number` options.
fn message_channels(org: Option<&crate::config::OrgConfig>) -> String {
    let Some(o) = org else {
        return String::new();
    };
    let ch = &o.channels;
    let mut out = String::new();
    for (name, label, numbers) in [
        ("sms", "SMS", &ch.sms),
        ("whatsapp", "WhatsApp", &ch.whatsapp),
        ("telegram", "Telegram", &ch.telegram),
        ("messenger", "Messenger", &ch.messenger),
        ("email", "Email", &ch.email),
    ] {
        for n in numbers {
            out.push_str(&format!(
                "<option value=\"{name}|{v}\">{label} {v}</option>",
                v = escape(n)
            ));
        }
    }
    out
}

/// `GET /?q=&org=`: the customer list with its filter, and a new customer's phone.
pub(crate) async fn customers(State(ctx): State<Arc<Ctx>>, Query(q): Query<ViewQuery>) -> Response {
    let list = match api::customer_list(&ctx, fragments::list_query(&q)).await {
        Ok(list) => fragments::customer_list(&list, &q),
        Err(err) => fragments::error_html(&err),
    };
    let mut url = format!("/fragments/customers{}", q.org_query('?'));
    if let Some(filter) = q.q.as_deref().filter(|f| !f.is_empty()) {
        url.push(if q.org.is_some() { '&' } else { '?' });
        url.push_str(&format!("q={}", fragments::url_encode(filter)));
    }
    let org = org_of(&ctx, &q);
    let body = format!(
        r#"<section class="card">
  <form class="row between" method="get" id="filter">
    <h1>Customers</h1>
    {org_field}<input id="search" name="q" type="search" value="{filter}" placeholder="Filter by number, id, secondary id or tag" autocomplete="off">
  </form>
  {list}
</section>
<section class="card">
  <h2>Be a new customer</h2>
  <p class="muted">Send a first message from any number: the emulator creates the customer as Elarian would.</p>
  <form id="new-customer" class="row" data-action="message" data-org="{org_id}">
    <input name="customer_number" placeholder="+254700000000" required>
    <select name="channel">{channels}</select>
    <input name="text" placeholder="Message" required>
    <button>Send</button>
  </form>
  <p id="new-result" class="result muted"></p>
</section>"#,
        org_field = match &q.org {
            Some(org) => format!(
                "<input type=\"hidden\" name=\"org\" value=\"{}\">",
                escape(org)
            ),
            None => String::new(),
        },
        filter = escape(q.q.as_deref().unwrap_or("")),
        list = live("customer-list", &url, "list", &list),
        org_id = escape(org.map_or("", |o| o.id.as_str())),
        channels = message_channels(org),
    );
    shell(&ctx, &q, "customers", "Customers", "", &body).into_response()
}

/// `GET /customers/{id}?org=`: one customer's state, conversations, payments and phone.
pub(crate) async fn customer(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let c = match api::customer_value(&ctx, &id, &q.org) {
        Ok(c) => c,
        Err(err) => {
            let status = err.0;
            let body = format!(
                "<section class=\"card\"><h1>Customer</h1>{}</section>",
                fragments::error_html(&err)
            );
            return (status, shell(&ctx, &q, "customer", &id, "", &body)).into_response();
        }
    };
    let org = org_of(&ctx, &q);
    let data = format!(" data-customer=\"{}\"", escape(&id));
    let base = format!("/fragments/customers/{}", fragments::url_encode(&id));
    let org_query = q.org_query('?');
    let watch = format!("customer:{id}");
    let numbers = options(
        c["numbers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["number"].as_str())
            .map(|n| (n.to_owned(), n)),
    );
    let apps = options(
        org.into_iter()
            .flat_map(|o| o.apps.iter().map(|a| (a.id.clone(), a.id.as_str()))),
    );
    let plain = |list: &[String]| options(list.iter().map(|v| (v.clone(), v.as_str())));
    let (ussd, voice, payment, currencies) = match org {
        Some(o) => {
            let mut currencies: Vec<String> = o.purses.iter().map(|p| p.currency.clone()).collect();
            currencies.sort();
            currencies.dedup();
            (
                plain(&o.channels.ussd),
                plain(&o.channels.voice),
                plain(&o.channels.payment),
                plain(&currencies),
            )
        }
        None => Default::default(),
    };
    let body = format!(
        r#"<div class="cols">
<div class="col-main">
  <section class="card"><h1 id="title">Customer <span class="mono">{title}</span></h1></section>
  {view}
</div>
<aside class="col-phone">
  <section class="card phone" data-org="{org_id}">
    <h2>Be this customer</h2>
    <label>Number <select id="phone-number" name="customer_number">{numbers}</select></label>
    <label>App <select id="phone-app" name="app">{apps}</select></label>
    <div class="tabs" role="tablist">
      <button type="button" data-tab="msg" class="on">Message</button><button type="button" data-tab="ussd">USSD</button><button type="button" data-tab="voice">Voice</button><button type="button" data-tab="pay">Pay</button>
    </div>
    <form id="msg" class="tab on" data-action="message">
      <label>Channel <select name="channel">{channels}</select></label>
      <input name="subject" placeholder="Subject (email only)">
      <textarea name="text" rows="3" placeholder="Type a message" required></textarea>
      <button>Send</button>
    </form>
    <form id="ussd" class="tab" data-action="ussd">
      <label>Code <select name="code">{ussd}</select></label>
      <input type="hidden" name="session_id">
      <div id="ussd-screen" class="screen">Dial a code to start a session.</div>
      <div class="row"><input name="text" placeholder="Reply" autocomplete="off"><button name="dial">Dial</button><button name="send" disabled>Send</button><button name="cancel" type="button" disabled>Hang up</button></div>
    </form>
    <form id="voice" class="tab" data-action="voice">
      <label>Number <select name="channel_number">{voice}</select></label>
      <input type="hidden" name="session_id">
      <div id="voice-screen" class="screen">No call. Calls the app makes to this customer ring here; you can also call the app.</div>
      <div class="row"><button name="answer">Answer / call</button><input name="digits" placeholder="Digits" size="6" autocomplete="off"><button name="press" type="button">Press</button><button name="hangup" type="button">Hang up</button></div>
    </form>
    <form id="pay" class="tab" data-action="payment">
      <label>Paybill <select name="channel_number">{payment}</select></label>
      <div class="row"><input name="amount" type="number" min="0.01" step="0.01" placeholder="Amount" required><select name="currency">{currencies}</select><button>Pay</button></div>
    </form>
    {phone}
    <p id="phone-result" class="result muted"></p>
  </section>
</aside>
</div>"#,
        title = escape(&id),
        view = live(
            "customer-view",
            &format!("{base}/view{org_query}"),
            &watch,
            &fragments::customer_view(&c, &q)
        ),
        phone = live(
            "customer-phone",
            &format!("{base}/phone{org_query}"),
            &watch,
            &fragments::customer_phone(&c)
        ),
        org_id = escape(org.map_or("", |o| o.id.as_str())),
        channels = message_channels(org),
    );
    shell(&ctx, &q, "customer", &id, &data, &body).into_response()
}

/// `GET /payments?org=`: purses and transactions.
pub(crate) async fn payments(State(ctx): State<Arc<Ctx>>, Query(q): Query<ViewQuery>) -> Response {
    let html = match api::payments_value(&ctx, &q.org) {
        Ok(p) => fragments::payments(&p, &q),
        Err(err) => fragments::error_html(&err),
    };
    let url = format!("/fragments/payments{}", q.org_query('?'));
    let body = live("payments", &url, "payments", &html);
    shell(&ctx, &q, "payments", "Payments", "", &body).into_response()
}

/// `GET /activity`: connections, notifications with replies and latency, commands per second.
pub(crate) async fn activity(State(ctx): State<Arc<Ctx>>, Query(q): Query<ViewQuery>) -> Response {
    let a = api::activity_value(&ctx);
    let org_query = q.org_query('?');
    let body = format!(
        r#"<section class="card">{connections}</section>
<section class="card"><h2>Commands</h2><div class="tiles"><div class="tile"><div class="big" id="cps">0</div><div class="muted">commands / s</div></div><div class="tile"><div class="big" id="total-cmds">{total}</div><div class="muted">commands while watched</div></div></div></section>
<section class="card"><h2>Notifications</h2><p class="muted">Each notification the emulator delivered while a console watched, the handler's reply and how long it took, newest first.</p>{notifications}</section>"#,
        connections = live(
            "activity-connections",
            &format!("/fragments/activity/connections{org_query}"),
            "connections",
            &fragments::connections(&a)
        ),
        notifications = live(
            "notifications",
            &format!("/fragments/activity/notifications{org_query}"),
            "notifications",
            &fragments::notifications(&a, &q)
        ),
        total = a["commands"].as_u64().unwrap_or(0),
    );
    shell(&ctx, &q, "activity", "App activity", "", &body).into_response()
}

/// `GET /campaigns`: messages and sendings with their progress, read from the campaigns source
/// (see `console/campaigns.rs`).
pub(crate) async fn campaigns(State(ctx): State<Arc<Ctx>>, Query(q): Query<ViewQuery>) -> Response {
    let html = fragments::campaigns(&ctx).await;
    // Sendings advance as messages go out, which the feed reports as changes.
    let watch = if ctx.campaigns.is_some() {
        "campaigns"
    } else {
        ""
    };
    let body = format!(
        "<section class=\"card\"><h1>Campaigns</h1>{}</section>",
        live("campaigns", "/fragments/campaigns", watch, &html)
    );
    shell(&ctx, &q, "campaigns", "Campaigns", "", &body).into_response()
}

/// The page asking for the console's access token.
pub(crate) fn login(ctx: &Ctx) -> Response {
    let page = shell(
        ctx,
        &ViewQuery::default(),
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
