//! The console's data sections as HTML fragments, rendered on the server.
//!
//! Each section is rendered from the same snapshot the JSON API answers (`console/api.rs`), so
//! the page and `/api/...` never disagree. A page embeds its sections when it is served, and
//! serves each one again under `/fragments/...`: the page's script re-fetches a section when
//! the event feed says something it shows changed, and swaps the server's HTML in. Every string
//! that came from a peer (an app, a customer, a campaigns server) goes through [`escape`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::Ctx;
use super::api::{self, ApiError, ListQuery};
use super::campaigns;
use super::pages::escape;

/// The query every page and fragment takes: the org, and the customer list's filter.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ViewQuery {
    /// The org shown (the first configured one without it).
    pub org: Option<String>,
    /// The customer list's filter.
    pub q: Option<String>,
}

impl ViewQuery {
    /// `?org=…` to carry the org into links, or nothing for the default org.
    pub(crate) fn org_query(&self, first: char) -> String {
        match &self.org {
            Some(org) => format!("{first}org={}", url_encode(org)),
            None => String::new(),
        }
    }
}

/// Percent-encodes a path segment or query value.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn e(v: &Value) -> String {
    match v {
        Value::String(text) => escape(text),
        Value::Null => String::new(),
        other => escape(&other.to_string()),
    }
}

/// Milliseconds since the epoch as a UTC date and time (`2026-12-02 14:05:09`).
pub(crate) fn date_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn time(v: &Value) -> String {
    match v.as_i64() {
        Some(ms) => format!("<time>{}</time>", date_time(ms)),
        None => String::new(),
    }
}

/// Just the clock time of a message, for a thread.
fn clock(v: &Value) -> String {
    v.as_i64()
        .map(|ms| date_time(ms)[11..].to_owned())
        .unwrap_or_default()
}

/// An amount with two decimals and thousands separators: `1,234.50`.
pub(crate) fn money(v: &Value) -> String {
    let Some(x) = v.as_f64() else {
        return String::new();
    };
    let fixed = format!("{:.2}", x.abs());
    let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 && fixed != "0.00" { "-" } else { "" };
    format!("{sign}{grouped}.{frac}")
}

fn status_kind(status: &str) -> &'static str {
    let has = |words: &[&str]| words.iter().any(|w| status.contains(w));
    if has(&[
        "fail", "reject", "error", "expired", "invalid", "blocked", "not_", "cancel",
    ]) {
        "bad"
    } else if has(&[
        "pending",
        "queued",
        "sent",
        "in_session",
        "validated",
        "scheduled",
        "prepar",
        "transmitting",
    ]) {
        "warn"
    } else if has(&[
        "success",
        "delivered",
        "read",
        "active",
        "completed",
        "transmitted",
    ]) {
        "ok"
    } else {
        "grey"
    }
}

fn chip(text: &str, kind: &str) -> String {
    format!("<span class=\"chip {kind}\">{}</span>", escape(text))
}

fn status_chip(v: &Value) -> String {
    chip(s(v), status_kind(s(v)))
}

fn index_text(i: &Value) -> String {
    match i["value"].as_str() {
        Some(v) if !v.is_empty() => format!("{}={v}", s(&i["key"])),
        _ => s(&i["key"]).to_owned(),
    }
}

fn chips(list: &Value, kind: &str) -> String {
    let out: String = list
        .as_array()
        .map(|a| a.iter().map(|i| chip(&index_text(i), kind)).collect())
        .unwrap_or_default();
    if out.is_empty() {
        "<span class=\"empty\">none</span>".into()
    } else {
        out
    }
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn empty(text: &str) -> String {
    format!("<p class=\"empty\">{text}</p>")
}

fn customer_href(id: &str, q: &ViewQuery) -> String {
    format!("/customers/{}{}", url_encode(id), q.org_query('?'))
}

/// The error of a section, in place of it.
pub(crate) fn error_html(err: &ApiError) -> String {
    format!("<p class=\"result err\">{}</p>", escape(&err.1))
}

// ---- Customers ----

/// The customer list: its count and one row per customer.
pub(crate) fn customer_list(list: &Value, q: &ViewQuery) -> String {
    let filter = q.q.as_deref().unwrap_or("").trim();
    let shown = items(&list["customers"]);
    let count = if filter.is_empty() {
        format!("{} customers", e(&list["total"]))
    } else {
        let more = if list["complete"] == Value::Bool(false) {
            "+"
        } else {
            ""
        };
        format!("{}{more} of {} match", shown.len(), e(&list["total"]))
    };
    let rows: String = shown
        .iter()
        .map(|c| {
            let numbers: String = items(&c["numbers"])
                .iter()
                .map(|n| chip(s(&n["number"]), "grey"))
                .collect();
            format!(
                "<tr data-id=\"{id}\"><td><a class=\"mono\" href=\"{href}\">{id}</a></td><td>{numbers}</td><td>{secondary}</td><td>{tags}</td><td>{messages}</td><td class=\"muted\">{created}</td></tr>",
                id = e(&c["id"]),
                href = escape(&customer_href(s(&c["id"]), q)),
                secondary = chips(&c["secondary_ids"], ""),
                tags = chips(&c["tags"], ""),
                messages = e(&c["messages"]),
                created = time(&c["created_at"]),
            )
        })
        .collect();
    let rows = if rows.is_empty() {
        let why = if filter.is_empty() {
            "No customers yet: they appear when an app creates one or a customer writes in."
        } else {
            "No customer matches."
        };
        format!("<tr><td colspan=\"6\" class=\"empty\">{why}</td></tr>")
    } else {
        rows
    };
    format!(
        "<p id=\"count\" class=\"muted\">{count}</p><table class=\"list\"><thead><tr><th>Customer</th><th>Numbers</th><th>Secondary ids</th><th>Tags</th><th>Messages</th><th>Created</th></tr></thead><tbody id=\"customers\">{rows}</tbody></table>"
    )
}

/// A customer's main column: identity, conversations, sessions, money and state.
pub(crate) fn customer_view(c: &Value, q: &ViewQuery) -> String {
    let numbers: String = items(&c["numbers"])
        .iter()
        .map(|n| {
            chip(
                &format!("{} · {}", s(&n["number"]), s(&n["provider"])),
                "grey",
            )
        })
        .collect();
    let tags: String = items(&c["tags"])
        .iter()
        .map(|t| {
            let until = match t["expires_at"].as_i64() {
                Some(ms) => format!(" · until {}", date_time(ms)),
                None => String::new(),
            };
            chip(&format!("{}{until}", index_text(t)), "")
        })
        .collect();
    let identity = format!(
        "<dl><dt>Numbers</dt><dd>{numbers}</dd><dt>Secondary ids</dt><dd>{secondary}</dd><dt>Tags</dt><dd>{tags}</dd><dt>Created</dt><dd>{created}</dd></dl>",
        secondary = chips(&c["secondary_ids"], ""),
        tags = if tags.is_empty() {
            "<span class=\"empty\">none</span>".into()
        } else {
            tags
        },
        created = time(&c["created_at"]),
    );
    format!(
        r#"<section class="card"><div id="identity">{identity}</div></section>
<section class="card"><h2>Conversations</h2><div id="threads" class="threads">{threads}</div></section>
<section class="card"><h2>Sessions</h2><div id="sessions">{sessions}</div></section>
<section class="card"><h2>Wallets and transactions</h2><div id="wallets">{wallets}</div><div id="transactions">{transactions}</div></section>
<section class="card"><h2>State</h2><div id="state" class="grid2">{state}</div></section>"#,
        threads = threads(c),
        sessions = sessions(c),
        wallets = wallets(c),
        transactions = transactions(&c["transactions"], q),
        state = state(c),
    )
}

/// One phone-style thread per channel number and customer number, in order, with sessions
/// marked and the status of what the app sent.
fn threads(c: &Value) -> String {
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut by_key: HashMap<(String, String, String), Vec<&Value>> = HashMap::new();
    for m in items(&c["messages"]).iter().filter(|m| !m.is_null()) {
        let key = (
            s(&m["channel"]["channel"]).to_owned(),
            s(&m["channel"]["number"]).to_owned(),
            s(&m["customer_number"]).to_owned(),
        );
        by_key
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(m);
    }
    if order.is_empty() {
        return empty("No messages yet. Send one from the phone on the right.");
    }
    order
        .iter()
        .map(|key| {
            let mut last_session = String::new();
            let body: String = by_key[key]
                .iter()
                .map(|m| {
                    let mut out = String::new();
                    let session = s(&m["session_id"]);
                    if !session.is_empty() && session != last_session {
                        let tail = &session[session.len().saturating_sub(8)..];
                        out.push_str(&format!(
                            "<div class=\"sep\">session {}</div>",
                            escape(tail)
                        ));
                        last_session = session.to_owned();
                    }
                    let inbound = s(&m["direction"]) == "in";
                    let class = if inbound {
                        "in"
                    } else if m["voice"] == Value::Bool(true) {
                        "out voice"
                    } else {
                        "out"
                    };
                    let text = match s(&m["text"]) {
                        "" => "—".to_owned(),
                        t => escape(t),
                    };
                    let app = if !inbound && !s(&m["app"]).is_empty() {
                        format!(" · {}", e(&m["app"]))
                    } else {
                        String::new()
                    };
                    let status = if s(&m["status"]).is_empty() {
                        String::new()
                    } else {
                        format!(" · {}", status_chip(&m["status"]))
                    };
                    out.push_str(&format!(
                        "<div class=\"bubble {class}\" data-message=\"{id}\">{text}</div><div class=\"meta {side}\">{at}{app}{status}</div>",
                        id = e(&m["id"]),
                        side = if inbound { "in" } else { "out" },
                        at = clock(&m["at"]),
                    ));
                    out
                })
                .collect();
            format!(
                "<div class=\"thread\" data-channel=\"{channel}\"><header><span>{label} {number}</span><span class=\"muted\">{customer}</span></header><div class=\"msgs\">{body}</div></div>",
                channel = escape(&key.0),
                label = escape(&key.0.to_uppercase()),
                number = escape(&key.1),
                customer = escape(&key.2),
            )
        })
        .collect()
}

fn sessions(c: &Value) -> String {
    let list = items(&c["sessions"]);
    if list.is_empty() {
        return empty("No completed sessions.");
    }
    let rows: String = list
        .iter()
        .rev()
        .map(|x| {
            let duration = x["duration_secs"]
                .as_f64()
                .map(|d| format!("{d:.1} s"))
                .unwrap_or_default();
            format!(
                "<tr><td>{} {}</td><td class=\"mono\">{}</td><td>{}</td><td>{duration}</td><td>{}</td></tr>",
                e(&x["channel"]["channel"]),
                e(&x["channel"]["number"]),
                e(&x["session_id"]),
                time(&x["started_at"]),
                chip(s(&x["end_reason"]), "grey"),
            )
        })
        .collect();
    format!(
        "<table><thead><tr><th>Channel</th><th>Session</th><th>Started</th><th>Duration</th><th>Ended by</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

fn wallets(c: &Value) -> String {
    let list = items(&c["wallets"]);
    if list.is_empty() {
        return empty("No wallets.");
    }
    let tiles: String = list
        .iter()
        .map(|w| {
            format!(
                "<div class=\"tile\" data-wallet=\"{id}\"><div class=\"muted\">{id}</div><div class=\"big balance\">{cur} {avail}</div><div class=\"muted\">actual {actual}</div></div>",
                id = e(&w["id"]),
                cur = e(&w["currency"]),
                avail = money(&w["available"]),
                actual = money(&w["actual"]),
            )
        })
        .collect();
    format!("<div class=\"tiles\">{tiles}</div>")
}

fn party(p: &Value, customer: &Value, q: &ViewQuery) -> String {
    if p.is_null() {
        return String::new();
    }
    let label = format!(
        "<span class=\"muted\">{}</span> {}",
        e(&p["kind"]),
        e(&p["label"])
    );
    match customer.as_str() {
        Some(id) => format!("<a href=\"{}\">{label}</a>", escape(&customer_href(id, q))),
        None => label,
    }
}

/// A table of transactions, newest first.
pub(crate) fn transactions(list: &Value, q: &ViewQuery) -> String {
    let list = items(list);
    if list.is_empty() {
        return empty("No transactions.");
    }
    let rows: String = list
        .iter()
        .map(|t| {
            format!(
                "<tr data-transaction=\"{id}\"><td class=\"mono\">{id}</td><td>{from}</td><td>{to}</td><td>{cur} {amount}</td><td>{status}</td><td class=\"muted\">{updated}</td></tr>",
                id = e(&t["id"]),
                from = party(&t["debit"], &t["debit_customer"], q),
                to = party(&t["credit"], &t["credit_customer"], q),
                cur = e(&t["value"]["currency"]),
                amount = money(&t["value"]["amount"]),
                status = status_chip(&t["status"]),
                updated = time(&t["updated_at"]),
            )
        })
        .collect();
    format!(
        "<table><thead><tr><th>Transaction</th><th>From</th><th>To</th><th>Amount</th><th>Status</th><th>Updated</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

fn state(c: &Value) -> String {
    let meta: String = c["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("<dt>{}</dt><dd class=\"mono\">{}</dd>", escape(k), e(v)))
                .collect()
        })
        .unwrap_or_default();
    let meta = if meta.is_empty() {
        empty("none")
    } else {
        format!("<dl>{meta}</dl>")
    };
    let channels: String = items(&c["channels"])
        .iter()
        .map(|x| {
            format!(
                "<div>{} {} {} <span class=\"muted\">{}</span></div>",
                e(&x["channel"]["channel"]),
                e(&x["channel"]["number"]),
                status_chip(&x["state"]),
                time(&x["since"]),
            )
        })
        .collect();
    let channels = if channels.is_empty() {
        empty("No channel state yet.")
    } else {
        channels
    };
    let apps: String = items(&c["apps"])
        .iter()
        .map(|a| {
            let lease = match a["lease_until"].as_i64() {
                Some(ms) => format!("leased until {}", date_time(ms)),
                None => "not leased".into(),
            };
            let reminders: String = items(&a["reminders"])
                .iter()
                .map(|r| {
                    let due = r["due"].as_i64().map(date_time).unwrap_or_default();
                    let every = r["interval_secs"]
                        .as_f64()
                        .filter(|i| *i > 0.0)
                        .map(|i| format!(" every {i} s"))
                        .unwrap_or_default();
                    chip(&format!("{} · {due}{every}", s(&r["key"])), "")
                })
                .collect();
            let data = match s(&a["data"]) {
                "" => "—".into(),
                d => escape(d),
            };
            format!(
                "<h3>App {}</h3><dl><dt>Data</dt><dd class=\"mono\">{data}</dd><dt>Lease</dt><dd>{lease}</dd><dt>Reminders</dt><dd>{}</dd></dl>",
                e(&a["app"]),
                if reminders.is_empty() {
                    "<span class=\"empty\">none</span>".into()
                } else {
                    reminders
                },
            )
        })
        .collect();
    let apps = if apps.is_empty() {
        format!("<h3>Apps</h3>{}", empty("No app data."))
    } else {
        apps
    };
    let activity: String = items(&c["activity"])
        .iter()
        .map(|a| {
            let keys: String = items(&a["activities"])
                .iter()
                .map(|x| chip(s(&x["key"]), "grey"))
                .collect();
            format!(
                "<div><b>{}</b> <span class=\"muted\">{}</span> {keys}</div>",
                e(&a["source"]),
                time(&a["updated_at"])
            )
        })
        .collect();
    let activity = if activity.is_empty() {
        empty("none")
    } else {
        activity
    };
    format!(
        "<div><h3>Metadata</h3>{meta}<h3 class=\"gap\">Consent per channel</h3>{channels}</div><div>{apps}<h3 class=\"gap\">Activity</h3>{activity}</div>"
    )
}

/// What the phone shows from the state: a call the app placed, and checkout prompts.
pub(crate) fn customer_phone(c: &Value) -> String {
    let id = s(&c["id"]);
    let voice_session = items(&c["channels"])
        .iter()
        .find(|x| s(&x["state"]) == "in_session" && s(&x["channel"]["channel"]) == "voice");
    let call = match voice_session {
        Some(x) => {
            let session = s(&x["session_id"]);
            // Answered once the customer's side of the session has said anything.
            let answered = items(&c["messages"]).iter().any(|m| {
                s(&m["direction"]) == "in"
                    && s(&m["session_id"]) == session
                    && s(&m["channel"]["channel"]) == "voice"
            });
            let what = if answered {
                "In call with"
            } else {
                "📞 Incoming call from"
            };
            format!(
                "<div id=\"call\" class=\"screen{ring}\" data-session=\"{session}\" data-number=\"{number}\">{what} {number}</div>",
                ring = if answered { "" } else { " ring" },
                session = escape(session),
                number = e(&x["channel"]["number"]),
            )
        }
        None => String::new(),
    };
    let prompts: String = items(&c["transactions"])
        .iter()
        .filter(|t| s(&t["status"]) == "pending_confirmation" && s(&t["debit_customer"]) == id)
        .map(|t| {
            format!(
                "<div class=\"prompt\" data-transaction=\"{tid}\"><b>Pay {cur} {amount}</b> to {to}?<div class=\"row\"><button type=\"button\" data-approve=\"{tid}\">Approve</button><button type=\"button\" class=\"danger\" data-decline=\"{tid}\">Decline</button></div></div>",
                tid = e(&t["id"]),
                cur = e(&t["value"]["currency"]),
                amount = money(&t["value"]["amount"]),
                to = e(&t["credit"]["label"]),
            )
        })
        .collect();
    format!("{call}<div id=\"prompts\">{prompts}</div>")
}

// ---- Payments ----

/// Purses and the newest transactions of an org.
pub(crate) fn payments(p: &Value, q: &ViewQuery) -> String {
    let purses: String = items(&p["purses"])
        .iter()
        .map(|x| {
            format!(
                "<div class=\"tile\" data-purse=\"{id}\"><div class=\"muted\">{id}</div><div class=\"big\">{cur} {avail}</div><div class=\"muted\">actual {actual}</div></div>",
                id = e(&x["id"]),
                cur = e(&x["currency"]),
                avail = money(&x["available"]),
                actual = money(&x["actual"]),
            )
        })
        .collect();
    let purses = if purses.is_empty() {
        empty("No purses configured.")
    } else {
        purses
    };
    let shown = items(&p["transactions"]).len();
    let total = p["total_transactions"].as_u64().unwrap_or(0);
    let count = if total > shown as u64 {
        format!("(newest {shown} of {total})")
    } else {
        format!("({total})")
    };
    format!(
        "<section class=\"card\"><h1>Purses</h1><div id=\"purses\" class=\"tiles\">{purses}</div></section><section class=\"card\"><h2>Transactions <span class=\"muted\">{count}</span></h2><div id=\"transactions\">{}</div></section>",
        transactions(&p["transactions"], q)
    )
}

// ---- App activity ----

/// The open app and simulator connections.
pub(crate) fn connections(a: &Value) -> String {
    let list = items(&a["connections"]);
    let rows: String = list
        .iter()
        .map(|c| {
            let role = format!(
                "{}{}",
                s(&c["role"]),
                if c["simplex"] == Value::Bool(true) {
                    " · simplex"
                } else {
                    ""
                }
            );
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"muted\">{}</td></tr>",
                e(&c["id"]),
                e(&c["org"]),
                e(&c["app"]),
                chip(&role, if s(&c["role"]) == "app" { "" } else { "grey" }),
                time(&c["since"]),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        empty("No app or simulator is connected.")
    } else {
        format!(
            "<table><thead><tr><th>#</th><th>Org</th><th>App</th><th>Role</th><th>Since</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    format!(
        "<h1>Connections <span class=\"muted\">({open})</span></h1><div id=\"connections\">{table}</div>{flow}",
        open = e(&a["open_connections"]),
        flow = flow(&a["flow"]),
    )
}

/// What flow control refused or let go since the emulator started, each counter named.
fn flow(f: &Value) -> String {
    const ROWS: [(&str, &str); 6] = [
        (
            "simulator_commands_rejected",
            "Simulator commands rejected unprocessed (apps' queue full; clients retry)",
        ),
        (
            "notifications_of_commands_not_queued",
            "Notifications of commands not queued (reported in the command's reply)",
        ),
        (
            "paced_notifications_refused",
            "Reminder and tag notifications refused after a stall",
        ),
        (
            "notifications_unanswered",
            "Notifications not answered in time",
        ),
        (
            "phone_notifications_not_kept",
            "Phone notifications not kept (no simulator connected)",
        ),
        (
            "history_entries_trimmed",
            "History entries trimmed past history_limit",
        ),
    ];
    let rows: String = ROWS
        .iter()
        .map(|(key, label)| {
            let n = f[*key].as_u64().unwrap_or(0);
            let value = if n == 0 {
                "0".to_owned()
            } else {
                chip(&n.to_string(), "warn")
            };
            format!("<tr><td>{label}</td><td>{value}</td></tr>")
        })
        .collect();
    format!("<h2>Flow control</h2><table id=\"flow\"><tbody>{rows}</tbody></table>")
}

/// The notifications delivered while the console watched, newest first, with the handler's
/// reply and latency.
pub(crate) fn notifications(a: &Value, q: &ViewQuery) -> String {
    let list = items(&a["notifications"]);
    if list.is_empty() {
        return empty("No notifications since the console started watching.");
    }
    let rows: String = list
        .iter()
        .rev()
        .map(|n| {
            let to = match n["app"].as_str() {
                Some(app) => chip(app, "grey"),
                None => chip("simulators", "grey"),
            };
            let customer = match n["customer"].as_str() {
                Some(id) => format!(
                    "<a class=\"mono\" href=\"{}\">{}</a>",
                    escape(&customer_href(id, q)),
                    escape(id)
                ),
                None => String::new(),
            };
            let failed = if n["ok"] == Value::Bool(false) {
                chip("failed", "bad")
            } else {
                String::new()
            };
            format!(
                "<tr><td>{to}</td><td>{}</td><td>{customer}</td><td>{failed} {}</td><td class=\"mono\">{:.1} ms</td></tr>",
                e(&n["kind"]),
                e(&n["reply"]),
                n["latency_ms"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    format!(
        "<table><thead><tr><th>To</th><th>Notification</th><th>Customer</th><th>Reply</th><th>Latency</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

// ---- Campaigns ----

/// The campaigns section: messages with their newest sendings, status and progress, or why
/// they cannot be shown.
pub(crate) async fn campaigns(ctx: &Ctx) -> String {
    let Some(source) = &ctx.campaigns else {
        return "<p class=\"muted\">No campaigns source is configured. Start the emulator with <code>--campaigns-url http://HOST:PORT/ --campaigns-key KEY</code> (or <code>EmulatorBuilder::console_campaigns</code>) to show the sendings of a campaigns API here; the <code>elarian-campaigns</code> binary does this for its embedded emulator.</p>".into();
    };
    let source_line = format!(
        "<p class=\"muted\">From the campaigns API at <span class=\"mono\">{}</span>.</p>",
        escape(&source.url())
    );
    match campaigns::snapshot(source).await {
        Ok(snapshot) => format!("{source_line}{}", campaigns_html(&snapshot)),
        Err(err) => format!(
            "{source_line}<p class=\"result err\" id=\"campaigns-error\">{}</p>",
            escape(&err)
        ),
    }
}

fn campaigns_html(snapshot: &campaigns::Snapshot) -> String {
    if snapshot.messages.is_empty() {
        return empty("No messages yet.");
    }
    let shown = snapshot.messages.len();
    let count = if snapshot.total_messages > shown as u64 {
        format!("newest {shown} of {} messages", snapshot.total_messages)
    } else {
        format!("{shown} messages")
    };
    let messages: String = snapshot
        .messages
        .iter()
        .map(|view| {
            let m = &view.message;
            let channels: String = items(&m["channels"])
                .iter()
                .map(|c| chip(s(&c["type"]), "grey"))
                .collect();
            let campaign = match m["campaign_id"].as_str() {
                Some(id) => format!(" · campaign <span class=\"mono\">{}</span>", escape(id)),
                None => String::new(),
            };
            let sendings = match &view.sendings {
                Err(err) => format!("<p class=\"result err\">{}</p>", escape(err)),
                Ok(list) if list.is_empty() => empty("No sendings."),
                Ok(list) => {
                    let rows: String = list.iter().map(|(x, p)| sending_row(x, p)).collect();
                    format!(
                        "<table><thead><tr><th>Sending</th><th>Status</th><th>Scheduled</th><th>Progress</th><th>Sent</th><th>Delivered</th><th>Failed</th><th>Skipped</th></tr></thead><tbody>{rows}</tbody></table>"
                    )
                }
            };
            format!(
                "<div class=\"campaign\" data-message=\"{id}\"><h3>{name} <span class=\"muted\">#{id}</span> {status} {channels}</h3><p class=\"muted\">{count}{campaign} · updated {updated}</p>{sendings}</div>",
                id = e(&m["id"]),
                name = e(&m["name"]),
                status = status_chip(&m["sendings_status"]),
                count = match m["sendings_count"].as_u64() {
                    Some(1) => "1 sending".to_owned(),
                    Some(n) => format!("{n} sendings"),
                    None => "sendings".to_owned(),
                },
                updated = escape(&rfc3339_short(s(&m["updated_at"]))),
            )
        })
        .collect();
    format!("<p id=\"campaign-count\" class=\"muted\">{count}</p>{messages}")
}

fn sending_row(x: &Value, progress: &Result<Value, String>) -> String {
    let scheduled = match x["scheduled_at"].as_str() {
        Some(t) => escape(&rfc3339_short(t)),
        None => "—".into(),
    };
    let cells = match progress {
        Ok(p) => {
            let n = |k: &str| p[k].as_u64().unwrap_or(0);
            let skipped: u64 = p["skipped"]
                .as_object()
                .map(|m| m.values().filter_map(Value::as_u64).sum())
                .unwrap_or(0);
            // A recipient is settled once skipped or its dispatch has an outcome; a dispatch
            // that failed after sending is in both `sent` and `failed`.
            let handled = n("sent")
                + n("failed").saturating_sub(n("failed_after_send"))
                + n("unknown")
                + n("not_sent");
            let recipients = n("recipients");
            let settled = (handled + skipped).min(recipients);
            let percent = (settled * 100)
                .checked_div(recipients)
                .unwrap_or(0)
                .min(100);
            format!(
                "<td><progress max=\"100\" value=\"{percent}\"></progress> <span class=\"mono\">{settled}/{recipients}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{skipped}</td>",
                n("sent"),
                n("delivered"),
                n("failed")
            )
        }
        Err(err) => format!(
            "<td colspan=\"5\" class=\"result err\">{}</td>",
            escape(err)
        ),
    };
    format!(
        "<tr data-sending=\"{id}\"><td class=\"mono\">#{id}</td><td>{status}</td><td>{scheduled}</td>{cells}</tr>",
        id = e(&x["id"]),
        status = status_chip(&x["status"]),
    )
}

/// `2026-12-02T14:05:09.123Z` → `2026-12-02 14:05:09Z`, for a table.
fn rfc3339_short(t: &str) -> String {
    match (t.get(..10), t.get(11..19)) {
        (Some(date), Some(time)) if t.as_bytes().get(10) == Some(&b'T') => {
            let zone = if t.ends_with('Z') { "Z" } else { "" };
            format!("{date} {time}{zone}")
        }
        _ => t.to_owned(),
    }
}

// ---- Routes ----

fn fragment(html: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

fn failed(err: ApiError) -> Response {
    let status = err.0;
    let mut response = fragment(error_html(&err));
    *response.status_mut() = status;
    response
}

/// The customer list's query for the API snapshot.
pub(crate) fn list_query(q: &ViewQuery) -> ListQuery {
    ListQuery {
        org: q.org.clone(),
        q: q.q.clone(),
        limit: Some(200),
    }
}

/// `GET /fragments/customers?q=&org=`.
pub(crate) async fn customers_fragment(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<ViewQuery>,
) -> Response {
    match api::customer_list(&ctx, list_query(&q)).await {
        Ok(list) => fragment(customer_list(&list, &q)),
        Err(err) => failed(err),
    }
}

/// `GET /fragments/customers/{id}/{view|phone}?org=`.
pub(crate) async fn customer_fragment(
    State(ctx): State<Arc<Ctx>>,
    Path((id, section)): Path<(String, String)>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let render: fn(&Value, &ViewQuery) -> String = match section.as_str() {
        "view" => customer_view,
        "phone" => |c, _| customer_phone(c),
        _ => return (StatusCode::NOT_FOUND, "no such section").into_response(),
    };
    match api::customer_value(&ctx, &id, &q.org) {
        Ok(c) => fragment(render(&c, &q)),
        Err(err) => failed(err),
    }
}

/// `GET /fragments/payments?org=`.
pub(crate) async fn payments_fragment(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<ViewQuery>,
) -> Response {
    match api::payments_value(&ctx, &q.org) {
        Ok(p) => fragment(payments(&p, &q)),
        Err(err) => failed(err),
    }
}

/// `GET /fragments/activity/{connections|notifications}`.
pub(crate) async fn activity_fragment(
    State(ctx): State<Arc<Ctx>>,
    Path(section): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let a = api::activity_value(&ctx);
    match section.as_str() {
        "connections" => fragment(connections(&a)),
        "notifications" => fragment(notifications(&a, &q)),
        _ => (StatusCode::NOT_FOUND, "no such section").into_response(),
    }
}

/// `GET /fragments/campaigns`.
pub(crate) async fn campaigns_fragment(State(ctx): State<Arc<Ctx>>) -> Response {
    fragment(campaigns(&ctx).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_and_amounts() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00");
        assert_eq!(date_time(1_796_220_309_000), "2026-12-02 14:05:09");
        assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(money(&json!(1234567.5)), "1,234,567.50");
        assert_eq!(money(&json!(250)), "250.00");
        assert_eq!(money(&json!(-1000)), "-1,000.00");
        assert_eq!(money(&Value::Null), "");
        assert_eq!(url_encode("el_cst_a/b c"), "el_cst_a%2Fb%20c");
        assert_eq!(
            rfc3339_short("2026-12-02T14:05:09.123Z"),
            "2026-12-02 14:05:09Z"
        );
    }

    #[test]
    fn peer_strings_are_escaped_everywhere() {
        let evil = "<img src=x onerror=alert(1)>\"'";
        let customer = json!({
            "id": evil,
            "numbers": [{"number": evil, "provider": evil}],
            "tags": [{"key": evil, "value": evil, "expires_at": null}],
            "secondary_ids": [{"key": evil, "value": evil}],
            "created_at": 0,
            "metadata": {evil: evil},
            "apps": [{"app": evil, "data": evil, "lease_until": null, "reminders": [{"key": evil, "due": 0}]}],
            "channels": [{"state": "in_session", "channel": {"channel": "voice", "number": evil}, "session_id": evil}],
            "messages": [
                {"direction": "in", "id": evil, "channel": {"channel": evil, "number": evil}, "customer_number": evil, "at": 0, "session_id": evil, "app": evil, "text": evil, "status": null},
                {"direction": "out", "id": evil, "channel": {"channel": evil, "number": evil}, "customer_number": evil, "at": 0, "session_id": evil, "app": evil, "text": evil, "status": evil},
            ],
            "sessions": [{"session_id": evil, "channel": {"channel": evil, "number": evil}, "started_at": 0, "duration_secs": 1.0, "end_reason": evil}],
            "wallets": [{"id": evil, "currency": evil, "available": 1.0, "actual": 1.0}],
            "transactions": [{"id": evil, "debit": {"kind": evil, "label": evil}, "credit": {"kind": evil, "label": evil}, "debit_customer": evil, "credit_customer": null, "value": {"currency": evil, "amount": 1.0}, "status": "pending_confirmation", "updated_at": 0}],
            "activity": [{"source": evil, "updated_at": 0, "activities": [{"key": evil}]}],
        });
        let q = ViewQuery::default();
        let list = json!({"total": 1, "complete": true, "customers": [customer.clone()]});
        let activity = json!({
            "connections": [{"id": 1, "org": evil, "app": evil, "role": evil, "simplex": false, "since": 0}],
            "open_connections": 1,
            "commands": 3,
            "notifications": [{"app": evil, "kind": evil, "customer": evil, "ok": false, "reply": evil, "latency_ms": 1.0}],
        });
        for html in [
            customer_list(&list, &q),
            customer_view(&customer, &q),
            customer_phone(&customer),
            connections(&activity),
            notifications(&activity, &q),
            payments(
                &json!({"purses": [{"id": evil, "currency": evil, "available": 1.0, "actual": 1.0}], "transactions": customer["transactions"].clone(), "total_transactions": 1}),
                &q,
            ),
        ] {
            assert!(!html.contains("<img"), "{html}");
            assert!(!html.contains("\"'"), "{html}");
            assert!(html.contains("&lt;img"), "{html}");
        }
        let sending = json!({"id": evil, "status": evil, "scheduled_at": evil});
        let progress = json!({"recipients": 4, "sent": evil, "skipped": {evil: 1}});
        let html = campaigns_html(&campaigns::Snapshot {
            total_messages: 2,
            messages: vec![
                campaigns::MessageView {
                    message: json!({"id": evil, "name": evil, "campaign_id": evil, "sendings_status": evil, "sendings_count": evil, "updated_at": evil, "channels": [{"type": evil}]}),
                    sendings: Ok(vec![
                        (sending.clone(), Ok(progress)),
                        (sending, Err(evil.to_owned())),
                    ]),
                },
                campaigns::MessageView {
                    message: json!({"id": 2, "name": "b"}),
                    sendings: Err(evil.to_owned()),
                },
            ],
        });
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("1/4"), "one skipped of four settled: {html}");
    }

    #[test]
    fn a_thread_per_channel_with_sessions_and_statuses() {
        let m = |dir: &str, ch: &str, text: &str, session: Option<&str>, status: Option<&str>| json!({"direction": dir, "id": text, "channel": {"channel": ch, "number": "1"}, "customer_number": "+2547", "at": 0, "session_id": session, "app": "app", "text": text, "status": status});
        let c = json!({"messages": [
            m("in", "sms", "hi", None, None),
            m("out", "sms", "hello", None, Some("delivered")),
            m("in", "ussd", "", Some("s-1"), None),
            m("out", "ussd", "Menu", Some("s-1"), Some("sent")),
        ]});
        let html = threads(&c);
        assert_eq!(html.matches("class=\"thread\"").count(), 2);
        assert!(html.contains("data-channel=\"ussd\""));
        assert_eq!(html.matches("session s-1").count(), 1);
        assert!(html.contains("chip ok\">delivered"));
        assert!(html.contains("—"));
    }

    #[test]
    fn a_call_rings_until_the_customer_answers() {
        let mut c = json!({"id": "c", "channels": [{"state": "in_session", "channel": {"channel": "voice", "number": "+2547"}, "session_id": "v1"}], "messages": [], "transactions": []});
        assert!(customer_phone(&c).contains("Incoming call from +2547"));
        c["messages"] =
            json!([{"direction": "in", "session_id": "v1", "channel": {"channel": "voice"}}]);
        assert!(customer_phone(&c).contains("In call with +2547"));
    }
}
