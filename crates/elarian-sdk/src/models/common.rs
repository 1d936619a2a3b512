//! Small shared models: money, numbers, tags, secondary ids, reminders, activities, auth tokens.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use elarian_proto as proto;
use serde::{Deserialize, Serialize};

use super::enums::{CustomerNumberProvider, MessagingChannel, PaymentChannel};
use super::time;

/// An amount of money in a currency.
///
/// ```
/// use elarian_sdk::Cash;
/// let fee = Cash::new("KES", 150.0);
/// assert_eq!(fee.currency_code, "KES");
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cash {
    /// ISO 4217 currency code, e.g. `KES`.
    pub currency_code: String,
    /// The amount.
    pub amount: f64,
}

impl Cash {
    /// Cash of `amount` in `currency_code`.
    pub fn new(currency_code: impl Into<String>, amount: f64) -> Self {
        Cash {
            currency_code: currency_code.into(),
            amount,
        }
    }
}

wire_struct!(Cash <=> proto::Cash {
    currency_code: same,
    amount: same,
});

/// A customer's number: a phone number, a Telegram or Messenger id, an email address, …
///
/// ```
/// use elarian_sdk::{CustomerNumber, CustomerNumberProvider};
/// let number = CustomerNumber::cellular("+254700000000");
/// assert_eq!(number.provider, CustomerNumberProvider::Cellular);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct CustomerNumber {
    /// The number itself.
    pub number: String,
    /// Who provides it.
    pub provider: CustomerNumberProvider,
    /// Optional partition (used by some providers).
    pub partition: Option<String>,
}

impl CustomerNumber {
    /// A number of the given provider.
    pub fn new(number: impl Into<String>, provider: CustomerNumberProvider) -> Self {
        CustomerNumber {
            number: number.into(),
            provider,
            partition: None,
        }
    }

    /// A mobile phone number.
    pub fn cellular(number: impl Into<String>) -> Self {
        Self::new(number, CustomerNumberProvider::Cellular)
    }

    /// A Telegram account.
    pub fn telegram(number: impl Into<String>) -> Self {
        Self::new(number, CustomerNumberProvider::Telegram)
    }

    /// A Facebook Messenger account.
    pub fn facebook(number: impl Into<String>) -> Self {
        Self::new(number, CustomerNumberProvider::Facebook)
    }

    /// An email address.
    pub fn email(address: impl Into<String>) -> Self {
        Self::new(address, CustomerNumberProvider::Email)
    }

    /// An app or web identity.
    pub fn app(id: impl Into<String>) -> Self {
        Self::new(id, CustomerNumberProvider::App)
    }
}

wire_struct!(CustomerNumber <=> proto::CustomerNumber {
    number: same,
    provider: into,
    partition: same,
});

/// One of the app's messaging channel numbers (an SMS short code, a USSD code, a WhatsApp number, …).
///
/// ```
/// use elarian_sdk::{MessagingChannel, MessagingChannelNumber};
/// let ussd = MessagingChannelNumber::new("*83044#", MessagingChannel::Ussd);
/// assert_eq!(ussd.channel, MessagingChannel::Ussd);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct MessagingChannelNumber {
    /// The number or code.
    pub number: String,
    /// The channel.
    pub channel: MessagingChannel,
}

impl MessagingChannelNumber {
    /// A channel number.
    pub fn new(number: impl Into<String>, channel: MessagingChannel) -> Self {
        MessagingChannelNumber {
            number: number.into(),
            channel,
        }
    }

    /// An SMS short code or sender id.
    pub fn sms(number: impl Into<String>) -> Self {
        Self::new(number, MessagingChannel::Sms)
    }

    /// A USSD code such as `*83044#`.
    pub fn ussd(code: impl Into<String>) -> Self {
        Self::new(code, MessagingChannel::Ussd)
    }

    /// A voice number.
    pub fn voice(number: impl Into<String>) -> Self {
        Self::new(number, MessagingChannel::Voice)
    }

    /// A WhatsApp number.
    pub fn whatsapp(number: impl Into<String>) -> Self {
        Self::new(number, MessagingChannel::Whatsapp)
    }

    /// A Telegram account.
    pub fn telegram(number: impl Into<String>) -> Self {
        Self::new(number, MessagingChannel::Telegram)
    }

    /// A Facebook Messenger page.
    pub fn fb_messenger(number: impl Into<String>) -> Self {
        Self::new(number, MessagingChannel::FbMessenger)
    }

    /// An email address.
    pub fn email(address: impl Into<String>) -> Self {
        Self::new(address, MessagingChannel::Email)
    }
}

wire_struct!(MessagingChannelNumber <=> proto::MessagingChannelNumber {
    number: same,
    channel: into,
});

/// One of the app's payment channel numbers (e.g. a mobile-money paybill).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PaymentChannelNumber {
    /// The number.
    pub number: String,
    /// The channel.
    pub channel: PaymentChannel,
}

impl PaymentChannelNumber {
    /// A payment channel number.
    pub fn new(number: impl Into<String>, channel: PaymentChannel) -> Self {
        PaymentChannelNumber {
            number: number.into(),
            channel,
        }
    }

    /// A mobile-money number (e.g. a paybill).
    pub fn cellular(number: impl Into<String>) -> Self {
        Self::new(number, PaymentChannel::Cellular)
    }
}

wire_struct!(PaymentChannelNumber <=> proto::PaymentChannelNumber {
    number: same,
    channel: into,
});

/// Tags and secondary ids are both a `CustomerIndex` on the wire (a key, a value and an optional
/// expiry): one set of constructors and conversions serves both.
macro_rules! customer_index {
    ($name:ident, $new_doc:literal, $expiring_doc:literal) => {
        impl $name {
            #[doc = $new_doc]
            pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
                $name {
                    key: key.into(),
                    value: value.into(),
                    expires_at: None,
                }
            }

            #[doc = $expiring_doc]
            pub fn expiring_at(mut self, at: SystemTime) -> Self {
                self.expires_at = Some(at);
                self
            }

            pub(crate) fn mapping(&self) -> proto::IndexMapping {
                proto::IndexMapping {
                    key: self.key.clone(),
                    value: Some(self.value.clone()),
                }
            }
        }

        impl From<$name> for proto::CustomerIndex {
            fn from(index: $name) -> Self {
                proto::CustomerIndex {
                    mapping: Some(proto::IndexMapping {
                        key: index.key,
                        value: Some(index.value),
                    }),
                    expires_at: index.expires_at.map(time::timestamp),
                }
            }
        }

        impl From<proto::CustomerIndex> for $name {
            fn from(index: proto::CustomerIndex) -> Self {
                let mapping = index.mapping.unwrap_or_default();
                // Servers and the published clients write `{0, 0}` for "never expires" (the
                // JavaScript client reads the field unconditionally), so an expiry at or
                // before the epoch means none.
                let expires_at = index
                    .expires_at
                    .as_ref()
                    .filter(|t| t.seconds > 0 || (t.seconds == 0 && t.nanos > 0));
                $name {
                    key: mapping.key,
                    value: mapping.value.unwrap_or_default(),
                    expires_at: time::opt_system_time(expires_at),
                }
            }
        }
    };
}

/// A tag on a customer: a key/value label, optionally expiring. Tags group customers for
/// tag-wide commands such as [`send_message_by_tag`](crate::Elarian::send_message_by_tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// When the tag expires, if ever.
    pub expires_at: Option<SystemTime>,
}

customer_index!(
    Tag,
    "A tag that does not expire.",
    "The same tag, expiring at `at`."
);

/// Another identifier of a customer in the app's own systems (e.g. an account number), optionally
/// expiring. A customer can be addressed by it with [`Elarian::customer_by_secondary_id`](crate::Elarian::customer_by_secondary_id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SecondaryId {
    /// The key, e.g. `account`.
    pub key: String,
    /// The value.
    pub value: String,
    /// When it expires, if ever.
    pub expires_at: Option<SystemTime>,
}

customer_index!(
    SecondaryId,
    "A secondary id that does not expire.",
    "The same id, expiring at `at`."
);

/// A reminder: Elarian notifies the app ([`on_reminder`](crate::Elarian::on_reminder)) at
/// `remind_at`, then every `interval` if one is set.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use elarian_sdk::Reminder;
/// let reminder = Reminder::new("loan-due", SystemTime::now() + Duration::from_secs(3600))
///     .with_payload("loan #42")
///     .every(Duration::from_secs(86_400));
/// assert_eq!(reminder.interval, Some(Duration::from_secs(86_400)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reminder {
    /// Identifies the reminder on the customer (a new one with the same key replaces it).
    pub key: String,
    /// When it first fires.
    pub remind_at: SystemTime,
    /// Repeat period, if it repeats.
    pub interval: Option<Duration>,
    /// Free text handed back in the notification.
    pub payload: Option<String>,
}

impl Reminder {
    /// A one-off reminder.
    pub fn new(key: impl Into<String>, remind_at: SystemTime) -> Self {
        Reminder {
            key: key.into(),
            remind_at,
            interval: None,
            payload: None,
        }
    }

    /// Repeats every `interval`.
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Carries `payload`.
    pub fn with_payload(mut self, payload: impl Into<String>) -> Self {
        self.payload = Some(payload.into());
        self
    }
}

impl From<Reminder> for proto::CustomerReminder {
    fn from(r: Reminder) -> Self {
        proto::CustomerReminder {
            key: r.key,
            remind_at: Some(time::timestamp(r.remind_at)),
            interval: r.interval.map(time::duration),
            payload: r.payload,
        }
    }
}

impl From<proto::CustomerReminder> for Reminder {
    fn from(r: proto::CustomerReminder) -> Self {
        Reminder {
            key: r.key,
            remind_at: time::opt_system_time(r.remind_at.as_ref()).unwrap_or(std::time::UNIX_EPOCH),
            interval: time::opt_std_duration(r.interval.as_ref()),
            payload: r.payload,
        }
    }
}

/// Something a customer did in the app's own channels (a web visit, a purchase, …).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Activity {
    /// What happened, e.g. `signup`.
    pub key: String,
    /// Details.
    pub properties: HashMap<String, String>,
    /// When it happened (set by the server when it reports activities).
    pub created_at: Option<SystemTime>,
}

impl Activity {
    /// An activity with no properties.
    pub fn new(key: impl Into<String>) -> Self {
        Activity {
            key: key.into(),
            properties: HashMap::new(),
            created_at: None,
        }
    }

    /// Adds a property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }
}

wire_struct!(Activity <=> proto::CustomerActivity {
    key: same,
    properties: same,
    created_at: time,
});

/// A short-lived token a browser or mobile client can connect with instead of the API key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthToken {
    /// The token.
    pub token: String,
    /// How long it stays valid.
    pub lifetime: Duration,
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never print it.
        f.debug_struct("AuthToken")
            .field("token", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl From<proto::GenerateAuthTokenReply> for AuthToken {
    fn from(r: proto::GenerateAuthTokenReply) -> Self {
        AuthToken {
            token: r.token,
            lifetime: time::opt_std_duration(r.lifetime.as_ref()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn cash_round_trips() {
        let cash = Cash::new("KES", 12.5);
        assert_eq!(Cash::from(proto::Cash::from(cash.clone())), cash);
    }

    #[test]
    fn customer_number_round_trips_for_every_provider() {
        for &provider in CustomerNumberProvider::ALL
            .iter()
            .chain([CustomerNumberProvider::Unknown(99)].iter())
        {
            let mut number = CustomerNumber::new("+254700000001", provider);
            number.partition = Some("p1".into());
            assert_eq!(
                CustomerNumber::from(proto::CustomerNumber::from(number.clone())),
                number
            );
        }
    }

    #[test]
    fn channel_numbers_round_trip() {
        for &channel in MessagingChannel::ALL {
            let n = MessagingChannelNumber::new("83044", channel);
            assert_eq!(
                MessagingChannelNumber::from(proto::MessagingChannelNumber::from(n.clone())),
                n
            );
        }
        for &channel in PaymentChannel::ALL {
            let n = PaymentChannelNumber::new("83044", channel);
            assert_eq!(
                PaymentChannelNumber::from(proto::PaymentChannelNumber::from(n.clone())),
                n
            );
        }
    }

    #[test]
    fn tags_and_secondary_ids_round_trip_with_and_without_expiry() {
        for tag in [
            Tag::new("tier", "gold"),
            Tag::new("tier", "gold").expiring_at(at(1_900_000_000)),
        ] {
            assert_eq!(Tag::from(proto::CustomerIndex::from(tag.clone())), tag);
        }
        for id in [
            SecondaryId::new("acct", "42"),
            SecondaryId::new("acct", "42").expiring_at(at(1_900_000_000)),
        ] {
            assert_eq!(
                SecondaryId::from(proto::CustomerIndex::from(id.clone())),
                id
            );
        }
    }

    #[test]
    fn zero_or_negative_expiry_reads_as_never_expires() {
        for seconds in [0, -5] {
            let index = proto::CustomerIndex {
                mapping: Some(proto::IndexMapping {
                    key: "tier".into(),
                    value: Some("gold".into()),
                }),
                expires_at: Some(proto::prost_types::Timestamp { seconds, nanos: 0 }),
            };
            assert_eq!(Tag::from(index.clone()), Tag::new("tier", "gold"));
            assert_eq!(SecondaryId::from(index), SecondaryId::new("tier", "gold"));
        }
    }

    #[test]
    fn reminders_round_trip() {
        let once = Reminder::new("k", at(1_800_000_000));
        let repeating = Reminder::new("k", at(1_800_000_000))
            .every(Duration::from_secs(60))
            .with_payload("p");
        for r in [once, repeating] {
            assert_eq!(Reminder::from(proto::CustomerReminder::from(r.clone())), r);
        }
    }

    #[test]
    fn activities_round_trip() {
        let mut a = Activity::new("visit").with_property("page", "/home");
        assert_eq!(Activity::from(proto::CustomerActivity::from(a.clone())), a);
        a.created_at = Some(at(1_700_000_000));
        assert_eq!(Activity::from(proto::CustomerActivity::from(a.clone())), a);
    }

    #[test]
    fn auth_token_debug_hides_the_token() {
        let token = AuthToken {
            token: "secret-token-value".into(),
            lifetime: Duration::from_secs(60),
        };
        assert!(!format!("{token:?}").contains("secret-token-value"));
    }

    #[test]
    fn models_serde_round_trip() {
        let tag = Tag::new("a", "b").expiring_at(at(5));
        let json = serde_json::to_string(&tag).expect("serialize");
        assert_eq!(
            serde_json::from_str::<Tag>(&json).expect("deserialize"),
            tag
        );
        let r = Reminder::new("k", at(7)).every(Duration::from_millis(1500));
        let json = serde_json::to_string(&r).expect("serialize");
        assert_eq!(
            serde_json::from_str::<Reminder>(&json).expect("deserialize"),
            r
        );
    }
}
