//! The Elarian simulator: plays customers' phones against an Elarian app, for development and
//! tests. It sends what a customer would (an SMS, a USSD dial, a voice call step, a payment)
//! and receives what the app directs at customers (messages, calls, payouts, checkouts).
//!
//! ```no_run
//! use elarian_simulator::Simulator;
//! use elarian_sdk::{
//!     ClientConfig, InboundMessageBody, MessageBody, MessagingChannel, MessagingChannelNumber,
//!     PaymentStatus, UssdInput, UssdSessionStatus,
//! };
//!
//! # async fn run() -> Result<(), elarian_sdk::Error> {
//! let simulator = Simulator::new(
//!     ClientConfig::builder()
//!         .org_id("el_org_eu_1SJ2jx")
//!         .app_id("el_app_WZFQdt")
//!         .api_key("el_k_test_…"),
//! )?;
//! // Approve every checkout the app starts.
//! let approver = simulator.clone();
//! simulator.on_checkout_payment(move |checkout| {
//!     let approver = approver.clone();
//!     async move {
//!         let _ = approver
//!             .update_payment_status(checkout.transaction_id, PaymentStatus::Success)
//!             .await;
//!     }
//! });
//! simulator.connect().await?;
//!
//! // Dial the USSD code: the app's `ussd_session` handler answers with the first menu.
//! let reply = simulator
//!     .receive_message(
//!         "+254700000000",
//!         MessagingChannelNumber::new("*83044#", MessagingChannel::Ussd),
//!         "session-1",
//!         vec![InboundMessageBody::Ussd(UssdInput {
//!             text: None,
//!             status: UssdSessionStatus::Active,
//!         })],
//!     )
//!     .await?;
//! if let Some(MessageBody::Ussd(menu)) = reply.message.and_then(|m| m.body) {
//!     println!("{}", menu.text);
//! }
//! # Ok(()) }
//! ```
//!
//! The simulator is built on the SDK's public pieces, as an app is: a
//! [`WireClient`] of role [`Role::Simulator`], a
//! [`HandlerRegistry`] of [`SimulatorEvent`]s (named by
//! [`NamedEvent`](elarian_sdk::NamedEvent)), and the app's connection-event methods
//! (`on_connected`, `on_error`, …) through [`ConnectionEvents`].
//!
//! How the spec's `Simulator` class, its methods and events map to this crate is in
//! [`elarian_sdk::spec_coverage`].

#![warn(missing_docs, unreachable_pub)]

mod notifications;
#[cfg(test)]
mod test_support;

use std::future::Future;
use std::sync::Arc;

use elarian_core::{
    BoxFuture, ClientConfig, ClientConfigBuilder, HandlerError, NotificationHandler, Role,
};
use elarian_proto as proto;
use elarian_proto::simulator_to_server_command::Entry;
use elarian_sdk::{
    Cash, ConnectionEvents, ConnectionHub, Error, HandlerRegistry, InboundMessageBody,
    MessagingChannelNumber, NotificationStream, PaymentChannelNumber, PaymentStatus, Result,
    SimulatorReply, Unclaimed, WireClient,
};

pub use notifications::{
    CheckoutPaymentNotification, EmptyNotification, MakeVoiceCallNotification,
    SendChannelPaymentNotification, SendCustomerPaymentNotification, SendMessageNotification,
    SimulatorEvent, SimulatorNotification,
};

/// Capacity of the notification stream; past it notifications are dropped with a warning.
const STREAM_CAPACITY: usize = 256;

type ErasedHandler =
    Arc<dyn Fn(SimulatorNotification) -> BoxFuture<'static, ()> + Send + Sync + 'static>;

/// The simulator's handlers by event and its stream of unhandled notifications.
type Registry = HandlerRegistry<SimulatorEvent, ErasedHandler, SimulatorNotification>;

/// The core runtime's notification handler for a simulator. Handlers run in the runtime's one
/// task per notification; the runtime waits for them (bounded by its notification timeout) so
/// that a slow simulator slows the server down instead of piling up work.
struct SimulatorDispatch {
    registry: Arc<Registry>,
}

impl NotificationHandler for SimulatorDispatch {
    fn on_simulator_notification(
        &self,
        notification: proto::ServerToSimulatorNotification,
    ) -> BoxFuture<'static, std::result::Result<(), HandlerError>> {
        let notification = match SimulatorNotification::try_from(notification) {
            Ok(n) => n,
            Err(error) => {
                tracing::warn!(%error, "simulator notification not understood");
                return Box::pin(async { Ok(()) });
            }
        };
        let event = notification.event();
        if let Some(handler) = self.registry.handler(event) {
            let handler = handler(notification);
            return Box::pin(async move {
                handler.await;
                Ok(())
            });
        }
        match self.registry.offer(notification) {
            Ok(()) => {}
            Err(Unclaimed::StreamFull(_)) => {
                tracing::warn!(%event, "simulator notification stream full; dropped");
            }
            Err(Unclaimed::NoStream(_)) => {
                tracing::debug!(%event, "no simulator handler registered");
            }
        }
        Box::pin(async { Ok(()) })
    }
}

/// A stream of simulator notifications for which no handler is registered.
pub type SimulatorNotificationStream = NotificationStream<SimulatorNotification>;

struct Inner {
    wire: WireClient,
    registry: Arc<Registry>,
}

/// A simulator connection (role [`Role::Simulator`]). Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("config", self.config())
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// Registers a typed handler for one simulator event.
macro_rules! typed_handler {
    ($(#[$doc:meta])* $method:ident, $event:ident, $notification:ty) => {
        $(#[$doc])*
        pub fn $method<F, Fut>(&self, handler: F) -> &Self
        where
            F: Fn($notification) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
        {
            let erased: ErasedHandler = Arc::new(move |notification| match notification {
                SimulatorNotification::$event(n) => Box::pin(handler(n)),
                _ => Box::pin(async {}),
            });
            self.inner.registry.set(SimulatorEvent::$event, erased);
            self
        }
    };
}

fn invalid(argument: &'static str, reason: &str) -> Error {
    Error::InvalidArgument {
        argument,
        reason: reason.to_string(),
    }
}

fn non_empty(argument: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(invalid(argument, "must not be empty"));
    }
    Ok(())
}

impl Simulator {
    /// Creates a simulator from a config builder; the role is set to [`Role::Simulator`].
    /// Does not connect.
    pub fn new(config: ClientConfigBuilder) -> Result<Self> {
        Ok(Simulator {
            inner: Arc::new(Inner {
                wire: WireClient::new(config, Role::Simulator)?,
                registry: Arc::new(Registry::new(STREAM_CAPACITY)),
            }),
        })
    }

    /// A config builder (the same as [`ClientConfig::builder`]).
    pub fn builder() -> ClientConfigBuilder {
        ClientConfig::builder()
    }

    /// The configuration (credentials redacted in `Debug`).
    pub fn config(&self) -> &ClientConfig {
        self.inner.wire.config()
    }

    /// Connects and resolves once the connection is up. Calling it while connected does nothing.
    pub async fn connect(&self) -> Result<()> {
        let dispatch = SimulatorDispatch {
            registry: self.inner.registry.clone(),
        };
        self.inner.wire.connect(dispatch).await
    }

    /// Disconnects gracefully; the simulator can connect again later.
    pub async fn disconnect(&self) {
        self.inner.wire.disconnect().await
    }

    /// The flow-control counters of the current connection's client (simulator commands
    /// retried after the server rejected them unprocessed, commands that waited for a slot);
    /// `None` before the first connect.
    pub fn flow_stats(&self) -> Option<elarian_sdk::FlowStats> {
        self.inner.wire.flow_stats()
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.wire.is_connected()
    }

    async fn command(&self, entry: Entry) -> Result<SimulatorReply> {
        let client = self.inner.wire.client().ok_or(Error::NotConnected)?;
        let reply = client
            .send_simulator_command(proto::SimulatorToServerCommand { entry: Some(entry) })
            .await?;
        if !reply.status {
            return Err(Error::Failed {
                description: reply.description,
            });
        }
        Ok(reply.into())
    }

    /// A customer with `phone_number` sends `parts` on one of the app's channels (an SMS, a
    /// USSD dial or answer, a voice call step, …). The reply carries the app's answer when there
    /// is one (the next USSD screen, voice actions).
    pub async fn receive_message(
        &self,
        phone_number: impl Into<String>,
        channel_number: MessagingChannelNumber,
        session_id: impl Into<String>,
        parts: Vec<InboundMessageBody>,
    ) -> Result<SimulatorReply> {
        let phone_number = phone_number.into();
        let session_id = session_id.into();
        non_empty("phone_number", &phone_number)?;
        non_empty("channel_number", &channel_number.number)?;
        if parts.is_empty() {
            return Err(invalid("parts", "must not be empty"));
        }
        self.command(Entry::ReceiveMessage(
            proto::ReceiveMessageSimulatorCommand {
                customer_number: phone_number,
                channel_number: Some(channel_number.into()),
                parts: parts.into_iter().map(Into::into).collect(),
                session_id: (!session_id.is_empty()).then_some(session_id),
                cost: None,
                duration: None,
            },
        ))
        .await
    }

    /// A customer with `phone_number` pays `value` into one of the app's payment channels.
    pub async fn receive_payment(
        &self,
        phone_number: impl Into<String>,
        channel_number: PaymentChannelNumber,
        transaction_id: impl Into<String>,
        value: Cash,
        status: PaymentStatus,
    ) -> Result<SimulatorReply> {
        let phone_number = phone_number.into();
        let transaction_id = transaction_id.into();
        non_empty("phone_number", &phone_number)?;
        non_empty("channel_number", &channel_number.number)?;
        non_empty("transaction_id", &transaction_id)?;
        non_empty("value.currency_code", &value.currency_code)?;
        if !value.amount.is_finite() || value.amount < 0.0 {
            return Err(invalid("value", "amount must be finite and not negative"));
        }
        self.command(Entry::ReceivePayment(
            proto::ReceivePaymentSimulatorCommand {
                transaction_id,
                channel_number: Some(channel_number.into()),
                customer_number: phone_number,
                value: Some(value.into()),
                status: status.into(),
            },
        ))
        .await
    }

    /// Settles a payment: one the app started, named by the transaction id the app and the
    /// simulator notification got (e.g. approves a checkout with `Success`), or one this
    /// simulator reported pending with [`receive_payment`](Self::receive_payment), named by
    /// that call's own `transaction_id` (Elarian's id works too). The app hears of it in a
    /// payment status notification carrying Elarian's id.
    pub async fn update_payment_status(
        &self,
        transaction_id: impl Into<String>,
        status: PaymentStatus,
    ) -> Result<SimulatorReply> {
        let transaction_id = transaction_id.into();
        non_empty("transaction_id", &transaction_id)?;
        self.command(Entry::UpdatePaymentStatus(
            proto::UpdatePaymentStatusSimulatorCommand {
                transaction_id,
                status: status.into(),
            },
        ))
        .await
    }

    /// Registers a handler for `event` receiving the typed [`SimulatorNotification`].
    pub fn on<F, Fut>(&self, event: SimulatorEvent, handler: F) -> &Self
    where
        F: Fn(SimulatorNotification) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let erased: ErasedHandler = Arc::new(move |n| Box::pin(handler(n)));
        self.inner.registry.set(event, erased);
        self
    }

    typed_handler!(
        /// Handles messages the app sends to simulated customers.
        on_send_message, SendMessage, SendMessageNotification
    );
    typed_handler!(
        /// Handles calls the app makes to simulated customers.
        on_make_voice_call, MakeVoiceCall, MakeVoiceCallNotification
    );
    typed_handler!(
        /// Handles payments the app makes to simulated customers.
        on_send_customer_payment, SendCustomerPayment, SendCustomerPaymentNotification
    );
    typed_handler!(
        /// Handles payments the app makes to channel accounts.
        on_send_channel_payment, SendChannelPayment, SendChannelPaymentNotification
    );
    typed_handler!(
        /// Handles checkouts (payment requests) the app starts.
        on_checkout_payment, CheckoutPayment, CheckoutPaymentNotification
    );

    /// A stream of the notifications for which no handler is registered. Opening a new stream
    /// replaces the previous one; when it is full (256 waiting) notifications are dropped.
    pub fn notifications(&self) -> SimulatorNotificationStream {
        self.inner.registry.open_stream()
    }
}

/// The simulator's connection events (`on_connected`, `on_error`, …, `connection_events`).
impl ConnectionEvents for Simulator {
    fn connection_hub(&self) -> &ConnectionHub {
        self.inner.wire.connection_hub()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elarian_sdk::{CustomerNumber, Message, MessagingChannel, NamedEvent};
    use futures_util::StreamExt;
    use tokio::sync::mpsc;

    fn simulator() -> Simulator {
        Simulator::new(
            ClientConfig::builder()
                .org_id("org")
                .app_id("app")
                .api_key("key")
                .endpoint_url("tcp://127.0.0.1:1"),
        )
        .expect("valid config")
    }

    fn dispatch(simulator: &Simulator) -> SimulatorDispatch {
        SimulatorDispatch {
            registry: simulator.inner.registry.clone(),
        }
    }

    fn send_message() -> proto::ServerToSimulatorNotification {
        test_support::encode(SimulatorNotification::SendMessage(
            SendMessageNotification {
                org_id: "org".into(),
                customer_id: "el_cst_1".into(),
                message_id: "m".into(),
                customer_number: CustomerNumber::cellular("+254700000000"),
                channel_number: MessagingChannelNumber::new("83044", MessagingChannel::Sms),
                message: Message::text("hello"),
            },
        ))
    }

    #[tokio::test]
    async fn typed_handlers_receive_their_notifications() {
        let simulator = simulator();
        let (seen, mut received) = mpsc::channel(1);
        simulator.on_send_message(move |n| {
            let seen = seen.clone();
            async move {
                let _ = seen.send(n).await;
            }
        });
        dispatch(&simulator)
            .on_simulator_notification(send_message())
            .await
            .expect("handled");
        let n = received.recv().await.expect("handler ran");
        assert_eq!(n.message, Message::text("hello"));
    }

    #[tokio::test]
    async fn unhandled_notifications_go_to_the_stream() {
        let simulator = simulator();
        let mut stream = simulator.notifications();
        dispatch(&simulator)
            .on_simulator_notification(send_message())
            .await
            .expect("handled");
        let n = stream.next().await.expect("delivered");
        assert_eq!(n.event(), SimulatorEvent::SendMessage);
    }

    #[tokio::test]
    async fn a_panicking_handler_reaches_the_runtime_task() {
        let simulator = simulator();
        simulator.on(SimulatorEvent::SendMessage, |_n| async move {
            panic!("simulator handler bug");
        });
        // The runtime runs the handler in its one task per notification, which catches the
        // panic and reports it as an error event.
        let task = tokio::spawn(dispatch(&simulator).on_simulator_notification(send_message()));
        assert!(
            task.await
                .expect_err("the panic reaches the task")
                .is_panic()
        );
    }

    #[tokio::test]
    async fn commands_need_a_connection() {
        let simulator = simulator();
        let result = simulator
            .update_payment_status("tx", PaymentStatus::Success)
            .await;
        assert!(matches!(result, Err(Error::NotConnected)), "{result:?}");
        let result = simulator
            .update_payment_status(" ", PaymentStatus::Success)
            .await;
        assert!(
            matches!(result, Err(Error::InvalidArgument { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn every_event_reaches_its_typed_handler() {
        let simulator = simulator();
        let (seen, mut ran) = mpsc::unbounded_channel();
        macro_rules! register {
            ($($method:ident => $event:ident),+ $(,)?) => {$(
                let tx = seen.clone();
                simulator.$method(move |notification| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(SimulatorNotification::$event(notification));
                    }
                });
            )+};
        }
        register!(
            on_send_message => SendMessage,
            on_make_voice_call => MakeVoiceCall,
            on_send_customer_payment => SendCustomerPayment,
            on_send_channel_payment => SendChannelPayment,
            on_checkout_payment => CheckoutPayment,
        );
        let all = notifications::tests::every_notification();
        let events: std::collections::HashSet<_> = all.iter().map(|n| n.event()).collect();
        assert_eq!(
            events.len(),
            SimulatorEvent::ALL.len(),
            "every event is covered"
        );
        for notification in all {
            dispatch(&simulator)
                .on_simulator_notification(test_support::encode(notification.clone()))
                .await
                .expect("handled");
            let handled = ran.try_recv().expect("the handler ran before the reply");
            assert_eq!(handled, notification);
        }
    }

    #[tokio::test]
    async fn connection_event_methods_see_the_simulators_events() {
        use elarian_sdk::{ConnectionEvent, ConnectionEventKind, StopReason};
        use std::sync::atomic::{AtomicUsize, Ordering};

        let simulator = simulator();
        let connected = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let seen_connected = connected.clone();
        let seen_closed = closed.clone();
        simulator
            .on_connected(move || {
                seen_connected.fetch_add(1, Ordering::SeqCst);
            })
            .on_connection(ConnectionEventKind::Closed, move |event| {
                assert!(matches!(event, ConnectionEvent::Closed { .. }));
                seen_closed.fetch_add(1, Ordering::SeqCst);
            });
        let mut events = simulator.connection_events();
        let hub = simulator.connection_hub();
        hub.emit(&ConnectionEvent::Connected);
        hub.emit(&ConnectionEvent::Closed {
            reason: StopReason::Disconnected,
        });
        assert_eq!(connected.load(Ordering::SeqCst), 1);
        assert_eq!(closed.load(Ordering::SeqCst), 1);
        assert_eq!(events.next().await, Some(ConnectionEvent::Connected));
    }
}
