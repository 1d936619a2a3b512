//! Static configuration of the emulator: organizations, apps, API keys, purses and channel numbers.
//!
//! The configuration is JSON (see `docs/emulator.md`). Without a file, [`EmulatorConfig::default`]
//! holds the test values published in the Elarian SDK specification, so the SDK's examples run
//! against the emulator unchanged.
//!
//! ```
//! use elarian_emulator::config::{EmulatorConfig, TEST_ORG_ID, TEST_APP_ID};
//!
//! let config = EmulatorConfig::default();
//! let org = config.org(TEST_ORG_ID).expect("the default config has the test org");
//! assert!(org.app(TEST_APP_ID).is_some());
//! ```

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Organization id of the specification's test account.
pub const TEST_ORG_ID: &str = "el_org_eu_1SJ2jx";
/// App id of the specification's test account.
pub const TEST_APP_ID: &str = "el_app_WZFQdt";
/// API key of the specification's test account.
pub const TEST_API_KEY: &str =
    "el_k_test_80922f5e467e9d5e8067795c263ba0e43c6ef6de7ffa1923aaa189d2772042be";
/// Purse id of the specification's test account.
pub const TEST_PURSE_ID: &str = "el_prs_rL3IPZ";
/// Currency of the test purse.
pub const TEST_CURRENCY: &str = "KES";
/// Opening balance of the test purse (generous, so examples never run dry).
pub const TEST_PURSE_BALANCE: f64 = 1_000_000_000.0;
/// Payment channel number (mobile money paybill) of the test account.
pub const TEST_PAYMENT_CHANNEL: &str = "83044";
/// SMS short code of the test account.
pub const TEST_SMS_SHORT_CODE: &str = "83044";
/// SMS sender id of the test account.
pub const TEST_SMS_SENDER_ID: &str = "TEST_SENDER_ID";
/// USSD code of the test account.
pub const TEST_USSD_CODE: &str = "*83044#";
/// Voice, WhatsApp, Telegram and Messenger number of the test account.
pub const TEST_VOICE_NUMBER: &str = "+254711621711";

/// Errors loading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON for this schema.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parse error, with line and column.
        source: serde_json::Error,
    },
    /// The configuration is well-formed but inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole emulator configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Organizations the emulator serves.
    pub orgs: Vec<OrgConfig>,
    /// Lifetime of tokens issued by `GenerateAuthToken`, in seconds.
    #[serde(default = "default_token_lifetime")]
    pub auth_token_lifetime_secs: u64,
    /// How long an app waits for the app's reply to a received message before the simulator gets
    /// an empty reply, in milliseconds.
    #[serde(default = "default_reply_timeout")]
    pub notification_reply_timeout_ms: u64,
    /// Inactivity after which a messaging session (USSD, voice, chat) ends, in seconds.
    #[serde(default = "default_session_timeout")]
    pub session_timeout_secs: u64,
    /// Messages, completed sessions, transactions and activity sessions kept per customer (older
    /// ones are dropped and counted in `Engine::history_trimmed`): the bound on a customer's
    /// memory.
    #[serde(default = "default_history")]
    pub history_limit: usize,
    /// How the emulated payment networks settle the payments that need no customer
    /// confirmation (see [`PaymentsConfig`]).
    #[serde(default)]
    pub payments: PaymentsConfig,
    /// The web console of the `elarian-emulator` binary.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Process-wide bounds of the server (connections, buffers, resumption); see
    /// `docs/security.md`.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// The web console (a live view of the state and a customer's phone in the browser), as the
/// `elarian-emulator` binary starts it. The library starts it only when asked
/// (`EmulatorBuilder::console`).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Address of the console's HTTP listener; `null` disables the console.
    pub addr: Option<std::net::SocketAddr>,
    /// Access token the console asks for; required on a non-loopback address.
    pub access_token: Option<String>,
    /// Base URL of a campaigns HTTP API (`http://host:port/`) whose messages and sendings the
    /// console's campaigns page shows.
    pub campaigns_url: Option<String>,
    /// API key of that campaigns API.
    pub campaigns_key: Option<String>,
}

/// Default address of the console in the binary.
pub const DEFAULT_CONSOLE_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 5558);

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            addr: Some(DEFAULT_CONSOLE_ADDR.into()),
            access_token: None,
            campaigns_url: None,
            campaigns_key: None,
        }
    }
}

impl std::fmt::Debug for ConsoleConfig {
    // The access token is a credential: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("addr", &self.addr)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("campaigns_url", &self.campaigns_url)
            .field(
                "campaigns_key",
                &self.campaigns_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Process-wide bounds of the emulator's server: what one peer, or all of them together, can
/// make it hold. Every field has a default, so a config file names only those it changes.
///
/// ```
/// use elarian_emulator::config::LimitsConfig;
///
/// let limits: LimitsConfig = serde_json::from_str(r#"{"max_connections": 64}"#).unwrap();
/// assert_eq!(limits.max_connections, 64);
/// assert_eq!(limits.max_setup_frame_bytes, 16 * 1024);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most connections at once (in handshake, attached or detached); more are closed with a
    /// connection ERROR and a logged reason.
    pub max_connections: usize,
    /// Largest first frame (SETUP or RESUME) of a connection, in bytes.
    pub max_setup_frame_bytes: usize,
    /// Most bytes being reassembled from fragments on one connection, across its streams.
    pub max_connection_reassembly_bytes: usize,
    /// Most bytes being reassembled from fragments across all connections.
    pub max_total_reassembly_bytes: usize,
    /// Most detached sessions kept for resumption (the oldest is evicted first).
    pub max_detached_sessions: usize,
    /// Most bytes of resume buffers held by detached sessions (the oldest is evicted first).
    pub max_detached_bytes: usize,
    /// Longest keepalive lifetime a client may ask for, in seconds.
    pub max_keepalive_lifetime_secs: u64,
    /// Failed RESUMEs allowed per peer address per window.
    pub max_resume_failures: u32,
    /// The window of `max_resume_failures`, in seconds.
    pub resume_failure_window_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 1024,
            max_setup_frame_bytes: 16 * 1024,
            max_connection_reassembly_bytes: 32 * 1024 * 1024,
            max_total_reassembly_bytes: 256 * 1024 * 1024,
            max_detached_sessions: 256,
            max_detached_bytes: 256 * 1024 * 1024,
            max_keepalive_lifetime_secs: 300,
            max_resume_failures: 10,
            resume_failure_window_secs: 60,
        }
    }
}

fn default_token_lifetime() -> u64 {
    3600
}
fn default_reply_timeout() -> u64 {
    10_000
}
fn default_session_timeout() -> u64 {
    180
}
fn default_history() -> usize {
    100
}

/// One organization.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    /// Organization id, e.g. `el_org_eu_1SJ2jx`.
    pub id: String,
    /// Apps of this organization.
    pub apps: Vec<AppConfig>,
    /// Purses (org-level cash accounts) and their opening balances.
    #[serde(default)]
    pub purses: Vec<PurseConfig>,
    /// Channel numbers the org owns.
    #[serde(default)]
    pub channels: ChannelConfig,
}

/// One app and the API keys that may connect as it.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// App id, e.g. `el_app_WZFQdt`.
    pub id: String,
    /// API keys accepted for this app.
    pub api_keys: Vec<String>,
}

impl std::fmt::Debug for AppConfig {
    // API keys are credentials: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("id", &self.id)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .finish()
    }
}

/// A purse: an org-level account in one currency.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PurseConfig {
    /// Purse id, e.g. `el_prs_rL3IPZ`.
    pub id: String,
    /// ISO currency code, e.g. `KES`.
    pub currency: String,
    /// Opening balance.
    pub balance: f64,
}

/// Channel numbers owned by an organization. Messages and payments on other numbers are answered
/// with an invalid-channel status.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelConfig {
    /// SMS short codes and sender ids.
    pub sms: Vec<String>,
    /// USSD codes.
    pub ussd: Vec<String>,
    /// Voice numbers.
    pub voice: Vec<String>,
    /// WhatsApp numbers.
    pub whatsapp: Vec<String>,
    /// Telegram numbers or handles.
    pub telegram: Vec<String>,
    /// Facebook Messenger page numbers.
    pub messenger: Vec<String>,
    /// Email sender addresses.
    pub email: Vec<String>,
    /// Mobile-money payment channel numbers (paybills).
    pub payment: Vec<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            orgs: vec![OrgConfig {
                id: TEST_ORG_ID.into(),
                apps: vec![AppConfig {
                    id: TEST_APP_ID.into(),
                    api_keys: vec![TEST_API_KEY.into()],
                }],
                purses: vec![PurseConfig {
                    id: TEST_PURSE_ID.into(),
                    currency: TEST_CURRENCY.into(),
                    balance: TEST_PURSE_BALANCE,
                }],
                channels: ChannelConfig {
                    sms: vec![TEST_SMS_SHORT_CODE.into(), TEST_SMS_SENDER_ID.into()],
                    ussd: vec![TEST_USSD_CODE.into()],
                    voice: vec![TEST_VOICE_NUMBER.into()],
                    whatsapp: vec![TEST_VOICE_NUMBER.into()],
                    telegram: vec![TEST_VOICE_NUMBER.into()],
                    messenger: vec![TEST_VOICE_NUMBER.into()],
                    email: vec![],
                    payment: vec![TEST_PAYMENT_CHANNEL.into()],
                },
            }],
            auth_token_lifetime_secs: default_token_lifetime(),
            notification_reply_timeout_ms: default_reply_timeout(),
            session_timeout_secs: default_session_timeout(),
            history_limit: default_history(),
            payments: PaymentsConfig::default(),
            console: ConsoleConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

impl EmulatorConfig {
    /// Reads and validates a JSON configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config: EmulatorConfig =
            serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.display().to_string(),
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ids are unique and non-empty and balances are finite and non-negative.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut orgs = std::collections::HashSet::new();
        let mut purses = std::collections::HashSet::new();
        if self.orgs.is_empty() {
            return Err(ConfigError::Invalid("at least one org is required".into()));
        }
        for org in &self.orgs {
            if org.id.is_empty() || !orgs.insert(org.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "org id {:?} is empty or duplicated",
                    org.id
                )));
            }
            let mut apps = std::collections::HashSet::new();
            for app in &org.apps {
                if app.id.is_empty() || !apps.insert(app.id.as_str()) {
                    return Err(ConfigError::Invalid(format!(
                        "app id {:?} in org {} is empty or duplicated",
                        app.id, org.id
                    )));
                }
                if app.api_keys.iter().any(|k| k.is_empty()) {
                    return Err(ConfigError::Invalid(format!(
                        "app {} has an empty API key",
                        app.id
                    )));
                }
            }
            for purse in &org.purses {
                if purse.id.is_empty() || !purses.insert(purse.id.as_str()) {
                    return Err(ConfigError::Invalid(format!(
                        "purse id {:?} is empty or duplicated",
                        purse.id
                    )));
                }
                if !purse.balance.is_finite() || purse.balance < 0.0 {
                    return Err(ConfigError::Invalid(format!(
                        "purse {} has an invalid balance",
                        purse.id
                    )));
                }
            }
        }
        if self.auth_token_lifetime_secs == 0
            || self.session_timeout_secs == 0
            || self.history_limit == 0
        {
            return Err(ConfigError::Invalid(
                "auth_token_lifetime_secs, session_timeout_secs and history_limit must be positive"
                    .into(),
            ));
        }
        self.payments.validate()?;
        Ok(())
    }

    /// The organization with this id.
    pub fn org(&self, id: &str) -> Option<&OrgConfig> {
        self.orgs.iter().find(|o| o.id == id)
    }

    /// Lifetime of issued auth tokens.
    pub fn auth_token_lifetime(&self) -> Duration {
        Duration::from_secs(self.auth_token_lifetime_secs)
    }
}

/// Settlement of the payments the service completes on its own: transfers between purses and
/// wallets, and payouts from a purse or wallet to a customer or a payment channel account.
/// Checkouts (a customer as the debit party) are not among them: they wait for the customer's
/// confirmation, which a simulator gives with `UpdatePaymentStatus`.
///
/// Such a payment is answered `QUEUED`; `settle_delay_ms` later the emulator settles it (unless a
/// simulator settled it first) with `SUCCESS`, or with the status of the first rule in `fail`
/// whose pattern matches the payee, and sends the app a `PaymentStatusNotification`.
///
/// ```
/// use elarian_emulator::config::{PaymentFailure, PaymentsConfig};
/// use elarian_proto::PaymentStatus;
///
/// let payments = PaymentsConfig {
///     fail: vec![PaymentFailure::new("+25470000*", "insufficient_funds")],
///     ..PaymentsConfig::default()
/// };
/// payments.validate().unwrap();
/// assert_eq!(payments.outcome(["+254700000123"]), PaymentStatus::InsufficientFunds);
/// assert_eq!(payments.outcome(["+254711000000"]), PaymentStatus::Success);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// How long after it is initiated a payment settles, in milliseconds.
    pub settle_delay_ms: u64,
    /// Payments whose payee matches one of these rules fail; the first match wins.
    pub fail: Vec<PaymentFailure>,
    /// Most payments waiting to settle at once, over all orgs (one a simulator settled first
    /// counts until its time comes); past it new payments of this kind are refused with
    /// `THROTTLED` before any money moves.
    pub max_unsettled: usize,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            settle_delay_ms: DEFAULT_SETTLE_DELAY_MS,
            fail: Vec::new(),
            max_unsettled: DEFAULT_MAX_UNSETTLED,
        }
    }
}

/// Default of [`PaymentsConfig::settle_delay_ms`]: about the time a mobile-money network takes.
pub const DEFAULT_SETTLE_DELAY_MS: u64 = 1_000;
/// Default of [`PaymentsConfig::max_unsettled`].
pub const DEFAULT_MAX_UNSETTLED: usize = 100_000;

/// A rule that makes the payments to some payees fail.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PaymentFailure {
    /// Pattern of the payee: a customer's number (payouts to a customer), a channel account's
    /// destination (payouts to a channel), a wallet id or a purse id (transfers). `*` stands for
    /// any run of characters, so `+2547000*` matches every number starting with `+2547000` and
    /// `*` every payee.
    pub payee: String,
    /// The final status of the matching payments, such as `failed` (the default),
    /// `insufficient_funds`, `rejected` or `expired`: a status name of the wire schema, with or
    /// without the `PAYMENT_STATUS_` prefix, in any case. Statuses that are still in progress
    /// (`queued`, `pending_*`, `validated`) are not allowed.
    #[serde(default = "default_failure_status")]
    pub status: String,
}

fn default_failure_status() -> String {
    "failed".into()
}

impl PaymentFailure {
    /// A rule: payments to payees matching `payee` end with `status`.
    pub fn new(payee: impl Into<String>, status: impl Into<String>) -> Self {
        PaymentFailure {
            payee: payee.into(),
            status: status.into(),
        }
    }
}

/// Parses a payment status name: `failed`, `FAILED` or `PAYMENT_STATUS_FAILED`.
pub fn parse_payment_status(name: &str) -> Option<elarian_proto::PaymentStatus> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("PAYMENT_STATUS_") {
        upper
    } else {
        format!("PAYMENT_STATUS_{upper}")
    };
    elarian_proto::PaymentStatus::from_str_name(&full)
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also none).
fn glob_match(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or("");
    for part in parts {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

impl PaymentsConfig {
    /// Checks every failure rule has a pattern and a final status.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_unsettled == 0 {
            return Err(ConfigError::Invalid(
                "payments.max_unsettled must be positive".into(),
            ));
        }
        for rule in &self.fail {
            if rule.payee.is_empty() {
                return Err(ConfigError::Invalid(
                    "payments.fail: a rule has an empty payee pattern".into(),
                ));
            }
            match parse_payment_status(&rule.status) {
                Some(status) if is_final_failure(status) => {}
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "payments.fail: {:?} is not a final failure status (such as failed, \
                         insufficient_funds, rejected, expired)",
                        rule.status
                    )));
                }
            }
        }
        Ok(())
    }

    /// The outcome of a payment to a payee known by any of `payee_ids`: the status of the first
    /// rule matching one of them, else `SUCCESS`.
    pub fn outcome<'a>(
        &self,
        payee_ids: impl IntoIterator<Item = &'a str> + Clone,
    ) -> elarian_proto::PaymentStatus {
        for rule in &self.fail {
            if payee_ids
                .clone()
                .into_iter()
                .any(|id| glob_match(&rule.payee, id))
            {
                return parse_payment_status(&rule.status)
                    .filter(|s| is_final_failure(*s))
                    .unwrap_or(elarian_proto::PaymentStatus::Failed);
            }
        }
        elarian_proto::PaymentStatus::Success
    }

    /// The settlement delay.
    pub fn settle_delay(&self) -> Duration {
        Duration::from_millis(self.settle_delay_ms)
    }
}

/// Statuses a failed payment can end with: refused (200s) or failed (400s).
fn is_final_failure(status: elarian_proto::PaymentStatus) -> bool {
    let code = status as i32;
    (200..300).contains(&code) || (400..500).contains(&code)
}

impl OrgConfig {
    /// The app with this id.
    pub fn app(&self, id: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.id == id)
    }
}

impl ChannelConfig {
    /// The numbers configured for a messaging channel (`MessagingChannel` as i32).
    pub fn messaging_numbers(&self, channel: elarian_proto::MessagingChannel) -> &[String] {
        use elarian_proto::MessagingChannel as C;
        match channel {
            C::Sms => &self.sms,
            C::Ussd => &self.ussd,
            C::Voice => &self.voice,
            C::Whatsapp => &self.whatsapp,
            C::Telegram => &self.telegram,
            C::FbMessenger => &self.messenger,
            C::Email => &self.email,
            C::Unspecified => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_as_json() {
        let config = EmulatorConfig::default();
        config.validate().unwrap();
        let text = serde_json::to_string_pretty(&config).unwrap();
        let back: EmulatorConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn debug_never_prints_api_keys() {
        let config = EmulatorConfig::default();
        let debug = format!("{config:?}");
        assert!(!debug.contains(TEST_API_KEY));
    }

    #[test]
    fn rejects_duplicate_orgs_and_negative_balances() {
        let mut config = EmulatorConfig::default();
        config.orgs.push(config.orgs[0].clone());
        assert!(config.validate().is_err());
        let mut config = EmulatorConfig::default();
        config.orgs[0].purses[0].balance = -1.0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn payment_failure_rules_match_patterns_and_need_a_final_status() {
        assert!(glob_match("+2547*", "+254711"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(glob_match("*42", "+25442"));
        assert!(!glob_match("*42", "+254420"));
        assert!(!glob_match("a*b*a", "ab"));
        assert!(!glob_match("exact", "exactly"));
        let config: EmulatorConfig = serde_json::from_str(
            r#"{"orgs":[{"id":"o","apps":[{"id":"a","api_keys":["k"]}]}],
                "payments":{"settle_delay_ms":5,"fail":[{"payee":"+1*"},
                {"payee":"w-*","status":"PAYMENT_STATUS_REJECTED"}]}}"#,
        )
        .unwrap();
        config.validate().unwrap();
        use elarian_proto::PaymentStatus as S;
        assert_eq!(config.payments.outcome(["+100"]), S::Failed);
        assert_eq!(config.payments.outcome(["x", "w-1"]), S::Rejected);
        assert_eq!(config.payments.outcome(["+200"]), S::Success);
        for bad in ["queued", "success", "pending_confirmation", "nonsense"] {
            let mut c = EmulatorConfig::default();
            c.payments.fail.push(PaymentFailure::new("*", bad));
            assert!(c.validate().is_err(), "{bad} accepted");
        }
        let mut c = EmulatorConfig::default();
        c.payments.max_unsettled = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn minimal_file_uses_defaults() {
        let config: EmulatorConfig =
            serde_json::from_str(r#"{"orgs":[{"id":"o","apps":[{"id":"a","api_keys":["k"]}]}]}"#)
                .unwrap();
        config.validate().unwrap();
        assert_eq!(config.auth_token_lifetime_secs, 3600);
        assert!(config.orgs[0].purses.is_empty());
    }
}
