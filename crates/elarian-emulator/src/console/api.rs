//! The console's JSON API (`/api/...`): snapshots of the state, and the customer's actions.
//!
//! Snapshots are read under the engine's lock in short slices: a search over many customers
//! scans [`SCAN_CHUNK`] slots per lock, so commands never wait behind a whole scan. Actions
//! build a `SimulatorToServerCommand` and run it through the same function a simulator
//! connection's request goes through, so an app cannot tell the console from a simulator.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use elarian_proto::{
    Cash, ChannelMessage, CustomerNumber, DataMapValue, InboundMessageBody, MessagingChannel,
    MessagingChannelNumber, OutboundMessage, PaymentChannel, PaymentChannelNumber,
    PaymentCounterParty, PaymentStatus, PaymentTransaction, ReceiveMessageSimulatorCommand,
    ReceivePaymentSimulatorCommand, SimulatorToServerCommand, SimulatorToServerCommandReply,
    UpdatePaymentStatusSimulatorCommand, UssdInputMessageBody, UssdSessionStatus,
    VoiceCallInputMessageBody, VoiceCallStatus, channel_message, data_map_value,
    inbound_message_body::Entry as InEntry, messaging_channel_state::State as ChState,
    outbound_message_body::Entry as OutEntry, payment_counter_party::Party,
    simulator_to_server_command::Entry as SimCmd, voice_call_action::Entry as Action,
};
use prost::Message;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Ctx;
use crate::engine::Identity;
use crate::record::CustomerRecord;
use crate::state::{OrgState, State as EngineState};

/// Customer slots scanned per lock by a search.
const SCAN_CHUNK: usize = 4096;
/// Most customers a list or search returns.
const MAX_LIST: usize = 200;
/// Most transactions the payments snapshot returns (newest first).
const MAX_TRANSACTIONS: usize = 300;
/// Longest text a customer action may carry, in bytes.
const MAX_TEXT: usize = 4096;

/// An API error: a status and a message, as `{"error": "..."}`.
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn not_found(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, msg.into())
}

/// The org a request is about: `?org=` or the first configured one.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OrgQuery {
    pub org: Option<String>,
}

fn org_index(st: &EngineState, org: &Option<String>) -> Result<usize, ApiError> {
    match org {
        Some(id) => st
            .org_index(id)
            .ok_or_else(|| not_found(format!("unknown org {id}"))),
        None if st.orgs.is_empty() => Err(not_found("no org configured")),
        None => Ok(0),
    }
}

fn millis_of(ts: &Option<prost_types::Timestamp>) -> Value {
    match ts {
        Some(t) => json!(crate::clock::from_timestamp(t)),
        None => Value::Null,
    }
}

fn secs_of(d: &Option<prost_types::Duration>) -> Value {
    match d {
        Some(d) => json!(d.seconds as f64 + f64::from(d.nanos) / 1e9),
        None => Value::Null,
    }
}

/// `MESSAGE_DELIVERY_STATUS_DELIVERED` → `delivered`.
fn short(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_lowercase()
}

fn channel_name(channel: i32) -> String {
    MessagingChannel::try_from(channel)
        .map(|c| short(c.as_str_name(), "MESSAGING_CHANNEL_"))
        .unwrap_or_else(|_| channel.to_string())
}

fn payment_status_name(status: i32) -> String {
    PaymentStatus::try_from(status)
        .map(|s| short(s.as_str_name(), "PAYMENT_STATUS_"))
        .unwrap_or_else(|_| status.to_string())
}

fn number_json(n: &CustomerNumber) -> Value {
    json!({
        "number": n.number,
        "provider": elarian_proto::CustomerNumberProvider::try_from(n.provider)
            .map(|p| short(p.as_str_name(), "CUSTOMER_NUMBER_PROVIDER_"))
            .unwrap_or_default(),
        "partition": n.partition,
    })
}

fn channel_number_json(c: &Option<MessagingChannelNumber>) -> Value {
    match c {
        Some(c) => json!({"channel": channel_name(c.channel), "number": c.number}),
        None => Value::Null,
    }
}

fn index_json(i: &elarian_proto::CustomerIndex) -> Value {
    let (key, value) = i
        .mapping
        .as_ref()
        .map(|m| (m.key.clone(), m.value.clone().unwrap_or_default()))
        .unwrap_or_default();
    let expires = crate::state::expiry(i);
    json!({"key": key, "value": value, "expires_at": expires})
}

fn data_text(d: &Option<DataMapValue>) -> Value {
    match d.as_ref().and_then(|d| d.value.as_ref()) {
        Some(data_map_value::Value::StringVal(s)) => json!(s),
        Some(data_map_value::Value::BytesVal(b)) => json!(format!("<{} bytes>", b.len())),
        None => Value::Null,
    }
}

fn cash_json(c: &Option<Cash>) -> Value {
    match c {
        Some(c) => json!({"currency": c.currency_code, "amount": c.amount}),
        None => Value::Null,
    }
}

/// A one-line text of what the app sent: the message text, the USSD menu, or the dialplan.
pub(crate) fn outbound_text(m: &OutboundMessage) -> String {
    match m.body.as_ref().and_then(|b| b.entry.as_ref()) {
        Some(OutEntry::Text(t)) | Some(OutEntry::Url(t)) => t.clone(),
        Some(OutEntry::Media(m)) => format!("[media] {}", m.url),
        Some(OutEntry::Location(l)) => format!("[location] {}, {}", l.latitude, l.longitude),
        Some(OutEntry::Email(e)) => format!("[email] {}: {}", e.subject, e.body_plain),
        Some(OutEntry::Template(t)) => format!("[template] {}", t.id),
        Some(OutEntry::Ussd(u)) => u.text.clone(),
        Some(OutEntry::Voice(v)) => v
            .actions
            .iter()
            .map(action_text)
            .collect::<Vec<_>>()
            .join(" → "),
        None => String::new(),
    }
}

fn action_text(a: &elarian_proto::VoiceCallAction) -> String {
    match &a.entry {
        Some(Action::Say(s)) => format!("say \"{}\"", s.text),
        Some(Action::Play(p)) => format!("play {}", p.url),
        Some(Action::GetDigits(g)) => {
            let prompt = match &g.prompt {
                Some(elarian_proto::get_digits_call_action::Prompt::Say(s)) => {
                    format!(" \"{}\"", s.text)
                }
                Some(elarian_proto::get_digits_call_action::Prompt::Play(p)) => {
                    format!(" {}", p.url)
                }
                None => String::new(),
            };
            format!("get digits{prompt}")
        }
        Some(Action::Dial(d)) => format!(
            "dial {}",
            d.customer_numbers
                .iter()
                .map(|n| n.number.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(Action::RecordSession(_)) => "record session".into(),
        Some(Action::GetRecording(_)) => "get recording".into(),
        Some(Action::Enqueue(_)) => "enqueue".into(),
        Some(Action::Dequeue(_)) => "dequeue".into(),
        Some(Action::Reject(_)) => "reject".into(),
        Some(Action::Redirect(r)) => format!("redirect {}", r.url),
        None => String::new(),
    }
}

fn inbound_text(parts: &[InboundMessageBody]) -> String {
    parts
        .iter()
        .filter_map(|p| p.entry.as_ref())
        .map(|e| match e {
            InEntry::Text(t) => t.clone(),
            InEntry::Media(m) => format!("[media] {}", m.url),
            InEntry::Location(l) => format!("[location] {}, {}", l.latitude, l.longitude),
            InEntry::Email(e) => format!("[email] {}: {}", e.subject, e.body_plain),
            InEntry::Voice(v) => {
                let status = VoiceCallStatus::try_from(v.status)
                    .map(|s| short(s.as_str_name(), "VOICE_CALL_STATUS_"))
                    .unwrap_or_default();
                match &v.dtmf_digits {
                    Some(d) => format!("[call {status}] pressed {d}"),
                    None => format!("[call {status}]"),
                }
            }
            InEntry::Ussd(u) => {
                let status = UssdSessionStatus::try_from(u.status)
                    .map(|s| short(s.as_str_name(), "USSD_SESSION_STATUS_"))
                    .unwrap_or_default();
                match u.text.as_deref() {
                    Some(t) if !t.is_empty() => t.to_owned(),
                    _ => format!("[dial, {status}]"),
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn message_json(m: &ChannelMessage) -> Value {
    match &m.entry {
        Some(channel_message::Entry::Received(r)) => json!({
            "direction": "in",
            "id": r.message_id,
            "channel": channel_number_json(&r.channel_number),
            "customer_number": r.customer_number.as_ref().map(|n| n.number.clone()),
            "at": millis_of(&r.created_at),
            "session_id": r.session_id,
            "app": r.app_id,
            "text": inbound_text(&r.parts),
            "status": Value::Null,
        }),
        Some(channel_message::Entry::Sent(s)) => {
            let is_voice = matches!(
                s.message
                    .as_ref()
                    .and_then(|m| m.body.as_ref())
                    .and_then(|b| b.entry.as_ref()),
                Some(OutEntry::Voice(_))
            );
            let is_ussd = matches!(
                s.message.as_ref().and_then(|m| m.body.as_ref()).and_then(|b| b.entry.as_ref()),
                Some(OutEntry::Ussd(u)) if u.is_terminal
            );
            json!({
                "direction": "out",
                "id": s.message_id,
                "channel": channel_number_json(&s.channel_number),
                "customer_number": s.customer_number.as_ref().map(|n| n.number.clone()),
                "at": millis_of(&s.created_at),
                "session_id": s.session_id,
                "app": s.app_id,
                "text": s.message.as_ref().map(outbound_text).unwrap_or_default(),
                "voice": is_voice,
                "terminal": is_ussd,
                "status": elarian_proto::MessageDeliveryStatus::try_from(s.status)
                    .map(|x| short(x.as_str_name(), "MESSAGE_DELIVERY_STATUS_"))
                    .unwrap_or_default(),
            })
        }
        None => Value::Null,
    }
}

fn party_json(p: &Option<PaymentCounterParty>) -> Value {
    match p.as_ref().and_then(|p| p.party.as_ref()) {
        Some(Party::Purse(p)) => json!({"kind": "purse", "label": p.purse_id}),
        Some(Party::Wallet(w)) => {
            json!({"kind": "wallet", "label": format!("{} / {}", w.customer_id, w.wallet_id), "customer": w.customer_id})
        }
        Some(Party::Customer(c)) => json!({
            "kind": "customer",
            "label": c.customer_number.as_ref().map(|n| n.number.clone()).unwrap_or_default(),
            "channel": c.channel_number.as_ref().map(|n| n.number.clone()),
        }),
        Some(Party::Channel(c)) => json!({
            "kind": "channel",
            "label": format!("{} → {}", c.source, c.destination),
        }),
        None => Value::Null,
    }
}

fn transaction_json(
    t: &PaymentTransaction,
    debit: &Option<String>,
    credit: &Option<String>,
) -> Value {
    json!({
        "id": t.transaction_id,
        "app": t.app_id,
        "debit": party_json(&t.debit_party),
        "credit": party_json(&t.credit_party),
        "debit_customer": debit,
        "credit_customer": credit,
        "value": cash_json(&t.value),
        "status": payment_status_name(t.status),
        "pending": matches!(
            PaymentStatus::try_from(t.status),
            Ok(PaymentStatus::Queued | PaymentStatus::PendingConfirmation | PaymentStatus::PendingValidation | PaymentStatus::Validated)
        ),
        "created_at": millis_of(&t.created_at),
        "updated_at": millis_of(&t.updated_at),
        "narration": t.narration,
    })
}

fn summary_json(c: &CustomerRecord) -> Value {
    let secondary: Vec<Value> = c
        .extra
        .as_ref()
        .map(|e| e.secondary_ids.iter().map(index_json).collect())
        .unwrap_or_default();
    json!({
        "id": c.id,
        "numbers": c.numbers.iter().map(number_json).collect::<Vec<_>>(),
        "tags": c.tags.iter().map(index_json).collect::<Vec<_>>(),
        "secondary_ids": secondary,
        "created_at": c.created_at,
        "messages": c.extra.as_ref().map_or(0, |e| e.packed_messages.len()),
    })
}

/// Whether a customer matches a search: a case-insensitive substring of its id, a number, a
/// secondary id or a tag (`key`, `value` or `key=value`).
fn matches(c: &CustomerRecord, q: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(q);
    let index = |i: &elarian_proto::CustomerIndex| {
        i.mapping.as_ref().is_some_and(|m| {
            let v = m.value.as_deref().unwrap_or("");
            has(&m.key) || has(v) || has(&format!("{}={v}", m.key))
        })
    };
    has(&c.id)
        || c.numbers.iter().any(|n| has(&n.number))
        || c.tags.iter().any(index)
        || c.extra
            .as_ref()
            .is_some_and(|e| e.secondary_ids.iter().any(index))
}

/// Query of the customer list.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub org: Option<String>,
    pub q: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /api/customers?q=&org=&limit=`: customers matching the search (all without one), at
/// most `limit` (≤ 200), with the total count of the org.
pub(crate) async fn customers(
    State(ctx): State<Arc<Ctx>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    customer_list(&ctx, query).await.map(Json)
}

/// The customer list snapshot the API and the console's list fragment share.
pub(crate) async fn customer_list(ctx: &Ctx, query: ListQuery) -> Result<Value, ApiError> {
    let q = query.q.unwrap_or_default().trim().to_lowercase();
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let (org, total, slots) = ctx.engine.read(|st| {
        let org = org_index(st, &query.org)?;
        let o = &st.orgs[org];
        Ok::<_, ApiError>((org, o.customers.len(), o.customers.slot_count()))
    })?;
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut complete = true;
    while scanned < slots {
        let end = (scanned + SCAN_CHUNK).min(slots);
        let full = ctx.engine.read(|st| {
            let Some(o) = st.orgs.get(org) else {
                return true;
            };
            for slot in scanned..end {
                let Some(c) = u32::try_from(slot).ok().and_then(|s| o.customers.at(s)) else {
                    continue;
                };
                if q.is_empty() || matches(&c, &q) {
                    found.push(summary_json(&c));
                    if found.len() >= limit {
                        return true;
                    }
                }
            }
            false
        });
        scanned = end;
        if full {
            complete = scanned >= slots;
            break;
        }
        // Lets commands that queued behind this slice run before the next one.
        tokio::task::yield_now().await;
    }
    Ok(json!({
        "total": total,
        "customers": found,
        "complete": complete,
    }))
}

/// `GET /api/customers/{id}`: one customer's whole state, conversations and payments.
pub(crate) async fn customer(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    Query(query): Query<OrgQuery>,
) -> Result<Json<Value>, ApiError> {
    customer_value(&ctx, &id, &query.org).map(Json)
}

/// One customer's snapshot, shared by the API and the customer page's fragments.
pub(crate) fn customer_value(ctx: &Ctx, id: &str, org: &Option<String>) -> Result<Value, ApiError> {
    let now = ctx.engine.now();
    ctx.engine.read(|st| {
        let org = org_index(st, org)?;
        let o = &st.orgs[org];
        let c = o
            .customers
            .get(id)
            .ok_or_else(|| not_found(format!("no customer {id}")))?;
        Ok(customer_json(o, &c, now))
    })
}

fn customer_json(o: &OrgState, c: &CustomerRecord, now: i64) -> Value {
    let none = crate::record::CustomerExtra::default();
    let extra = c.extra.as_deref().unwrap_or(&none);
    let mut metadata: Vec<(String, Value)> = extra
        .metadata_map()
        .into_iter()
        .map(|(k, v)| (k, data_text(&Some(v))))
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let apps: Vec<Value> = c
        .apps
        .iter()
        .map(|a| {
            json!({
                "app": a.app_id,
                "data": data_text(&a.data),
                "lease_until": if a.lease_until > now { json!(a.lease_until) } else { Value::Null },
                "reminders": a.reminders.iter().filter_map(|r| r.reminder.as_ref().map(|rem| json!({
                    "key": rem.key,
                    "due": r.due,
                    "interval_secs": secs_of(&rem.interval),
                    "payload": rem.payload,
                    "tag": r.origin.as_ref().and_then(|o| o.tag.as_ref()).map(index_json),
                }))).collect::<Vec<_>>(),
            })
        })
        .collect();
    let channels: Vec<Value> = extra
        .channels()
        .iter()
        .filter_map(|s| s.state.as_ref())
        .map(|s| match s {
            ChState::Active(a) => json!({
                "state": "active",
                "channel": channel_number_json(&a.channel_number),
                "customer_number": a.customer_number.as_ref().map(|n| n.number.clone()),
                "since": millis_of(&a.allowed_at),
            }),
            ChState::InSession(a) => json!({
                "state": "in_session",
                "channel": channel_number_json(&a.channel_number),
                "customer_number": a.customer_number.as_ref().map(|n| n.number.clone()),
                "since": millis_of(&a.started_at),
                "session_id": a.session_id,
                "expires_at": millis_of(&a.expires_at),
            }),
            ChState::Blocked(a) => json!({
                "state": "blocked",
                "channel": channel_number_json(&a.channel_number),
                "customer_number": a.customer_number.as_ref().map(|n| n.number.clone()),
                "since": millis_of(&a.blocked_at),
            }),
        })
        .collect();
    let sessions: Vec<Value> = extra
        .sessions()
        .iter()
        .map(|s| {
            json!({
                "session_id": s.session_id,
                "channel": channel_number_json(&s.channel_number),
                "started_at": millis_of(&s.started_at),
                "duration_secs": secs_of(&s.duration),
                "end_reason": elarian_proto::MessagingSessionEndReason::try_from(s.end_reason)
                    .map(|r| short(r.as_str_name(), "MESSAGING_SESSION_END_REASON_"))
                    .unwrap_or_default(),
            })
        })
        .collect();
    let mut wallets: Vec<Value> = extra
        .wallets
        .iter()
        .map(|(id, b)| {
            json!({
                "id": id,
                "currency": b.currency_code,
                "available": b.available.as_ref().map(|c| c.amount),
                "actual": b.actual.as_ref().map(|c| c.amount),
            })
        })
        .collect();
    wallets.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let transactions: Vec<Value> = extra
        .transactions
        .iter()
        .rev()
        .filter_map(|id| o.transactions.get(id))
        .filter_map(|t| {
            t.transaction
                .as_ref()
                .map(|x| transaction_json(x, &t.debit_customer_id, &t.credit_customer_id))
        })
        .collect();
    let activity: Vec<Value> = extra
        .activity()
        .iter()
        .map(|a| {
            json!({
                "source": a.source,
                "session_id": a.session_id,
                "app": a.app_id,
                "updated_at": millis_of(&a.updated_at),
                "activities": a.activities.iter().map(|x| json!({
                    "key": x.key,
                    "at": millis_of(&x.created_at),
                    "properties": x.properties,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut summary = summary_json(c);
    if let Some(obj) = summary.as_object_mut() {
        obj.insert(
            "metadata".into(),
            json!(metadata.into_iter().collect::<serde_json::Map<_, _>>()),
        );
        obj.insert("apps".into(), json!(apps));
        obj.insert("channels".into(), json!(channels));
        obj.insert(
            "messages".into(),
            json!(
                extra
                    .messages()
                    .iter()
                    .map(message_json)
                    .collect::<Vec<_>>()
            ),
        );
        obj.insert("sessions".into(), json!(sessions));
        obj.insert("wallets".into(), json!(wallets));
        obj.insert("transactions".into(), json!(transactions));
        obj.insert("activity".into(), json!(activity));
        obj.insert(
            "payment_channels".into(),
            json!(
                extra
                    .payment_channels
                    .iter()
                    .map(|p| p.number.clone())
                    .collect::<Vec<_>>()
            ),
        );
    }
    summary
}

/// `GET /api/overview`: orgs with their apps, channel numbers and purses (no API keys).
pub(crate) async fn overview(State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    Json(overview_value(&ctx))
}

/// The orgs' configuration and customer counts, shared by the API and the pages.
pub(crate) fn overview_value(ctx: &Ctx) -> Value {
    let counts: Vec<usize> = ctx
        .engine
        .read(|st| st.orgs.iter().map(|o| o.customers.len()).collect());
    let orgs: Vec<Value> = ctx
        .engine
        .config()
        .orgs
        .iter()
        .zip(counts)
        .map(|(o, customers)| {
            let ch = &o.channels;
            json!({
                "id": o.id,
                "apps": o.apps.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
                "customers": customers,
                "purses": o.purses.iter().map(|p| json!({"id": p.id, "currency": p.currency})).collect::<Vec<_>>(),
                "channels": {
                    "sms": ch.sms, "ussd": ch.ussd, "voice": ch.voice, "whatsapp": ch.whatsapp,
                    "telegram": ch.telegram, "messenger": ch.messenger, "email": ch.email,
                    "payment": ch.payment,
                },
            })
        })
        .collect();
    json!({ "orgs": orgs, "campaigns": ctx.campaigns.is_some() })
}

/// `GET /api/payments?org=`: purses and the newest transactions.
pub(crate) async fn payments(
    State(ctx): State<Arc<Ctx>>,
    Query(query): Query<OrgQuery>,
) -> Result<Json<Value>, ApiError> {
    payments_value(&ctx, &query.org).map(Json)
}

/// Purses and the newest transactions, shared by the API and the payments page.
pub(crate) fn payments_value(ctx: &Ctx, org: &Option<String>) -> Result<Value, ApiError> {
    ctx.engine
        .read(|st| {
            let org = org_index(st, org)?;
            let o = &st.orgs[org];
            let mut purses: Vec<Value> = o
                .purses
                .values()
                .map(|p| json!({"id": p.id, "currency": p.currency, "available": p.available, "actual": p.actual}))
                .collect();
            purses.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
            let mut txns: Vec<(i64, Value)> = o
                .transactions
                .values()
                .filter_map(|t| {
                    let x = t.transaction.as_ref()?;
                    let at = x.created_at.as_ref().map(crate::clock::from_timestamp).unwrap_or(0);
                    Some((at, transaction_json(x, &t.debit_customer_id, &t.credit_customer_id)))
                })
                .collect();
            let total = txns.len();
            txns.sort_by_key(|t| std::cmp::Reverse(t.0));
            txns.truncate(MAX_TRANSACTIONS);
            Ok(json!({
                "purses": purses,
                "transactions": txns.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
                "total_transactions": total,
            }))
        })
}

/// `GET /api/activity`: open connections, recent notifications and commands applied.
pub(crate) async fn activity(State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    Json(activity_value(&ctx))
}

/// Connections, recent notifications and the command count, shared by the API and the page.
pub(crate) fn activity_value(ctx: &Ctx) -> Value {
    let feed = ctx.engine.feed();
    let (connections, open) = feed.connections();
    let recent: Vec<Value> = feed
        .recent()
        .iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect();
    let delivery = ctx.hub.stats();
    json!({
        "connections": connections,
        "open_connections": open,
        "notifications": recent,
        "commands": feed.commands(),
        // What flow control refused or let go since the start: nothing is shed silently.
        "flow": {
            "simulator_commands_rejected": delivery.commands_rejected,
            "notifications_of_commands_not_queued": delivery.refused_for_commands,
            "paced_notifications_refused": delivery.refused_paced,
            "notifications_unanswered": delivery.unanswered,
            "phone_notifications_not_kept": delivery.no_simulator,
            "history_entries_trimmed": ctx.engine.history_trimmed(),
        },
    })
}

// ---- Being the customer ----

/// Runs a simulator command as the console's simulator identity for `org`/`app`.
async fn simulate(
    ctx: &Ctx,
    org: &str,
    app: &str,
    entry: SimCmd,
) -> Result<SimulatorToServerCommandReply, ApiError> {
    let config = ctx.engine.config();
    let o = config
        .org(org)
        .ok_or_else(|| not_found(format!("unknown org {org}")))?;
    if o.app(app).is_none() {
        return Err(not_found(format!("unknown app {app} in org {org}")));
    }
    let who = Identity::simulator(org, app);
    let cmd = SimulatorToServerCommand { entry: Some(entry) };
    let data = Bytes::from(cmd.encode_to_vec());
    let reply = crate::server::simulator_command(&ctx.engine, &ctx.hub, &who, ctx.limits, data)
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    SimulatorToServerCommandReply::decode(reply)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn reply_json(r: &SimulatorToServerCommandReply, extra: Value) -> Json<Value> {
    let mut v = json!({
        "status": r.status,
        "description": r.description,
        "reply": r.message.as_ref().map(outbound_text),
        "terminal": matches!(
            r.message.as_ref().and_then(|m| m.body.as_ref()).and_then(|b| b.entry.as_ref()),
            Some(OutEntry::Ussd(u)) if u.is_terminal
        ),
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    Json(v)
}

fn defaults(
    ctx: &Ctx,
    org: Option<String>,
    app: Option<String>,
) -> Result<(String, String), ApiError> {
    let config = ctx.engine.config();
    let o = match &org {
        Some(id) => config.org(id),
        None => config.orgs.first(),
    }
    .ok_or_else(|| not_found("unknown org"))?;
    let app = match app {
        Some(a) => a,
        None => o
            .apps
            .first()
            .map(|a| a.id.clone())
            .ok_or_else(|| not_found("the org has no app"))?,
    };
    Ok((o.id.clone(), app))
}

fn checked(text: &str, what: &str) -> Result<(), ApiError> {
    if text.len() > MAX_TEXT {
        return Err(bad(format!("{what} is longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}

fn parse_channel(name: &str) -> Result<MessagingChannel, ApiError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sms" => MessagingChannel::Sms,
        "whatsapp" => MessagingChannel::Whatsapp,
        "telegram" => MessagingChannel::Telegram,
        "messenger" | "fb_messenger" => MessagingChannel::FbMessenger,
        "email" => MessagingChannel::Email,
        "ussd" => MessagingChannel::Ussd,
        "voice" => MessagingChannel::Voice,
        other => return Err(bad(format!("unknown channel {other}"))),
    })
}

/// A customer's message to an app channel.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageRequest {
    org: Option<String>,
    app: Option<String>,
    customer_number: String,
    channel: String,
    channel_number: String,
    text: String,
    subject: Option<String>,
}

/// `POST /api/simulate/message`: the customer sends a text (or an email) to an app channel.
pub(crate) async fn send_message(
    State(ctx): State<Arc<Ctx>>,
    Json(req): Json<MessageRequest>,
) -> Result<Json<Value>, ApiError> {
    checked(&req.text, "text")?;
    let (org, app) = defaults(&ctx, req.org, req.app)?;
    let channel = parse_channel(&req.channel)?;
    let part = match channel {
        MessagingChannel::Email => InEntry::Email(elarian_proto::EmailMessageBody {
            subject: req.subject.unwrap_or_default(),
            body_plain: req.text,
            ..Default::default()
        }),
        MessagingChannel::Ussd | MessagingChannel::Voice => {
            return Err(bad("use /api/simulate/ussd or /api/simulate/voice"));
        }
        _ => InEntry::Text(req.text),
    };
    let reply = simulate(
        &ctx,
        &org,
        &app,
        SimCmd::ReceiveMessage(ReceiveMessageSimulatorCommand {
            customer_number: req.customer_number,
            channel_number: Some(MessagingChannelNumber {
                channel: channel as i32,
                number: req.channel_number,
            }),
            parts: vec![InboundMessageBody { entry: Some(part) }],
            ..Default::default()
        }),
    )
    .await?;
    Ok(reply_json(&reply, json!({})))
}

/// One USSD step: a dial (no `session_id`) or the customer's input in a session.
#[derive(Debug, Deserialize)]
pub(crate) struct UssdRequest {
    org: Option<String>,
    app: Option<String>,
    customer_number: String,
    code: String,
    session_id: Option<String>,
    #[serde(default)]
    text: String,
    /// True to hang up.
    #[serde(default)]
    cancel: bool,
}

/// `POST /api/simulate/ussd`: dials a USSD code or answers the current menu; the reply carries
/// the app's next menu and the session id to continue with.
pub(crate) async fn ussd(
    State(ctx): State<Arc<Ctx>>,
    Json(req): Json<UssdRequest>,
) -> Result<Json<Value>, ApiError> {
    checked(&req.text, "text")?;
    let (org, app) = defaults(&ctx, req.org, req.app)?;
    let session_id = match req.session_id.filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => crate::ids::session_id(),
    };
    let status = if req.cancel {
        UssdSessionStatus::Incomplete
    } else {
        UssdSessionStatus::Active
    };
    let reply = simulate(
        &ctx,
        &org,
        &app,
        SimCmd::ReceiveMessage(ReceiveMessageSimulatorCommand {
            customer_number: req.customer_number,
            channel_number: Some(MessagingChannelNumber {
                channel: MessagingChannel::Ussd as i32,
                number: req.code,
            }),
            parts: vec![InboundMessageBody {
                entry: Some(InEntry::Ussd(UssdInputMessageBody {
                    status: status as i32,
                    text: Some(req.text),
                })),
            }],
            session_id: Some(session_id.clone()),
            ..Default::default()
        }),
    )
    .await?;
    Ok(reply_json(&reply, json!({ "session_id": session_id })))
}

/// A voice call event: answer, press digits or hang up.
#[derive(Debug, Deserialize)]
pub(crate) struct VoiceRequest {
    org: Option<String>,
    app: Option<String>,
    customer_number: String,
    channel_number: String,
    session_id: Option<String>,
    /// `answer` (also to call in), `digits` or `hangup`.
    action: String,
    digits: Option<String>,
}

/// `POST /api/simulate/voice`: the customer answers (or places) a call, presses digits or hangs
/// up; the reply carries the app's dialplan.
pub(crate) async fn voice(
    State(ctx): State<Arc<Ctx>>,
    Json(req): Json<VoiceRequest>,
) -> Result<Json<Value>, ApiError> {
    let (org, app) = defaults(&ctx, req.org, req.app)?;
    let (status, digits) = match req.action.as_str() {
        "answer" => (VoiceCallStatus::Answered, None),
        "digits" => {
            let d = req.digits.unwrap_or_default();
            if d.is_empty()
                || d.len() > 64
                || !d
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            {
                return Err(bad("digits must be 1 to 64 of 0-9, * and #"));
            }
            (VoiceCallStatus::Answered, Some(d))
        }
        "hangup" => (VoiceCallStatus::Completed, None),
        other => return Err(bad(format!("unknown voice action {other}"))),
    };
    let session_id = match req.session_id.filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => crate::ids::session_id(),
    };
    let reply = simulate(
        &ctx,
        &org,
        &app,
        SimCmd::ReceiveMessage(ReceiveMessageSimulatorCommand {
            customer_number: req.customer_number,
            channel_number: Some(MessagingChannelNumber {
                channel: MessagingChannel::Voice as i32,
                number: req.channel_number,
            }),
            parts: vec![InboundMessageBody {
                entry: Some(InEntry::Voice(VoiceCallInputMessageBody {
                    direction: elarian_proto::CustomerEventDirection::Outbound as i32,
                    status: status as i32,
                    dtmf_digits: digits,
                    ..Default::default()
                })),
            }],
            session_id: Some(session_id.clone()),
            ..Default::default()
        }),
    )
    .await?;
    Ok(reply_json(&reply, json!({ "session_id": session_id })))
}

/// A customer's payment into a paybill.
#[derive(Debug, Deserialize)]
pub(crate) struct PaymentRequest {
    org: Option<String>,
    app: Option<String>,
    customer_number: String,
    channel_number: String,
    currency: String,
    amount: f64,
}

/// `POST /api/simulate/payment`: the customer pays into a payment channel (paybill).
pub(crate) async fn pay(
    State(ctx): State<Arc<Ctx>>,
    Json(req): Json<PaymentRequest>,
) -> Result<Json<Value>, ApiError> {
    if !req.amount.is_finite() || req.amount <= 0.0 {
        return Err(bad("amount must be a positive number"));
    }
    let (org, app) = defaults(&ctx, req.org, req.app)?;
    let reply = simulate(
        &ctx,
        &org,
        &app,
        SimCmd::ReceivePayment(ReceivePaymentSimulatorCommand {
            transaction_id: crate::ids::transaction_id(),
            channel_number: Some(PaymentChannelNumber {
                channel: PaymentChannel::Cellular as i32,
                number: req.channel_number,
            }),
            customer_number: req.customer_number,
            value: Some(Cash {
                currency_code: req.currency,
                amount: req.amount,
            }),
            status: PaymentStatus::Success as i32,
        }),
    )
    .await?;
    Ok(reply_json(&reply, json!({})))
}

/// The customer's answer to a checkout prompt (or the channel's report on a payment).
#[derive(Debug, Deserialize)]
pub(crate) struct PaymentStatusRequest {
    org: Option<String>,
    app: Option<String>,
    /// `success` (approve), `failed` (decline) or another payment status name.
    status: String,
}

/// `POST /api/simulate/payments/{transaction_id}`: approves or declines a pending payment.
pub(crate) async fn payment_status(
    State(ctx): State<Arc<Ctx>>,
    Path(transaction_id): Path<String>,
    Json(req): Json<PaymentStatusRequest>,
) -> Result<Json<Value>, ApiError> {
    let (org, app) = defaults(&ctx, req.org, req.app)?;
    let name = format!("PAYMENT_STATUS_{}", req.status.to_ascii_uppercase());
    let status = PaymentStatus::from_str_name(&name)
        .ok_or_else(|| bad(format!("unknown payment status {}", req.status)))?;
    let reply = simulate(
        &ctx,
        &org,
        &app,
        SimCmd::UpdatePaymentStatus(UpdatePaymentStatusSimulatorCommand {
            transaction_id,
            status: status as i32,
        }),
    )
    .await?;
    Ok(reply_json(&reply, json!({})))
}
