//! The Rust SDK for [Elarian](https://developers.elarian.com), a customer-engagement runtime:
//! code against customer data, react to what customers do (messages, USSD sessions, voice calls,
//! payments, reminders) and act on it. (This example runs as a test against the embedded
//! emulator, `elarian-emulator`; against Elarian, drop the emulator and give your API key.)
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use elarian_sdk::{
//!     ClientConfig, ConnectionEvents, CustomerNumber, DataValue, Elarian, Message,
//!     MessagingChannel, MessagingChannelNumber, Reminder, UssdMenu,
//! };
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #   // This example runs against the embedded emulator (`elarian-emulator`).
//! #   let emulator = elarian_emulator::Emulator::builder().tcp(([127, 0, 0, 1], 0)).start().await?;
//!     let app = Elarian::new(
//!         ClientConfig::builder()
//!             .org_id("el_org_eu_1SJ2jx")
//!             .app_id("el_app_WZFQdt")
//!             .api_key("el_k_test_…")
//! #           .api_key(elarian_emulator::config::TEST_API_KEY)
//! #           .endpoint(emulator.endpoint().expect("a TCP listener")),
//!     )?;
//!
//!     // Connection events.
//!     app.on_connected(|| println!("connected"))
//!         .on_error(|error| eprintln!("elarian: {error}"));
//!
//!     // A USSD menu: each step of the session arrives here; the reply is the next screen.
//!     app.on_ussd_session(|notification, customer, app_data, responder| async move {
//!         let name = customer
//!             .get_metadata()
//!             .await
//!             .ok()
//!             .and_then(|m| m.get("name").and_then(|v| v.to_serde::<String>().ok()))
//!             .unwrap_or_else(|| "there".into());
//!         let menu = match notification.input.text.as_deref() {
//!             None | Some("") => UssdMenu::new(format!("Hi {name}!\n1. Balance\n2. Quit")),
//!             Some(_) => UssdMenu::terminal("Goodbye"),
//!         };
//!         responder.reply(Some(menu), app_data);
//!     });
//!
//!     // Reminders fire here.
//!     let (fired, mut reminders) = tokio::sync::mpsc::channel(1);
//!     app.on_reminder(move |notification, customer, app_data, responder| {
//!         let fired = fired.clone();
//!         async move {
//!             let sms = MessagingChannelNumber::new("83044", MessagingChannel::Sms);
//!             let text = notification.reminder.payload.unwrap_or_default();
//!             if let Err(error) = customer.send_message(sms, Message::text(text)).await {
//!                 eprintln!("could not send: {error}");
//!             }
//!             responder.reply(None, app_data);
//!             let _ = fired.send(notification.reminder.key).await;
//!         }
//!     });
//!
//!     app.connect().await?;
//!
//!     let customer = app.customer(CustomerNumber::cellular("+254700000000"));
//!     customer
//!         .update_metadata([("name".to_string(), DataValue::string("Ann"))].into())
//!         .await?;
//!     customer
//!         .add_reminder(
//!             Reminder::new("repayment", SystemTime::now() + Duration::from_secs(1))
//!                 .with_payload("Your loan is due"),
//!         )
//!         .await?;
//!     let key = tokio::time::timeout(Duration::from_secs(30), reminders.recv()).await?;
//!     assert_eq!(key.as_deref(), Some("repayment"));
//!     app.disconnect().await;
//! #   emulator.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! # Overview
//!
//! - [`Elarian`]: the app. Connects ([`connect`](Elarian::connect)), runs app-wide commands
//!   (tags, payments, replays, auth tokens) and routes notifications: typed `on_<event>`
//!   handlers, the generic [`on`](Elarian::on), or a [`Stream`](futures_core::Stream) of
//!   [`IncomingNotification`]s from [`notifications`](Elarian::notifications). Events are
//!   [`NamedEvent`]s: [`NamedEvent::from_name`] maps the spec's names (`"receivedSms"`).
//! - [`ConnectionEvents`] (implemented by [`Elarian`]): connection events go to
//!   [`on_connected`](ConnectionEvents::on_connected),
//!   [`on_error`](ConnectionEvents::on_error), …,
//!   [`on_connection`](ConnectionEvents::on_connection) (by [`ConnectionEventKind`], the spec's
//!   event names) and the [`connection_events`](ConnectionEvents::connection_events) stream.
//! - [`Customer`]: one customer, by number, id or secondary id: state, messages, voice calls,
//!   consent, app data, metadata, tags, secondary ids, reminders.
//! - [`models`]: plain serde types for everything on the wire.
//! - The connection itself (reconnection, resumption, timeouts, backpressure) is the
//!   `elarian-core` runtime, configured through [`ClientConfig::builder`].
//! - [`WireClient`]: a client of any [`Role`] in wire types, with your own
//!   [`NotificationHandler`]; [`Elarian`] and the `elarian-simulator` crate's `Simulator` are
//!   built on it, and route notifications through a [`HandlerRegistry`].
//!
//! # Handlers and replies
//!
//! A handler gets the typed notification, the [`Customer`], the customer's app data and a
//! responder. [`Responder::reply`] answers with an optional message (sent back into the
//! customer's session) and the new app data; `voice_call` handlers get a [`VoiceResponder`]
//! (voice actions) and `ussd_session` handlers a [`UssdResponder`] (a USSD screen). A responder
//! dropped without replying sends the default reply (app data unchanged); so does the runtime
//! when a handler does not reply within the notification timeout, or panics.
//!
//! # Errors and statuses
//!
//! Invalid arguments are rejected before anything is sent ([`Error::InvalidArgument`]). A
//! reply with a boolean status of `false` is [`Error::Failed`]. Replies with a status enum
//! (messages, consent, payments) are returned as `Ok`: check `reply.status` (e.g.
//! [`MessageDeliveryStatus::NoConsent`], [`PaymentStatus::InsufficientFunds`]).
//!
//! # App data
//!
//! App data and metadata values are [`DataValue`]s: JSON (stored as text, like the JavaScript
//! client, so apps in both languages share data) or raw bytes.
//!
//! # Spec coverage
//!
//! [`spec_coverage`] (also `SPEC.md` in this crate) maps every class, method, model, notification
//! and event of the Elarian SDK spec and of the JavaScript client to its Rust item and its test.

#![warn(missing_docs, unreachable_pub)]

mod builder;
mod client;
mod command;
mod connection;
mod customer;
mod decode;
mod dispatch;
mod encode;
mod error;
mod handlers;
pub mod models;
mod number_resolution;
mod responder;
mod validate;
mod wire_client;

#[doc = include_str!("../SPEC.md")]
pub mod spec_coverage {}

pub use builder::ElarianBuilder;
pub use client::{Elarian, PaymentReplay};
/// Connection events.
pub use connection::{ConnectionEventKind, ConnectionEventStream, ConnectionEvents, ConnectionHub};
pub use customer::Customer;
pub use dispatch::IncomingNotification;
pub use error::{Error, Result};
/// Events by name, and the registry routing notifications to handlers or a stream.
pub use handlers::{HandlerRegistry, NamedEvent, NotificationStream, Unclaimed};
/// Customers, numbers, tags, reminders, activities, auth tokens (from [`models`]).
pub use models::{
    Activity, AuthToken, Cash, CustomerNumber, MessagingChannelNumber, PaymentChannelNumber,
    Reminder, SecondaryId, Tag,
};
/// Customer state (from [`models`]).
pub use models::{
    ActivitySession, ActivityState, ChannelMessage, CustomerState, IdentityState,
    MessageReactionState, MessageSessionUpdate, MessageStatusUpdate, MessagingChannelState,
    MessagingSession, MessagingState, PaymentState, ReceivedMessage, ReplyToken, SentMessage,
};
/// Notifications and app events (from [`models`]).
pub use models::{
    AppEvent, CustomerActivityNotification, DecodedNotification, MessageStatusNotification,
    MessagingConsentUpdateNotification, MessagingSessionEndedNotification,
    MessagingSessionNotification, Notification, NotificationContext, NotificationDecodeError,
    PaymentStatusNotification, ReceivedMessageNotification, ReceivedPaymentNotification,
    ReminderNotification, SentMessageReactionNotification, UssdSessionNotification,
    VoiceCallNotification,
};
/// Payments (from [`models`]).
pub use models::{
    ChannelCounterParty, PaymentBalance, PaymentCounterParty, PaymentTransaction, PendingPayment,
    WalletOrPurse,
};
/// Enumerations (every one has `Unknown(i32)` for values this SDK does not know yet) (from [`models`]).
pub use models::{
    ChannelNumberProvider, ConsentAction, ConsentUpdateStatus, CustomerNumberProvider, MediaType,
    MessageDeliveryStatus, MessageReaction, MessagingChannel, MessagingSessionEndReason,
    PaymentChannel, PaymentStatus, PromptReplyAction, RequestOrigin, TextToSpeechVoice,
    UssdSessionStatus, VoiceCallDirection, VoiceCallHangupCause, VoiceCallStatus,
};
/// Command replies (from [`models`]).
pub use models::{
    ConsentUpdateReply, CustomerStateUpdateReply, InitiatePaymentReply, MessageReply,
    ReplayPaymentReply, SimulatorReply, TagUpdateReply,
};
/// App data and metadata values (from [`models`]).
pub use models::{DataError, DataValue};
/// Messages, voice actions and USSD menus (from [`models`]).
pub use models::{
    Dequeue, Dial, Email, Enqueue, GetDigits, GetRecording, InboundMessageBody, Location, Media,
    Message, MessageBody, Play, Prompt, PromptMenuItem, Redirect, ReplyPrompt, Say, Template,
    UssdInput, UssdMenu, VoiceAction, VoiceCallDialInput, VoiceCallInput, VoiceCallQueueInput,
};
pub use responder::{Responder, UssdResponder, VoiceResponder};
/// Clients of any role in wire types (what [`Elarian`] and the simulator are built on).
pub use wire_client::WireClient;

/// The runtime's notification-handler interface, for a [`WireClient`] with your own handler
/// (re-exported from `elarian-core`).
pub use elarian_core::{BoxFuture, HandlerError, NotificationHandler, ReplySender};
/// Runtime types users configure the connection with (re-exported from `elarian-core`).
pub use elarian_core::{
    BoxTransport, Cause, ClientConfig, ClientConfigBuilder, ClientError, CommandError, ConfigError,
    ConnectError, ConnectionEvent, Credentials, DialFuture, Dialer, Endpoint, FlowStats,
    NotificationError, ReconnectPolicy, Role, Secret, StopReason, TlsClientOptions, TransportError,
};
/// The wire types, for code that needs them.
pub use elarian_proto as proto;
