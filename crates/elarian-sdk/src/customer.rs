//! A customer of the app and the commands that act on it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::sync::OnceCell;

use elarian_proto as proto;
use elarian_proto::app_to_server_command::Entry;
use elarian_proto::app_to_server_command_reply::Entry as ReplyEntry;

use crate::client::Elarian;
use crate::command::{BoolStatus, Target, customer_oneof, expect_reply};
use crate::decode;
use crate::encode;
use crate::error::{Error, Result};
use crate::models::state::metadata_to_proto;
use crate::models::{
    Activity, ConsentAction, ConsentUpdateReply, CustomerNumber, CustomerState,
    CustomerStateUpdateReply, DataValue, Message, MessageReply, MessagingChannel,
    MessagingChannelNumber, Reminder, SecondaryId, Tag, VoiceAction,
};
use crate::number_resolution;
use crate::validate;

/// A customer of the app, addressed by number, by id or by secondary id.
///
/// Cheap to clone; clones share what was learnt: once a reply tells the customer's id, later
/// commands address the customer by id.
///
/// A customer known only by id or secondary id (as handed to the handlers of reminders, message
/// and payment statuses) can still be sent messages and calls: the first command that needs a
/// number reads the customer's state once, remembers the numbers found there, and uses the one
/// that suits the channel (a phone number for SMS, voice, USSD and WhatsApp, the Telegram account
/// for Telegram, …). [`Error::NoCustomerNumber`] says the state holds none.
///
/// ```no_run
/// # async fn demo(app: elarian_sdk::Elarian) -> Result<(), elarian_sdk::Error> {
/// use elarian_sdk::{CustomerNumber, Tag};
/// let customer = app.customer(CustomerNumber::cellular("+254700000000"));
/// customer.update_tags(vec![Tag::new("tier", "gold")]).await?;
/// let state = customer.get_state().await?;
/// assert!(state.identity.tags.iter().any(|t| t.key == "tier"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Customer {
    app: Elarian,
    number: Option<CustomerNumber>,
    secondary_id: Option<SecondaryId>,
    id: Arc<Mutex<Option<String>>>,
    /// Numbers learnt from the state, when the customer was not addressed by number. Set once,
    /// and only when non-empty, so a customer without numbers is looked up again next time.
    known_numbers: Arc<OnceCell<Vec<CustomerNumber>>>,
}

impl std::fmt::Debug for Customer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Customer")
            .field("id", &self.id())
            .field("number", &self.number())
            .field("secondary_id", &self.secondary_id)
            .finish()
    }
}

impl Customer {
    pub(crate) fn from_parts(
        app: Elarian,
        id: Option<String>,
        number: Option<CustomerNumber>,
        secondary_id: Option<SecondaryId>,
    ) -> Self {
        Customer {
            app,
            number,
            secondary_id,
            id: Arc::new(Mutex::new(id.filter(|id| !id.is_empty()))),
            known_numbers: Arc::new(OnceCell::new()),
        }
    }

    /// The app this customer belongs to.
    pub fn app(&self) -> &Elarian {
        &self.app
    }

    /// The customer's id, if known.
    pub fn id(&self) -> Option<String> {
        self.id.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The customer's number: the one it was addressed by (or that came with the notification),
    /// else the first one learnt from its state (see [`Customer`]), if any.
    pub fn number(&self) -> Option<&CustomerNumber> {
        self.number
            .as_ref()
            .or_else(|| self.known_numbers.get().and_then(|n| n.first()))
    }

    /// The secondary id the customer was addressed by, if any.
    pub fn secondary_id(&self) -> Option<&SecondaryId> {
        self.secondary_id.as_ref()
    }

    fn learn(&self, id: Option<&String>) {
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            let mut known = self.id.lock().unwrap_or_else(|p| p.into_inner());
            if known.as_deref() != Some(id.as_str()) {
                *known = Some(id.clone());
            }
        }
    }

    /// Runs `f` with the customer's id when it is known, to encode a command in place with it
    /// (commands address a customer by id first, see `target`): the id is not cloned into a
    /// message, and the bytes go straight into the client's buffer.
    fn with_id<T>(&self, f: impl FnOnce(&str) -> T) -> Option<T> {
        let id = self.id.lock().unwrap_or_else(|p| p.into_inner());
        id.as_deref().map(f)
    }

    pub(crate) fn target(&self) -> Result<Target> {
        if let Some(id) = self.id() {
            return Ok(Target::Id(id));
        }
        if let Some(number) = &self.number {
            validate::customer_number("customer.number", number)?;
            return Ok(Target::Number(number.clone().into()));
        }
        if let Some(secondary_id) = &self.secondary_id {
            validate::secondary_id("customer.secondary_id", secondary_id)?;
            return Ok(Target::SecondaryId(secondary_id.mapping()));
        }
        Err(validate::invalid(
            "customer",
            "has no id, number or secondary id",
        ))
    }

    /// The number a command on `channel` addresses the customer by: the one it was addressed
    /// by, else one learnt from its state (read once per customer, shared by clones).
    async fn require_number(
        &self,
        channel: Option<MessagingChannel>,
    ) -> Result<proto::CustomerNumber> {
        if let Some(number) = &self.number {
            validate::customer_number("customer.number", number)?;
            return Ok(number.clone().into());
        }
        // Concurrent callers wait for the one read in flight instead of each reading the state.
        let numbers = self
            .known_numbers
            .get_or_try_init(|| async {
                let state = self.fetch_state().await?;
                let numbers = number_resolution::numbers_in_state(&state);
                if numbers.is_empty() {
                    return Err(self.no_number());
                }
                tracing::debug!(
                    customer_id = %state.customer_id,
                    count = numbers.len(),
                    "learnt the customer's numbers from its state"
                );
                Ok(numbers)
            })
            .await?;
        let number = number_resolution::pick(numbers, channel).ok_or_else(|| self.no_number())?;
        Ok(number.clone().into())
    }

    fn no_number(&self) -> Error {
        // The secondary id's value may be personal data (an account number): name the key only.
        let customer = match (self.id(), &self.secondary_id) {
            (Some(id), _) => id,
            (None, Some(secondary)) => format!("with secondary id `{}`", secondary.key),
            (None, None) => "without id".to_string(),
        };
        Error::NoCustomerNumber { customer }
    }

    /// The customer's id, fetching the state to learn it when it is not known yet.
    async fn require_id(&self) -> Result<String> {
        if let Some(id) = self.id() {
            return Ok(id);
        }
        let state = self.get_state().await?;
        validate::non_empty("customer.id", &state.customer_id)?;
        Ok(state.customer_id)
    }

    // Not `async fn`s, and combinators rather than `async` blocks: the entry goes into the
    // command's encoding now, and the command's future is held once (see `Elarian::command`).
    fn update(&self, entry: Entry) -> impl Future<Output = Result<CustomerStateUpdateReply>> + '_ {
        self.update_with(self.app.command(entry))
    }

    fn update_with(
        &self,
        sent: impl Future<Output = Result<ReplyEntry>> + 'static,
    ) -> impl Future<Output = Result<CustomerStateUpdateReply>> + '_ {
        sent.map(move |reply| {
            let reply = expect_reply!(reply?, UpdateCustomerState)?;
            self.learn(reply.customer_id.as_ref());
            Ok(reply.into())
        })
    }

    /// App data commands are answered with `update_customer_app_data`; a server answering with
    /// the generic `update_customer_state` is accepted too.
    fn app_data_update(
        &self,
        entry: Entry,
    ) -> impl Future<Output = Result<CustomerStateUpdateReply>> + '_ {
        use proto::app_to_server_command_reply::Entry as Reply;
        self.app.command(entry).map(move |reply| {
            let reply: CustomerStateUpdateReply = match reply? {
                Reply::UpdateCustomerState(r) => BoolStatus::checked(r)?.into(),
                Reply::UpdateCustomerAppData(r) => BoolStatus::checked(r)?.into(),
                _ => {
                    return Err(Error::UnexpectedReply {
                        expected: "UpdateCustomerAppData",
                    });
                }
            };
            self.learn(reply.customer_id.as_ref());
            Ok(reply)
        })
    }

    /// Fetches everything Elarian knows about the customer.
    pub async fn get_state(&self) -> Result<CustomerState> {
        let state = self.fetch_state().await?;
        if self.number.is_none() {
            let numbers = number_resolution::numbers_in_state(&state);
            // Spares a later message or call the read; fails harmlessly when already known.
            if !numbers.is_empty() {
                let _ = self.known_numbers.set(numbers);
            }
        }
        Ok(state)
    }

    // A combinator, as `update` is: an `async fn` would hold the command's future beside its
    // own state and copy the reply through one more layer.
    fn fetch_state(&self) -> impl Future<Output = Result<CustomerState>> + '_ {
        use futures_util::future::{Either, ready};
        let by_id = self.with_id(|id| {
            self.app
                .command_with_raw_reply(&mut |buf| encode::get_state_by_id(id, buf))
        });
        let read = match by_id {
            // The reply is read straight into the SDK's state (see `decode`).
            Some(sent) => Either::Left(sent.map(|reply| decode::customer_state(reply?))),
            None => {
                let target = match self.target() {
                    Ok(target) => target,
                    Err(error) => return Either::Right(ready(Err(error))),
                };
                let command = proto::GetCustomerStateCommand {
                    customer: Some(customer_oneof!(get_customer_state_command, target)),
                };
                Either::Right(
                    self.app
                        .command(Entry::GetCustomerState(command))
                        .map(|reply| {
                            let reply = expect_reply!(reply?, GetCustomerState)?;
                            Ok(CustomerState::from(reply.data.unwrap_or_default()))
                        }),
                )
            }
        };
        Either::Left(read.map(move |state| {
            let state = state?;
            self.learn(Some(&state.customer_id));
            Ok(state)
        }))
    }

    /// Merges `other`'s state into this customer's and discards `other`.
    pub async fn adopt_state(&self, other: &Customer) -> Result<CustomerStateUpdateReply> {
        use proto::adopt_customer_state_command::OtherCustomer;
        let customer_id = self.require_id().await?;
        let other_customer = match other.target()? {
            Target::Id(id) => OtherCustomer::OtherCustomerId(id),
            Target::Number(n) => OtherCustomer::OtherCustomerNumber(n),
            Target::SecondaryId(s) => OtherCustomer::OtherSecondaryId(s),
        };
        self.update(Entry::AdoptCustomerState(
            proto::AdoptCustomerStateCommand {
                customer_id,
                other_customer: Some(other_customer),
            },
        ))
        .await
    }

    /// Sends a message from one of the app's channel numbers. Check the reply's status: a
    /// refusal such as `NoConsent` is returned, not raised.
    ///
    /// A customer known only by id is looked up for a number once (see [`Customer`]); it fails
    /// with [`Error::NoCustomerNumber`] when Elarian knows none.
    pub async fn send_message(
        &self,
        channel_number: MessagingChannelNumber,
        message: Message,
    ) -> Result<MessageReply> {
        validate::channel_number("channel_number", &channel_number)?;
        if message.body.is_none() {
            return Err(validate::invalid("message", "has no body"));
        }
        let customer_number = self.require_number(Some(channel_number.channel)).await?;
        let command = proto::SendMessageCommand {
            customer_number: Some(customer_number),
            channel_number: Some(channel_number.into()),
            message: Some(message.into()),
        };
        let reply = expect_reply!(
            self.app.command(Entry::SendMessage(command)).await?,
            SendMessage
        )?;
        self.learn(reply.customer_id.as_ref());
        Ok(reply.into())
    }

    /// Replies to a message the customer sent.
    pub async fn reply_to_message(
        &self,
        message_id: impl Into<String>,
        message: Message,
    ) -> Result<MessageReply> {
        let message_id = message_id.into();
        validate::non_empty("message_id", &message_id)?;
        if message.body.is_none() {
            return Err(validate::invalid("message", "has no body"));
        }
        let customer_id = self.require_id().await?;
        let command = proto::ReplyToMessageCommand {
            customer_id,
            message_id,
            message: Some(message.into()),
        };
        let reply = expect_reply!(
            self.app.command(Entry::ReplyToMessage(command)).await?,
            SendMessage
        )?;
        Ok(reply.into())
    }

    /// Calls the customer from the app's voice number and runs `actions`.
    pub async fn make_voice_call(
        &self,
        voice_number: impl Into<String>,
        actions: Vec<VoiceAction>,
    ) -> Result<MessageReply> {
        if actions.is_empty() {
            return Err(validate::invalid("actions", "must not be empty"));
        }
        self.send_message(
            MessagingChannelNumber::new(voice_number, MessagingChannel::Voice),
            Message::voice(actions),
        )
        .await
    }

    /// Records an activity of the customer from `source` (e.g. a web app) in `session_id`.
    pub async fn update_activity(
        &self,
        source: impl Into<String>,
        session_id: impl Into<String>,
        activity: Activity,
    ) -> Result<CustomerStateUpdateReply> {
        let source = source.into();
        let session_id = session_id.into();
        validate::non_empty("source", &source)?;
        validate::non_empty("session_id", &session_id)?;
        validate::non_empty("activity.key", &activity.key)?;
        let customer_number = self.require_number(None).await?;
        let command = proto::CustomerActivityCommand {
            customer_number: Some(customer_number),
            source,
            session_id,
            key: activity.key,
            properties: activity.properties,
        };
        let reply = expect_reply!(
            self.app.command(Entry::CustomerActivity(command)).await?,
            CustomerActivity
        )?;
        self.learn(reply.customer_id.as_ref());
        Ok(reply.into())
    }

    /// Allows or blocks messages from one of the app's channels to the customer.
    pub async fn update_messaging_consent(
        &self,
        channel_number: MessagingChannelNumber,
        action: ConsentAction,
    ) -> Result<ConsentUpdateReply> {
        validate::channel_number("channel_number", &channel_number)?;
        let customer_number = self.require_number(Some(channel_number.channel)).await?;
        let command = proto::UpdateMessagingConsentCommand {
            customer_number: Some(customer_number),
            channel_number: Some(channel_number.into()),
            update: action.into(),
        };
        let reply = expect_reply!(
            self.app
                .command(Entry::UpdateMessagingConsent(command))
                .await?,
            UpdateMessagingConsent
        )?;
        self.learn(reply.customer_id.as_ref());
        Ok(reply.into())
    }

    /// Fetches the customer's app data and locks it against other leases (up to 90 s, until
    /// the next update). `None` when the customer has none.
    pub async fn lease_app_data(&self) -> Result<Option<DataValue>> {
        let command = proto::LeaseCustomerAppDataCommand {
            customer: Some(customer_oneof!(
                lease_customer_app_data_command,
                self.target()?
            )),
        };
        let reply = expect_reply!(
            self.app
                .command(Entry::LeaseCustomerAppData(command))
                .await?,
            LeaseCustomerAppData
        )?;
        self.learn(reply.customer_id.as_ref());
        Ok(reply.value.and_then(DataValue::from_wire))
    }

    /// Replaces the customer's app data (and releases a lease).
    pub async fn update_app_data(&self, data: DataValue) -> Result<CustomerStateUpdateReply> {
        let command = proto::UpdateCustomerAppDataCommand {
            update: Some(data.into()),
            customer: Some(customer_oneof!(
                update_customer_app_data_command,
                self.target()?
            )),
        };
        self.app_data_update(Entry::UpdateCustomerAppData(command))
            .await
    }

    /// Removes the customer's app data.
    pub async fn delete_app_data(&self) -> Result<CustomerStateUpdateReply> {
        let command = proto::DeleteCustomerAppDataCommand {
            customer: Some(customer_oneof!(
                delete_customer_app_data_command,
                self.target()?
            )),
        };
        self.app_data_update(Entry::DeleteCustomerAppData(command))
            .await
    }

    /// The customer's metadata (from [`get_state`](Self::get_state)).
    pub async fn get_metadata(&self) -> Result<HashMap<String, DataValue>> {
        Ok(self.get_state().await?.identity.metadata)
    }

    /// Sets metadata values (other keys are kept).
    pub async fn update_metadata(
        &self,
        metadata: HashMap<String, DataValue>,
    ) -> Result<CustomerStateUpdateReply> {
        validate::keys("metadata", metadata.keys())?;
        if let Some(sent) = self.with_id(|id| {
            self.app
                .command_with(&mut |buf| encode::update_metadata_by_id(id, &metadata, buf))
        }) {
            drop(metadata);
            return self.update_with(sent).await;
        }
        let command = proto::UpdateCustomerMetadataCommand {
            updates: metadata_to_proto(metadata),
            customer: Some(customer_oneof!(
                update_customer_metadata_command,
                self.target()?
            )),
        };
        self.update(Entry::UpdateCustomerMetadata(command)).await
    }

    /// Removes metadata by key.
    pub async fn delete_metadata<I, K>(&self, keys: I) -> Result<CustomerStateUpdateReply>
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let deletions: Vec<String> = keys.into_iter().map(Into::into).collect();
        validate::keys("keys", deletions.iter())?;
        let command = proto::DeleteCustomerMetadataCommand {
            deletions,
            customer: Some(customer_oneof!(
                delete_customer_metadata_command,
                self.target()?
            )),
        };
        self.update(Entry::DeleteCustomerMetadata(command)).await
    }

    /// The customer's secondary ids (from [`get_state`](Self::get_state)).
    pub async fn get_secondary_ids(&self) -> Result<Vec<SecondaryId>> {
        Ok(self.get_state().await?.identity.secondary_ids)
    }

    /// Adds or updates secondary ids.
    pub async fn update_secondary_ids(
        &self,
        ids: Vec<SecondaryId>,
    ) -> Result<CustomerStateUpdateReply> {
        for id in &ids {
            validate::secondary_id("ids", id)?;
        }
        let command = proto::UpdateCustomerSecondaryIdCommand {
            updates: ids.into_iter().map(Into::into).collect(),
            customer: Some(customer_oneof!(
                update_customer_secondary_id_command,
                self.target()?
            )),
        };
        self.update(Entry::UpdateCustomerSecondaryId(command)).await
    }

    /// Removes secondary ids (matched by key and value).
    pub async fn delete_secondary_ids(
        &self,
        ids: Vec<SecondaryId>,
    ) -> Result<CustomerStateUpdateReply> {
        for id in &ids {
            validate::secondary_id("ids", id)?;
        }
        let command = proto::DeleteCustomerSecondaryIdCommand {
            deletions: ids.iter().map(SecondaryId::mapping).collect(),
            customer: Some(customer_oneof!(
                delete_customer_secondary_id_command,
                self.target()?
            )),
        };
        self.update(Entry::DeleteCustomerSecondaryId(command)).await
    }

    /// The customer's tags (from [`get_state`](Self::get_state)).
    pub async fn get_tags(&self) -> Result<Vec<Tag>> {
        Ok(self.get_state().await?.identity.tags)
    }

    /// Adds or updates tags.
    pub async fn update_tags(&self, tags: Vec<Tag>) -> Result<CustomerStateUpdateReply> {
        for tag in &tags {
            validate::tag("tags", tag)?;
        }
        let command = proto::UpdateCustomerTagCommand {
            updates: tags.into_iter().map(Into::into).collect(),
            customer: Some(customer_oneof!(update_customer_tag_command, self.target()?)),
        };
        self.update(Entry::UpdateCustomerTag(command)).await
    }

    /// Removes tags by key.
    pub async fn delete_tags<I, K>(&self, keys: I) -> Result<CustomerStateUpdateReply>
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let deletions: Vec<String> = keys.into_iter().map(Into::into).collect();
        validate::keys("keys", deletions.iter())?;
        let command = proto::DeleteCustomerTagCommand {
            deletions,
            customer: Some(customer_oneof!(delete_customer_tag_command, self.target()?)),
        };
        self.update(Entry::DeleteCustomerTag(command)).await
    }

    /// Sets a reminder; [`Elarian::on_reminder`] fires when it is due.
    pub async fn add_reminder(&self, reminder: Reminder) -> Result<CustomerStateUpdateReply> {
        validate::reminder(&reminder)?;
        let command = proto::AddCustomerReminderCommand {
            reminder: Some(reminder.into()),
            customer: Some(customer_oneof!(
                add_customer_reminder_command,
                self.target()?
            )),
        };
        self.app_data_update(Entry::AddCustomerReminder(command))
            .await
    }

    /// Cancels the reminder with `key`.
    pub async fn cancel_reminder(
        &self,
        key: impl Into<String>,
    ) -> Result<CustomerStateUpdateReply> {
        let key = key.into();
        validate::non_empty("key", &key)?;
        let command = proto::CancelCustomerReminderCommand {
            key,
            customer: Some(customer_oneof!(
                cancel_customer_reminder_command,
                self.target()?
            )),
        };
        self.app_data_update(Entry::CancelCustomerReminder(command))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientConfig;

    fn app() -> Elarian {
        Elarian::new(
            ClientConfig::builder()
                .org_id("org")
                .app_id("app")
                .api_key("key")
                .endpoint_url("tcp://127.0.0.1:1"),
        )
        .expect("valid config")
    }

    #[test]
    fn the_missing_number_error_names_the_customer_but_not_its_secondary_id_value() {
        let app = app();
        let by_id = app.customer_by_id("el_cst_1");
        let error = by_id.no_number();
        assert!(
            matches!(&error, Error::NoCustomerNumber { customer } if customer == "el_cst_1"),
            "{error:?}"
        );
        assert!(error.to_string().contains("has no known number"), "{error}");

        let by_account = app.customer_by_secondary_id("account", "ACC-0042");
        let message = by_account.no_number().to_string();
        assert!(message.contains("account"), "{message}");
        assert!(!message.contains("ACC-0042"), "{message}");
    }

    #[tokio::test]
    async fn a_customer_addressed_by_number_does_not_read_its_state_for_one() {
        // Not connected: any read of the state would fail with NotConnected.
        let customer = app().customer(CustomerNumber::telegram("@ann"));
        let number = customer
            .require_number(Some(MessagingChannel::Sms))
            .await
            .expect("the addressed number is used as given");
        assert_eq!(number, CustomerNumber::telegram("@ann").into());
        assert_eq!(customer.number(), Some(&CustomerNumber::telegram("@ann")));
    }

    #[tokio::test]
    async fn resolving_a_number_needs_the_connection_and_is_retried_after_a_failure() {
        let customer = app().customer_by_id("el_cst_1");
        for _ in 0..2 {
            let error = customer
                .send_message(
                    MessagingChannelNumber::new("83044", MessagingChannel::Sms),
                    Message::text("hi"),
                )
                .await
                .expect_err("no connection");
            assert!(matches!(error, Error::NotConnected), "{error:?}");
        }
        assert_eq!(customer.number(), None);
    }
}
