//! [`Elarian`]: the app's connection, its app-wide commands and its notification handlers.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use elarian_core::{ClientConfig, ClientConfigBuilder, FlowStats, Role};
use elarian_proto as proto;
use elarian_proto::app_to_server_command::Entry;
use elarian_proto::app_to_server_command_reply::Entry as ReplyEntry;
use elarian_proto::prost::bytes::{Bytes, BytesMut};

use crate::command::expect_reply;
use crate::connection::{ConnectionEvents, ConnectionHub};
use crate::customer::Customer;
use crate::dispatch::{AppDispatch, ErasedHandler, Registry, STREAM_CAPACITY};
use crate::error::{Error, Result};
use crate::handlers::NotificationStream;
use crate::models::time;
use crate::models::{
    AppEvent, AuthToken, Cash, ConsentAction, CustomerActivityNotification, CustomerNumber,
    CustomerStateUpdateReply, DataValue, InitiatePaymentReply, Message, MessageReaction,
    MessageSessionUpdate, MessageStatusNotification, MessageStatusUpdate, MessagingChannelNumber,
    MessagingConsentUpdateNotification, MessagingSessionEndedNotification,
    MessagingSessionNotification, Notification, PaymentCounterParty, PaymentStatus,
    PaymentStatusNotification, ReceivedMessage, ReceivedMessageNotification,
    ReceivedPaymentNotification, Reminder, ReminderNotification, ReplayPaymentReply, SecondaryId,
    SentMessage, SentMessageReactionNotification, Tag, TagUpdateReply, UssdSessionNotification,
    VoiceCallNotification,
};
use crate::responder::{Responder, UssdResponder, VoiceResponder, WrapResponder};
use crate::validate;
use crate::wire_client::WireClient;

pub(crate) struct Inner {
    wire: WireClient,
    registry: Arc<Registry>,
}

/// An Elarian app: connects, sends app-wide commands, hands out [`Customer`]s and routes
/// notifications to handlers.
///
/// Cheap to clone (clones share the connection and the handlers). Handlers may be registered
/// before or after [`connect`](Self::connect).
///
/// ```no_run
/// use elarian_sdk::{ClientConfig, ConnectionEvents, Elarian, UssdMenu};
///
/// # async fn run() -> Result<(), elarian_sdk::Error> {
/// let app = Elarian::new(
///     ClientConfig::builder()
///         .org_id("el_org_eu_1SJ2jx")
///         .app_id("el_app_WZFQdt")
///         .api_key("el_k_test_…"),
/// )?;
/// app.on_connected(|| println!("connected"));
/// app.on_ussd_session(|notification, _customer, app_data, responder| async move {
///     let text = notification.input.text.unwrap_or_default();
///     responder.reply(Some(UssdMenu::terminal(format!("You typed {text}"))), app_data);
/// });
/// app.connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Elarian {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Elarian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elarian")
            .field("config", self.config())
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// The app's connection events (`on_connected`, `on_error`, …, `connection_events`).
impl ConnectionEvents for Elarian {
    fn connection_hub(&self) -> &ConnectionHub {
        self.inner.wire.connection_hub()
    }
}

/// Registers a typed handler for an app event whose notifications always concern a customer.
macro_rules! typed_handler {
    ($(#[$doc:meta])* $method:ident, $event:ident, $notification:ty, $responder:ty) => {
        $(#[$doc])*
        pub fn $method<F, Fut>(&self, handler: F) -> &Self
        where
            F: Fn($notification, Customer, Option<DataValue>, $responder) -> Fut
                + Send
                + Sync
                + 'static,
            Fut: Future<Output = ()> + Send + 'static,
        {
            let erased: ErasedHandler = Arc::new(move |notification, customer, app_data, responder| {
                match (notification, customer) {
                    (Notification::$event(notification), Some(customer)) => Box::pin(handler(
                        notification,
                        customer,
                        app_data,
                        <$responder as WrapResponder>::wrap_responder(responder),
                    )),
                    // Without a customer id or number there is no customer to hand over; the
                    // dropped responder sends the default reply.
                    _ => {
                        tracing::warn!(
                            event = %AppEvent::$event,
                            "notification without a customer; default reply sent"
                        );
                        Box::pin(async {})
                    }
                }
            });
            self.inner.registry.set(AppEvent::$event, erased);
            self
        }
    };
}

impl Elarian {
    /// Creates the app from a config builder (`org_id`, `app_id`, `api_key` or `auth_token`,
    /// endpoint, timeouts, …). The role is set to [`Role::App`]. Does not connect.
    pub fn new(config: ClientConfigBuilder) -> Result<Self> {
        let wire = WireClient::new(config, Role::App)?;
        Ok(Elarian {
            inner: Arc::new(Inner {
                wire,
                registry: Arc::new(Registry::new(STREAM_CAPACITY)),
            }),
        })
    }

    /// A builder of the app: `Elarian::builder().org_id(…)…connect().await?` is a connected
    /// app; [`build`](crate::ElarianBuilder::build) one not yet connected.
    pub fn builder() -> crate::ElarianBuilder {
        crate::ElarianBuilder::new()
    }

    /// The runtime's notification handler for this app.
    pub(crate) fn dispatcher(&self) -> AppDispatch {
        AppDispatch {
            registry: self.inner.registry.clone(),
            app: Arc::downgrade(&self.inner),
        }
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Elarian { inner }
    }

    /// The configuration (credentials redacted in `Debug`).
    pub fn config(&self) -> &ClientConfig {
        self.inner.wire.config()
    }

    /// Connects and resolves once the connection is up. The connection is then kept up
    /// (reconnecting and resuming) until [`disconnect`](Self::disconnect). Calling it while
    /// connected does nothing.
    pub async fn connect(&self) -> Result<()> {
        self.inner.wire.connect(self.dispatcher()).await
    }

    /// Disconnects gracefully (commands in flight get the runtime's disconnect timeout to
    /// finish). The app can [`connect`](Self::connect) again later.
    pub async fn disconnect(&self) {
        self.inner.wire.disconnect().await
    }

    /// The flow-control counters of the current connection's client (commands retried after
    /// the server rejected them unprocessed, commands that waited for a slot, the window of
    /// commands in flight); `None` before the first [`connect`](Self::connect).
    pub fn flow_stats(&self) -> Option<FlowStats> {
        self.inner.wire.flow_stats()
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.wire.is_connected()
    }

    /// Sends one command. Not an `async fn`, and built from combinators rather than an `async`
    /// block: the command is encoded now, and the future (which every method above nests and
    /// moves) holds the core's request once rather than the command and a copy of the request.
    pub(crate) fn command(
        &self,
        entry: Entry,
    ) -> impl Future<Output = Result<ReplyEntry>> + Send + use<> {
        use futures_util::future::{Either, FutureExt, ready};
        match self.inner.wire.client() {
            Some(client) => Either::Left(
                client
                    .send_app_command(proto::AppToServerCommand { entry: Some(entry) })
                    .map(|reply| {
                        reply?.entry.ok_or(Error::UnexpectedReply {
                            expected: "a reply entry",
                        })
                    }),
            ),
            None => Either::Right(ready(Err(Error::NotConnected))),
        }
    }

    /// Sends one command that `write` encodes into the client's buffer (see `crate::encode`),
    /// as [`Elarian::command`] sends a built one.
    pub(crate) fn command_with(
        &self,
        write: &mut dyn FnMut(&mut BytesMut),
    ) -> impl Future<Output = Result<ReplyEntry>> + Send + use<> {
        use futures_util::future::{Either, FutureExt, ready};
        match self.inner.wire.client() {
            // The length is left to the writers, which reserve it themselves.
            Some(client) => Either::Left(client.send_app_command_with(0, write).map(|reply| {
                reply?.entry.ok_or(Error::UnexpectedReply {
                    expected: "a reply entry",
                })
            })),
            None => Either::Right(ready(Err(Error::NotConnected))),
        }
    }

    /// Sends one command that `write` encodes, as [`command_with`](Elarian::command_with)
    /// does, and returns the reply's bytes for the caller to read (see `crate::decode`).
    pub(crate) fn command_with_raw_reply(
        &self,
        write: &mut dyn FnMut(&mut BytesMut),
    ) -> impl Future<Output = Result<Bytes>> + Send + use<> {
        use futures_util::future::{Either, FutureExt, ready};
        match self.inner.wire.client() {
            Some(client) => Either::Left(
                client
                    .send_app_command_with_raw_reply(0, write)
                    .map(|reply| Ok(reply?)),
            ),
            None => Either::Right(ready(Err(Error::NotConnected))),
        }
    }

    // ----- customers -----

    /// A customer addressed by number.
    pub fn customer(&self, number: CustomerNumber) -> Customer {
        Customer::from_parts(self.clone(), None, Some(number), None)
    }

    /// A customer addressed by Elarian customer id.
    pub fn customer_by_id(&self, id: impl Into<String>) -> Customer {
        Customer::from_parts(self.clone(), Some(id.into()), None, None)
    }

    /// A customer addressed by one of the app's secondary ids (e.g. an account number).
    pub fn customer_by_secondary_id(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Customer {
        Customer::from_parts(self.clone(), None, None, Some(SecondaryId::new(key, value)))
    }

    // ----- notification handlers -----

    /// Registers a handler for `event` that receives the typed [`Notification`], the customer
    /// (`None` only for purse payment notifications), the app data and a generic [`Responder`].
    /// Replaces any handler registered for the event.
    pub fn on<F, Fut>(&self, event: AppEvent, handler: F) -> &Self
    where
        F: Fn(Notification, Option<Customer>, Option<DataValue>, Responder) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let erased: ErasedHandler = Arc::new(move |notification, customer, app_data, responder| {
            Box::pin(handler(notification, customer, app_data, responder))
        });
        self.inner.registry.set(event, erased);
        self
    }

    /// Removes the handler of `event`; returns whether there was one.
    pub fn off(&self, event: AppEvent) -> bool {
        self.inner.registry.remove(event)
    }

    /// A stream of the notifications for which no handler is registered, each with its
    /// customer, app data and responder. Opening a new stream replaces the previous one. When
    /// the stream is full (256 waiting) or dropped, notifications get the default reply.
    pub fn notifications(&self) -> NotificationStream {
        self.inner.registry.open_stream()
    }

    typed_handler!(
        /// Handles due reminders.
        on_reminder, Reminder, ReminderNotification, Responder
    );
    typed_handler!(
        /// Handles started messaging sessions.
        on_messaging_session_started, MessagingSessionStarted, MessagingSessionNotification, Responder
    );
    typed_handler!(
        /// Handles renewed messaging sessions.
        on_messaging_session_renewed, MessagingSessionRenewed, MessagingSessionNotification, Responder
    );
    typed_handler!(
        /// Handles ended messaging sessions.
        on_messaging_session_ended, MessagingSessionEnded, MessagingSessionEndedNotification, Responder
    );
    typed_handler!(
        /// Handles messaging consent changes.
        on_messaging_consent_update, MessagingConsentUpdate, MessagingConsentUpdateNotification, Responder
    );
    typed_handler!(
        /// Handles incoming SMS.
        on_received_sms, ReceivedSms, ReceivedMessageNotification, Responder
    );
    typed_handler!(
        /// Handles incoming Facebook Messenger messages.
        on_received_fb_messenger, ReceivedFbMessenger, ReceivedMessageNotification, Responder
    );
    typed_handler!(
        /// Handles incoming Telegram messages.
        on_received_telegram, ReceivedTelegram, ReceivedMessageNotification, Responder
    );
    typed_handler!(
        /// Handles incoming WhatsApp messages.
        on_received_whatsapp, ReceivedWhatsapp, ReceivedMessageNotification, Responder
    );
    typed_handler!(
        /// Handles incoming emails.
        on_received_email, ReceivedEmail, ReceivedMessageNotification, Responder
    );
    typed_handler!(
        /// Handles voice call steps; answer with voice actions.
        on_voice_call, VoiceCall, VoiceCallNotification, VoiceResponder
    );
    typed_handler!(
        /// Handles USSD session steps; answer with a USSD menu.
        on_ussd_session, UssdSession, UssdSessionNotification, UssdResponder
    );
    typed_handler!(
        /// Handles status changes of sent messages.
        on_message_status, MessageStatus, MessageStatusNotification, Responder
    );
    typed_handler!(
        /// Handles reactions to sent messages.
        on_sent_message_reaction, SentMessageReaction, SentMessageReactionNotification, Responder
    );
    typed_handler!(
        /// Handles received payments.
        on_received_payment, ReceivedPayment, ReceivedPaymentNotification, Responder
    );
    typed_handler!(
        /// Handles customer activities.
        on_customer_activity, CustomerActivity, CustomerActivityNotification, Responder
    );

    /// Handles payment status changes, of customer payments (with a customer) and of purse
    /// payments (`customer` is `None`, `notification.context.purse_id` is set).
    pub fn on_payment_status<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(PaymentStatusNotification, Option<Customer>, Option<DataValue>, Responder) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let erased: ErasedHandler =
            Arc::new(
                move |notification, customer, app_data, responder| match notification {
                    Notification::PaymentStatus(notification) => {
                        Box::pin(handler(notification, customer, app_data, responder))
                    }
                    _ => Box::pin(async {}),
                },
            );
        self.inner.registry.set(AppEvent::PaymentStatus, erased);
        self
    }

    // ----- app-wide commands -----

    /// Generates a short-lived auth token (e.g. for a browser client).
    pub async fn generate_auth_token(&self) -> Result<AuthToken> {
        let reply = expect_reply!(
            self.command(Entry::GenerateAuthToken(proto::GenerateAuthTokenCommand {}))
                .await?,
            GenerateAuthToken
        )?;
        Ok(reply.into())
    }

    /// Deletes the customer with `customer_number` and all their state.
    ///
    /// Uses the `DeleteCustomer` extension of the wire (see `docs/protocol.md`); a server that
    /// does not know it refuses the command.
    pub async fn delete_customer_by_customer_number(
        &self,
        customer_number: CustomerNumber,
    ) -> Result<CustomerStateUpdateReply> {
        validate::customer_number("customer_number", &customer_number)?;
        self.delete_customer(proto::delete_customer_command::Customer::CustomerNumber(
            customer_number.into(),
        ))
        .await
    }

    /// Deletes the customer with id `customer_id` and all their state (see
    /// [`delete_customer_by_customer_number`](Self::delete_customer_by_customer_number)).
    pub async fn delete_customer_by_customer_id(
        &self,
        customer_id: impl Into<String>,
    ) -> Result<CustomerStateUpdateReply> {
        let customer_id = customer_id.into();
        validate::non_empty("customer_id", &customer_id)?;
        self.delete_customer(proto::delete_customer_command::Customer::CustomerId(
            customer_id,
        ))
        .await
    }

    async fn delete_customer(
        &self,
        customer: proto::delete_customer_command::Customer,
    ) -> Result<CustomerStateUpdateReply> {
        self.replay_state(Entry::DeleteCustomer(proto::DeleteCustomerCommand {
            customer: Some(customer),
        }))
        .await
    }

    /// Sets a reminder on every customer with `tag`.
    pub async fn add_customer_reminder_by_tag(
        &self,
        tag: Tag,
        reminder: Reminder,
    ) -> Result<TagUpdateReply> {
        validate::tag("tag", &tag)?;
        validate::reminder(&reminder)?;
        let command = proto::AddCustomerReminderTagCommand {
            tag: Some(tag.mapping()),
            reminder: Some(reminder.into()),
        };
        let reply = expect_reply!(
            self.command(Entry::AddCustomerReminderTag(command)).await?,
            TagCommand
        )?;
        Ok(reply.into())
    }

    /// Cancels the reminder `key` on every customer with `tag`.
    pub async fn cancel_customer_reminder_by_tag(
        &self,
        tag: Tag,
        key: impl Into<String>,
    ) -> Result<TagUpdateReply> {
        let key = key.into();
        validate::tag("tag", &tag)?;
        validate::non_empty("key", &key)?;
        let command = proto::CancelCustomerReminderTagCommand {
            tag: Some(tag.mapping()),
            key,
        };
        let reply = expect_reply!(
            self.command(Entry::CancelCustomerReminderTag(command))
                .await?,
            TagCommand
        )?;
        Ok(reply.into())
    }

    /// Sends `message` from `channel_number` to every customer with `tag`.
    pub async fn send_message_by_tag(
        &self,
        tag: Tag,
        channel_number: MessagingChannelNumber,
        message: Message,
    ) -> Result<TagUpdateReply> {
        validate::tag("tag", &tag)?;
        validate::channel_number("channel_number", &channel_number)?;
        if message.body.is_none() {
            return Err(validate::invalid("message", "has no body"));
        }
        let command = proto::SendMessageTagCommand {
            tag: Some(tag.mapping()),
            channel_number: Some(channel_number.into()),
            message: Some(message.into()),
        };
        let reply = expect_reply!(
            self.command(Entry::SendMessageTag(command)).await?,
            TagCommand
        )?;
        Ok(reply.into())
    }

    /// Moves `value` from `debit_party` to `credit_party` (e.g. a mobile-money checkout from a
    /// customer into a purse). Check the reply's status: `InsufficientFunds` and the like are
    /// returned, not raised.
    pub async fn initiate_payment(
        &self,
        debit_party: PaymentCounterParty,
        credit_party: PaymentCounterParty,
        value: Cash,
    ) -> Result<InitiatePaymentReply> {
        self.initiate_payment_with_narration(debit_party, credit_party, value, "")
            .await
    }

    /// [`initiate_payment`](Self::initiate_payment) with a description of the payment.
    pub async fn initiate_payment_with_narration(
        &self,
        debit_party: PaymentCounterParty,
        credit_party: PaymentCounterParty,
        value: Cash,
        narration: impl Into<String>,
    ) -> Result<InitiatePaymentReply> {
        validate::cash("value", &value)?;
        validate_party("debit_party", &debit_party)?;
        validate_party("credit_party", &credit_party)?;
        let command = proto::InitiatePaymentCommand {
            debit_party: Some(debit_party.into()),
            credit_party: Some(credit_party.into()),
            value: Some(value.into()),
            narration: narration.into(),
        };
        let reply = expect_reply!(
            self.command(Entry::InitiatePayment(command)).await?,
            InitiatePayment
        )?;
        Ok(reply.into())
    }

    async fn replay_state(&self, entry: Entry) -> Result<CustomerStateUpdateReply> {
        let reply = expect_reply!(self.command(entry).await?, UpdateCustomerState)?;
        Ok(reply.into())
    }

    /// Records a consent change that happened outside Elarian.
    pub async fn replay_messaging_consent_update(
        &self,
        customer_number: CustomerNumber,
        channel_number: MessagingChannelNumber,
        consent: ConsentAction,
        updated_at: SystemTime,
    ) -> Result<CustomerStateUpdateReply> {
        validate::customer_number("customer_number", &customer_number)?;
        validate::channel_number("channel_number", &channel_number)?;
        self.replay_state(Entry::ReplayMessagingConsentUpdate(
            proto::ReplayMessagingConsentUpdateCommand {
                customer_number: Some(customer_number.into()),
                channel_number: Some(channel_number.into()),
                updated_at: Some(time::timestamp(updated_at)),
                update: consent.into(),
            },
        ))
        .await
    }

    /// Records a message received outside Elarian (`message.message_id` and `session_id` are
    /// the provider's ids).
    pub async fn replay_received_message(
        &self,
        customer_number: CustomerNumber,
        channel_number: MessagingChannelNumber,
        message: ReceivedMessage,
    ) -> Result<CustomerStateUpdateReply> {
        validate::customer_number("customer_number", &customer_number)?;
        validate::channel_number("channel_number", &channel_number)?;
        validate::non_empty("message.message_id", &message.message_id)?;
        self.replay_state(Entry::ReplayReceivedMessage(
            proto::ReplayReceivedMessageCommand {
                provider_message_id: message.message_id,
                provider_session_id: message.session_id,
                received_at: Some(time::timestamp(
                    message.received_at.unwrap_or_else(SystemTime::now),
                )),
                customer_number: Some(customer_number.into()),
                channel_number: Some(channel_number.into()),
                parts: message.parts.into_iter().map(Into::into).collect(),
                in_reply_to: message.in_reply_to,
                provider: message.provider.into(),
                cost: message.cost.map(Into::into),
            },
        ))
        .await
    }

    /// Records a message sent outside Elarian (`message.message_id` and `session_id` are the
    /// provider's ids).
    pub async fn replay_sent_message(
        &self,
        customer_number: CustomerNumber,
        channel_number: MessagingChannelNumber,
        message: SentMessage,
    ) -> Result<CustomerStateUpdateReply> {
        validate::customer_number("customer_number", &customer_number)?;
        validate::channel_number("channel_number", &channel_number)?;
        validate::non_empty("message.message_id", &message.message_id)?;
        self.replay_state(Entry::ReplaySentMessage(proto::ReplaySentMessageCommand {
            provider_message_id: message.message_id,
            provider_session_id: message.session_id,
            sent_at: Some(time::timestamp(
                message.sent_at.unwrap_or_else(SystemTime::now),
            )),
            customer_number: Some(customer_number.into()),
            channel_number: Some(channel_number.into()),
            provider: message.provider.into(),
            message: Some(message.message.into()),
            in_reply_to: message.in_reply_to,
            status: message.status.into(),
            cost: message.cost.map(Into::into),
        }))
        .await
    }

    /// Records a status change of a message sent outside Elarian.
    pub async fn replay_message_status_update(
        &self,
        customer_number: CustomerNumber,
        channel_number: MessagingChannelNumber,
        update: MessageStatusUpdate,
    ) -> Result<CustomerStateUpdateReply> {
        validate::customer_number("customer_number", &customer_number)?;
        validate::channel_number("channel_number", &channel_number)?;
        validate::non_empty("update.message_id", &update.message_id)?;
        self.replay_state(Entry::ReplayMessageStatusUpdate(
            proto::ReplayMessageStatusUpdateCommand {
                provider_message_id: update.message_id,
                updated_at: Some(time::timestamp(update.updated_at)),
                customer_number: Some(customer_number.into()),
                channel_number: Some(channel_number.into()),
                status: update.status.into(),
                cost: update.cost.map(Into::into),
            },
        ))
        .await
    }

    /// Records a customer's reaction to a message sent outside Elarian.
    pub async fn replay_message_reaction_update(
        &self,
        customer_number: CustomerNumber,
        channel_number: MessagingChannelNumber,
        message_id: impl Into<String>,
        reaction: MessageReaction,
        updated_at: SystemTime,
    ) -> Result<CustomerStateUpdateReply> {
        let message_id = message_id.into();
        validate::customer_number("customer_number", &customer_number)?;
        validate::channel_number("channel_number", &channel_number)?;
        validate::non_empty("message_id", &message_id)?;
        self.replay_state(Entry::ReplayMessageReactionUpdate(
            proto::ReplayMessageReactionUpdateCommand {
                provider_message_id: message_id,
                updated_at: Some(time::timestamp(updated_at)),
                customer_number: Some(customer_number.into()),
                channel_number: Some(channel_number.into()),
                reaction: reaction.into(),
            },
        ))
        .await
    }

    /// Records a messaging session held outside Elarian.
    pub async fn replay_messaging_session(
        &self,
        customer_number: CustomerNumber,
        channel_number: MessagingChannelNumber,
        update: MessageSessionUpdate,
    ) -> Result<CustomerStateUpdateReply> {
        validate::customer_number("customer_number", &customer_number)?;
        validate::channel_number("channel_number", &channel_number)?;
        validate::non_empty("update.session_id", &update.session_id)?;
        if let Some(cost) = &update.cost {
            validate::cash("update.cost", cost)?;
        }
        self.replay_state(Entry::ReplayMessagingSession(
            proto::ReplayMessagingSessionCommand {
                provider_session_id: update.session_id,
                customer_number: Some(customer_number.into()),
                channel_number: Some(channel_number.into()),
                started_at: Some(time::timestamp(update.started_at)),
                duration: Some(time::duration(update.duration)),
                end_reason: update.reason.into(),
                cost: update.cost.map(Into::into),
            },
        ))
        .await
    }

    /// Records a payment made outside Elarian.
    pub async fn replay_payment(&self, payment: PaymentReplay) -> Result<ReplayPaymentReply> {
        validate::non_empty("payment.transaction_id", &payment.transaction_id)?;
        validate::cash("payment.value", &payment.value)?;
        validate_party("payment.debit_party", &payment.debit_party)?;
        validate_party("payment.credit_party", &payment.credit_party)?;
        let command = proto::ReplayPaymentCommand {
            provider_transaction_id: payment.transaction_id,
            created_at: Some(time::timestamp(payment.created_at)),
            debit_party: Some(payment.debit_party.into()),
            credit_party: Some(payment.credit_party.into()),
            status: payment.status.into(),
            value: Some(payment.value.into()),
            narration: payment.narration,
        };
        let reply = expect_reply!(
            self.command(Entry::ReplayPayment(command)).await?,
            ReplayPayment
        )?;
        Ok(reply.into())
    }

    /// Records a status change of a payment made outside Elarian.
    pub async fn replay_payment_status_update(
        &self,
        customer_number: CustomerNumber,
        transaction_id: impl Into<String>,
        status: PaymentStatus,
        updated_at: SystemTime,
    ) -> Result<ReplayPaymentReply> {
        let transaction_id = transaction_id.into();
        validate::customer_number("customer_number", &customer_number)?;
        validate::non_empty("transaction_id", &transaction_id)?;
        let command = proto::ReplayPaymentStatusUpdateCommand {
            customer_number: Some(customer_number.into()),
            provider_transaction_id: transaction_id,
            updated_at: Some(time::timestamp(updated_at)),
            status: status.into(),
        };
        let reply = expect_reply!(
            self.command(Entry::ReplayPaymentStatusUpdate(command))
                .await?,
            ReplayPayment
        )?;
        Ok(reply.into())
    }
}

fn validate_party(argument: &'static str, party: &PaymentCounterParty) -> Result<()> {
    match party {
        PaymentCounterParty::Customer {
            customer_number,
            channel_number,
        } => {
            validate::customer_number(argument, customer_number)?;
            validate::payment_channel(argument, channel_number)
        }
        PaymentCounterParty::Purse { purse_id } => validate::non_empty(argument, purse_id),
        PaymentCounterParty::Wallet {
            customer_id,
            wallet_id,
        } => {
            validate::non_empty(argument, customer_id)?;
            validate::non_empty(argument, wallet_id)
        }
        PaymentCounterParty::Channel(channel) => {
            validate::non_empty(argument, &channel.destination)
        }
    }
}

/// A payment made outside Elarian, for [`Elarian::replay_payment`].
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentReplay {
    /// The provider's transaction id.
    pub transaction_id: String,
    /// Who paid.
    pub debit_party: PaymentCounterParty,
    /// Who was paid.
    pub credit_party: PaymentCounterParty,
    /// Its status.
    pub status: PaymentStatus,
    /// How much.
    pub value: Cash,
    /// Description.
    pub narration: String,
    /// When it was made.
    pub created_at: SystemTime,
}
