//! The network side of a connection: SETUP authentication and command handling.
//!
//! A SETUP's data must decode as `AppConnectionMetadata` (else INVALID_SETUP) and carry valid
//! credentials (else REJECTED_SETUP, with the reason). App connections send
//! `AppToServerCommand`s, simulator connections `SimulatorToServerCommand`s. A request that does
//! not decode gets an APPLICATION_ERROR on its stream and the connection carries on; an unknown
//! command gets a `status = false` reply.

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use bytes::Bytes;
use elarian_proto::{
    AppConnectionMetadata, AppToServerCommand, AppToServerCommandReply, SimulatorToServerCommand,
};
use elarian_transport::BoxFuture;
use elarian_transport::{ErrorCode, Incoming, Payload, RequestHandler, StreamError};
use prost::Message;
use tokio::sync::oneshot;

use crate::delivery::{Hub, Reservation};
use crate::engine::{Engine, Identity, Outcome};
use crate::reply_encoding::encode_reply;

/// Per-connection settings of command handling.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommandLimits {
    /// Largest command accepted, in bytes.
    pub max_command_bytes: usize,
    /// How long a simulator's received message waits for the app's reply.
    pub reply_timeout: Duration,
}

/// Answers the commands of one authenticated connection.
struct ConnectionResponder {
    ctx: Arc<ConnectionContext>,
}

/// What every command of a connection needs, shared by its requests: one reference count per
/// request instead of copies of the identity's strings.
struct ConnectionContext {
    engine: Arc<Engine>,
    hub: Arc<Hub>,
    who: Identity,
    limits: CommandLimits,
    /// Tags every log line of this connection's commands (kind, org, app).
    span: tracing::Span,
}

impl RequestHandler for ConnectionResponder {
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let ctx = &self.ctx;
        // Entered for the synchronous part (the in-memory fast path runs the command here);
        // the futures below carry it themselves.
        let _span = ctx.span.enter();
        let limit = ctx.limits.max_command_bytes;
        if payload.data.len() > limit {
            return Box::pin(std::future::ready(Err(StreamError::rejected(format!(
                "command of {} bytes exceeds the limit of {limit} bytes",
                payload.data.len()
            )))));
        }
        if ctx.who.simulator {
            let ctx = ctx.clone();
            let span = ctx.span.clone();
            return Box::pin(
                async move {
                    let ConnectionContext {
                        engine,
                        hub,
                        who,
                        limits,
                        ..
                    } = &*ctx;
                    let reply = simulator_command(engine, hub, who, *limits, payload.data).await?;
                    Ok(Payload::new(reply))
                }
                .instrument(span),
            );
        }
        let cmd = match decode_app_command(&ctx.who, payload.data) {
            Ok(cmd) => cmd,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        if !ctx.engine.has_write_queue() {
            // No data dir, so no write queue to wait for: the command runs now, and one that
            // causes no notification (most) is answered without a future of its own. The
            // transport boxes whatever future it gets, and copying a command's whole async
            // state into that box was a tenth of the emulator's cost per command.
            let out = ctx.engine.app_command(&ctx.who, cmd);
            if out.durable.is_done() && out.effects.is_empty() {
                let reply = encode_reply(&out.reply);
                return Box::pin(std::future::ready(Ok(Payload::new(reply))));
            }
            let deadline = crate::clock::deadline_after(ctx.hub.limits().enqueue_timeout);
            let span = ctx.span.clone();
            return Box::pin(finish_app_command(ctx.clone(), out, deadline).instrument(span));
        }
        let ctx = ctx.clone();
        let span = ctx.span.clone();
        Box::pin(
            async move {
                let deadline = crate::clock::deadline_after(ctx.hub.limits().enqueue_timeout);
                writes_ready(&ctx.engine, &ctx.hub).await?;
                let out = ctx.engine.app_command(&ctx.who, cmd);
                finish_app_command(ctx, out, deadline).await
            }
            .instrument(span),
        )
    }
}

fn decode_app_command(who: &Identity, data: Bytes) -> Result<AppToServerCommand, StreamError> {
    let cmd = AppToServerCommand::decode(data).map_err(|e| {
        StreamError::application(format!("request is not an AppToServerCommand: {e}"))
    })?;
    tracing::debug!(org = ?who.org_id, app = ?who.app_id, command = command_name(&cmd), "app command");
    Ok(cmd)
}

/// The rest of an app command once the engine ran it: waits for its commit, then queues its
/// notifications (within `deadline`) before the reply goes out.
async fn finish_app_command(
    ctx: Arc<ConnectionContext>,
    out: Outcome<AppToServerCommandReply>,
    deadline: tokio::time::Instant,
) -> Result<Payload, StreamError> {
    out.durable.wait().await.map_err(|e| {
        tracing::error!(error = %e, "command not persisted");
        StreamError::application(e.to_string())
    })?;
    let mut reply = out.reply;
    if out.effects.len() > PACED_DISPATCH_THRESHOLD {
        // A tag command over many customers: answered now (its reply names the work), its
        // notifications follow at the apps' pace.
        let hub = ctx.hub.clone();
        tokio::spawn(async move { hub.deliver_paced(out.effects).await });
    } else if !out.effects.is_empty() {
        let undelivered = ctx
            .hub
            .deliver(out.effects, None, deadline, Reservation::default())
            .await;
        if !undelivered.is_empty() {
            mark_undelivered(&mut reply, &undelivered.describe());
        }
    }
    Ok(Payload::new(encode_reply(&reply)))
}

/// Waits for room in the data dir's write queue, outside the state lock.
async fn writes_ready(engine: &Engine, hub: &Hub) -> Result<(), StreamError> {
    engine
        .ready_for_writes(hub.limits().enqueue_timeout)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "command refused");
            StreamError::application(e.to_string())
        })
}

/// Effects of one command beyond this many (tag commands over many customers) are queued from
/// a task at the apps' pace rather than within the command's budget.
const PACED_DISPATCH_THRESHOLD: usize = 256;

/// Turns a reply into a failure whose description says which notifications were not queued.
/// The command's state change stands: only the notification is missing.
fn mark_undelivered(reply: &mut AppToServerCommandReply, why: &str) {
    use elarian_proto::app_to_server_command_reply::Entry as R;
    use elarian_proto::{MessageDeliveryStatus, MessagingConsentUpdateStatus, PaymentStatus};
    let describe = |description: &mut String| {
        *description = if description.is_empty() {
            why.to_owned()
        } else {
            format!("{description}; {why}")
        };
    };
    match reply.entry.as_mut() {
        Some(R::GetCustomerState(r)) => {
            r.status = false;
            describe(&mut r.description);
        }
        Some(R::UpdateCustomerState(r)) => {
            r.status = false;
            describe(&mut r.description);
        }
        Some(R::UpdateCustomerAppData(r)) => {
            r.status = false;
            describe(&mut r.description);
        }
        Some(R::LeaseCustomerAppData(r)) => {
            r.status = false;
            describe(&mut r.description);
        }
        Some(R::SendMessage(r)) => {
            r.status = MessageDeliveryStatus::ApplicationError as i32;
            describe(&mut r.description);
        }
        Some(R::UpdateMessagingConsent(r)) => {
            r.status = MessagingConsentUpdateStatus::ApplicationError as i32;
            describe(&mut r.description);
        }
        Some(R::InitiatePayment(r)) => {
            r.status = PaymentStatus::ApplicationError as i32;
            describe(&mut r.description);
        }
        Some(R::TagCommand(r)) => {
            r.status = false;
            describe(&mut r.description);
        }
        Some(R::CustomerActivity(r)) => {
            r.status = false;
            describe(&mut r.description);
        }
        Some(R::ReplayPayment(r)) => {
            r.status = false;
            describe(&mut r.description);
        }
        // No status field to report it in (no command producing notifications lands here).
        Some(R::GenerateAuthToken(_)) | None => {
            tracing::warn!(why, "notifications not delivered");
        }
    }
}

pub(crate) async fn simulator_command(
    engine: &Engine,
    hub: &Hub,
    who: &Identity,
    limits: CommandLimits,
    data: Bytes,
) -> Result<Bytes, StreamError> {
    let cmd = SimulatorToServerCommand::decode(data).map_err(|e| {
        StreamError::application(format!("request is not a SimulatorToServerCommand: {e}"))
    })?;
    let deadline = crate::clock::deadline_after(hub.limits().enqueue_timeout);
    // Room for the notification to the apps is reserved before the command runs: a command
    // that finds no room within its budget is refused unprocessed (REJECTED), which its client
    // sends again, rather than processed with its notification lost.
    let Some(reserved) = hub.reserve_app_room(&who.org_id, deadline).await else {
        return Err(StreamError::rejected(
            "the app's notification queue is full; the command was not processed",
        ));
    };
    writes_ready(engine, hub).await?;
    let out = engine.simulator_command(who, cmd);
    let persisted = |r: Result<(), crate::store::StoreError>| {
        r.map_err(|e| {
            tracing::error!(error = %e, "command not persisted");
            StreamError::application(e.to_string())
        })
    };
    persisted(out.durable.wait().await)?;
    let Some((awaited, exchange)) = out.exchange else {
        let mut reply = out.reply;
        let undelivered = hub.deliver(out.effects, None, deadline, reserved).await;
        if !undelivered.is_empty() {
            reply.status = false;
            reply.description = format!("{}; {}", reply.description, undelivered.describe());
        }
        return Ok(Bytes::from(reply.encode_to_vec()));
    };
    let (tx, rx) = oneshot::channel();
    let undelivered = hub
        .deliver(out.effects, Some((awaited, tx)), deadline, reserved)
        .await;
    // A refused notification drops its reply sender, so this then ends at once.
    let message = match tokio::time::timeout(limits.reply_timeout, rx).await {
        Ok(Ok(message)) => message,
        Ok(Err(_)) => None,
        Err(_) => {
            tracing::debug!(app = ?who.app_id, "no app reply to a received message in time");
            None
        }
    };
    writes_ready(engine, hub).await?;
    let done = engine.inbound_reply(who, &exchange, message);
    persisted(done.durable.wait().await)?;
    let deadline = crate::clock::deadline_after(hub.limits().enqueue_timeout);
    let more = hub
        .deliver(done.effects, None, deadline, Reservation::default())
        .await;
    let mut reply = done.reply;
    for u in [undelivered, more] {
        if !u.is_empty() {
            reply.status = false;
            reply.description = format!("{}; {}", reply.description, u.describe());
        }
    }
    Ok(Bytes::from(reply.encode_to_vec()))
}

fn command_name(cmd: &AppToServerCommand) -> &'static str {
    use elarian_proto::app_to_server_command::Entry as E;
    match &cmd.entry {
        None => "unknown",
        Some(E::GenerateAuthToken(_)) => "GenerateAuthToken",
        Some(E::CreateCustomer(_)) => "CreateCustomer",
        Some(E::GetCustomerState(_)) => "GetCustomerState",
        Some(E::AdoptCustomerState(_)) => "AdoptCustomerState",
        Some(E::AddCustomerReminder(_)) => "AddCustomerReminder",
        Some(E::AddCustomerReminderTag(_)) => "AddCustomerReminderTag",
        Some(E::CancelCustomerReminder(_)) => "CancelCustomerReminder",
        Some(E::CancelCustomerReminderTag(_)) => "CancelCustomerReminderTag",
        Some(E::UpdateCustomerTag(_)) => "UpdateCustomerTag",
        Some(E::DeleteCustomerTag(_)) => "DeleteCustomerTag",
        Some(E::UpdateCustomerSecondaryId(_)) => "UpdateCustomerSecondaryId",
        Some(E::DeleteCustomerSecondaryId(_)) => "DeleteCustomerSecondaryId",
        Some(E::UpdateCustomerMetadata(_)) => "UpdateCustomerMetadata",
        Some(E::DeleteCustomerMetadata(_)) => "DeleteCustomerMetadata",
        Some(E::LeaseCustomerAppData(_)) => "LeaseCustomerAppData",
        Some(E::UpdateCustomerAppData(_)) => "UpdateCustomerAppData",
        Some(E::DeleteCustomerAppData(_)) => "DeleteCustomerAppData",
        Some(E::SendMessage(_)) => "SendMessage",
        Some(E::SendMessageTag(_)) => "SendMessageTag",
        Some(E::ReplyToMessage(_)) => "ReplyToMessage",
        Some(E::UpdateMessagingConsent(_)) => "UpdateMessagingConsent",
        Some(E::InitiatePayment(_)) => "InitiatePayment",
        Some(E::CustomerActivity(_)) => "CustomerActivity",
        Some(E::ReplayMessagingConsentUpdate(_)) => "ReplayMessagingConsentUpdate",
        Some(E::ReplayReceivedMessage(_)) => "ReplayReceivedMessage",
        Some(E::ReplaySentMessage(_)) => "ReplaySentMessage",
        Some(E::ReplayMessageStatusUpdate(_)) => "ReplayMessageStatusUpdate",
        Some(E::ReplayMessageReactionUpdate(_)) => "ReplayMessageReactionUpdate",
        Some(E::ReplayMessagingSession(_)) => "ReplayMessagingSession",
        Some(E::ReplayPayment(_)) => "ReplayPayment",
        Some(E::ReplayPaymentStatusUpdate(_)) => "ReplayPaymentStatusUpdate",
        Some(E::DeleteCustomer(_)) => "DeleteCustomer",
    }
}

/// Authenticates a client's SETUP and accepts or rejects it.
pub(crate) fn handle_incoming(
    incoming: Incoming,
    engine: &Arc<Engine>,
    hub: &Arc<Hub>,
    limits: CommandLimits,
) {
    let meta = match AppConnectionMetadata::decode(incoming.setup().payload.data.clone()) {
        Ok(meta) => meta,
        Err(e) => {
            tracing::info!(error = %e, "setup rejected: undecodable connection metadata");
            incoming.reject(
                ErrorCode::InvalidSetup,
                format!("setup data is not an AppConnectionMetadata: {e}"),
            );
            return;
        }
    };
    let who = match engine.authenticate(&meta) {
        Ok(who) => who,
        Err(e) => {
            // The ids are the peer's, unauthenticated: Debug-escaped so they cannot forge lines.
            tracing::info!(org = ?meta.org_id, app = ?meta.app_id, reason = ?e.to_string(), "setup rejected");
            incoming.reject(ErrorCode::RejectedSetup, e.to_string());
            return;
        }
    };
    let span = connection_span(&who);
    tracing::info!(
        parent: &span,
        simplex = who.simplex,
        "connection accepted"
    );
    let responder = Arc::new(ConnectionResponder {
        ctx: Arc::new(ConnectionContext {
            engine: engine.clone(),
            hub: hub.clone(),
            who: who.clone(),
            limits,
            span: span.clone(),
        }),
    });
    let conn = incoming.accept(responder);
    let id = hub.register(&who, conn.clone());
    engine.feed().connection_up(id, &who, engine.now());
    let hub = hub.clone();
    let engine = engine.clone();
    tokio::spawn(
        async move {
            let reason = conn.closed().await;
            // The reason may carry the peer's own words (an ERROR frame): escaped.
            tracing::info!(reason = ?reason.to_string(), "connection closed");
            hub.unregister(id);
            engine.feed().connection_down(id);
        }
        .instrument(span),
    );
}

/// The span of one connection: `app` or `simulator`, with its org and app (Debug-escaped:
/// they come from the peer).
fn connection_span(who: &Identity) -> tracing::Span {
    let kind = if who.simulator { "simulator" } else { "app" };
    tracing::info_span!("conn", kind, org = ?who.org_id, app = ?who.app_id)
}
