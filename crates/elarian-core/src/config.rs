//! Client configuration and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use elarian_transport::io::{Dialer, Endpoint, TlsClientOptions};

use crate::backoff::ReconnectPolicy;
use crate::error::ConfigError;
use crate::event::{ConnectionEvent, EventCallback, EventHub};
use crate::secret::Secret;

/// Production endpoint: TLS over TCP.
pub const DEFAULT_TLS_HOST: &str = "tcp.elarian.dev";
/// Production endpoint: WebSocket over TLS.
pub const DEFAULT_WEBSOCKET_HOST: &str = "web.elarian.dev";
/// Port of both production endpoints.
pub const DEFAULT_PORT: u16 = 443;

/// How the client authenticates in the SETUP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An API key (sent as `AppConnectionMetadata.api_key`).
    ApiKey(Secret),
    /// A short-lived auth token from `GenerateAuthToken` (sent as `auth_token`).
    AuthToken(Secret),
}

/// What the connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// An application: sends `AppToServerCommand`s, receives `ServerToAppNotification`s.
    #[default]
    App,
    /// A simulator playing customers' devices: sends `SimulatorToServerCommand`s, receives
    /// `ServerToSimulatorNotification`s (`simulator_mode = true` in the SETUP).
    Simulator,
}

/// Everything [`Client::connect`](crate::Client::connect) needs. Build one with
/// [`ClientConfig::builder`].
///
/// `Debug` never shows the API key or auth token.
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) org_id: String,
    pub(crate) app_id: String,
    pub(crate) credentials: Credentials,
    pub(crate) role: Role,
    pub(crate) allow_notifications: bool,
    pub(crate) endpoint: Endpoint,
    pub(crate) dialer: Option<Arc<dyn Dialer>>,
    pub(crate) tls: TlsClientOptions,
    pub(crate) keepalive_interval: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) resumption: bool,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) initial_connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) notification_timeout: Duration,
    pub(crate) disconnect_timeout: Duration,
    pub(crate) max_concurrent_notifications: usize,
    pub(crate) max_pending_notifications: usize,
    pub(crate) max_queued_commands: usize,
    pub(crate) max_commands_in_flight: usize,
    pub(crate) max_command_size: usize,
    pub(crate) callbacks: Vec<EventCallback>,
    pub(crate) event_hub: Option<Arc<EventHub>>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("org_id", &self.org_id)
            .field("app_id", &self.app_id)
            .field("credentials", &self.credentials)
            .field("role", &self.role)
            .field("allow_notifications", &self.allow_notifications)
            .field("endpoint", &self.endpoint)
            .field("dialer", &self.dialer.as_ref().map(|d| d.describe()))
            .field("tls", &self.tls)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("max_lifetime", &self.max_lifetime)
            .field("resumption", &self.resumption)
            .field("reconnect", &self.reconnect)
            .field("connect_timeout", &self.connect_timeout)
            .field("initial_connect_timeout", &self.initial_connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("notification_timeout", &self.notification_timeout)
            .field("disconnect_timeout", &self.disconnect_timeout)
            .field(
                "max_concurrent_notifications",
                &self.max_concurrent_notifications,
            )
            .field("max_pending_notifications", &self.max_pending_notifications)
            .field("max_queued_commands", &self.max_queued_commands)
            .field("max_commands_in_flight", &self.max_commands_in_flight)
            .field("max_command_size", &self.max_command_size)
            .field("callbacks", &self.callbacks.len())
            .field("shared_event_hub", &self.event_hub.is_some())
            .finish()
    }
}

impl ClientConfig {
    /// Starts a builder with the defaults listed on [`ClientConfigBuilder`].
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder::default()
    }

    /// The organization id.
    pub fn org_id(&self) -> &str {
        &self.org_id
    }
    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }
    /// The credentials (redacted in `Debug`).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }
    /// App or simulator.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Whether the server may send notifications (`simplex_mode = !allow_notifications`).
    pub fn allow_notifications(&self) -> bool {
        self.allow_notifications
    }
    /// Where to connect (unless a [`dialer`](Self::dialer) is set).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
    /// The custom way of opening transports, if one is set (see
    /// [`ClientConfigBuilder::dialer`]).
    pub fn dialer(&self) -> Option<&Arc<dyn Dialer>> {
        self.dialer.as_ref()
    }
    /// TLS settings for `tls://` and `wss://` endpoints.
    pub fn tls_options(&self) -> &TlsClientOptions {
        &self.tls
    }
    /// RSocket keepalive interval.
    pub fn keepalive_interval(&self) -> Duration {
        self.keepalive_interval
    }
    /// RSocket max lifetime (silence after which the connection counts as dead); also how long
    /// a detached session can be resumed.
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }
    /// Whether sessions are resumable.
    pub fn resumption(&self) -> bool {
        self.resumption
    }
    /// The reconnect policy.
    pub fn reconnect_policy(&self) -> &ReconnectPolicy {
        &self.reconnect
    }
    /// Bound of each phase of a connection attempt.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// Bound of [`Client::connect`](crate::Client::connect) over all its attempts.
    pub fn initial_connect_timeout(&self) -> Duration {
        self.initial_connect_timeout
    }
    /// Bound of one command, waiting for a connection included.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }
    /// Bound of one notification handler call.
    pub fn notification_timeout(&self) -> Duration {
        self.notification_timeout
    }
    /// Bound of the graceful part of [`Client::disconnect`](crate::Client::disconnect).
    pub fn disconnect_timeout(&self) -> Duration {
        self.disconnect_timeout
    }
    /// How many notification handlers may run at once.
    pub fn max_concurrent_notifications(&self) -> usize {
        self.max_concurrent_notifications
    }
    /// How many received notifications may wait for a free handler slot; beyond that the
    /// connection stops reading.
    pub fn max_pending_notifications(&self) -> usize {
        self.max_pending_notifications
    }
    /// How many commands may wait for a connection.
    pub fn max_queued_commands(&self) -> usize {
        self.max_queued_commands
    }
    /// Most commands in flight at once (the window's maximum; see
    /// [`ClientConfigBuilder::max_commands_in_flight`]).
    pub fn max_commands_in_flight(&self) -> usize {
        self.max_commands_in_flight
    }
    /// Largest encoded command, in bytes.
    pub fn max_command_size(&self) -> usize {
        self.max_command_size
    }
}

/// Builds a [`ClientConfig`].
///
/// Defaults: role App, notifications allowed, endpoint `tls://tcp.elarian.dev:443`, keepalive
/// 1 s, max lifetime 60 s, resumption on, [`ReconnectPolicy::default`] (jittered exponential
/// backoff from 200 ms to 30 s, unlimited attempts), connect timeout 10 s per attempt phase, initial
/// connect timeout 60 s, command timeout 30 s, notification timeout 5 s, disconnect timeout
/// 5 s, 64 concurrent notification handlers, 1024 pending notifications, 1024 queued commands,
/// 1024 commands in flight, 16 MiB per command.
///
/// ```
/// use std::time::Duration;
/// use elarian_core::{ClientConfig, Role};
///
/// let config = ClientConfig::builder()
///     .org_id("el_org_eu_1SJ2jx")
///     .app_id("el_app_WZFQdt")
///     .api_key("el_k_test_secret")
///     .role(Role::App)
///     .command_timeout(Duration::from_secs(10))
///     .build()?;
/// assert!(!format!("{config:?}").contains("el_k_test_secret"));
/// # Ok::<(), elarian_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ClientConfigBuilder {
    org_id: Option<String>,
    app_id: Option<String>,
    credentials: Option<Credentials>,
    role: Role,
    allow_notifications: bool,
    endpoint: Option<Endpoint>,
    endpoint_error: Option<String>,
    dialer: Option<Arc<dyn Dialer>>,
    tls: TlsClientOptions,
    tls_error: Option<String>,
    keepalive_interval: Duration,
    max_lifetime: Duration,
    resumption: bool,
    reconnect: ReconnectPolicy,
    connect_timeout: Duration,
    initial_connect_timeout: Duration,
    command_timeout: Duration,
    notification_timeout: Duration,
    disconnect_timeout: Duration,
    max_concurrent_notifications: usize,
    max_pending_notifications: usize,
    max_queued_commands: usize,
    max_commands_in_flight: usize,
    max_command_size: usize,
    callbacks: Vec<EventCallback>,
    event_hub: Option<Arc<EventHub>>,
}

impl Default for ClientConfigBuilder {
    fn default() -> Self {
        ClientConfigBuilder {
            org_id: None,
            app_id: None,
            credentials: None,
            role: Role::App,
            allow_notifications: true,
            endpoint: None,
            endpoint_error: None,
            dialer: None,
            tls: TlsClientOptions::new(),
            tls_error: None,
            keepalive_interval: Duration::from_secs(1),
            max_lifetime: Duration::from_secs(60),
            resumption: true,
            reconnect: ReconnectPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            initial_connect_timeout: Duration::from_secs(60),
            command_timeout: Duration::from_secs(30),
            notification_timeout: Duration::from_secs(5),
            disconnect_timeout: Duration::from_secs(5),
            max_concurrent_notifications: 64,
            max_pending_notifications: 1024,
            max_queued_commands: 1024,
            max_commands_in_flight: 1024,
            max_command_size: 16 * 1024 * 1024,
            callbacks: Vec::new(),
            event_hub: None,
        }
    }
}

impl fmt::Debug for ClientConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfigBuilder")
            .field("org_id", &self.org_id)
            .field("app_id", &self.app_id)
            .field("credentials", &self.credentials)
            .field("role", &self.role)
            .field("endpoint", &self.endpoint)
            .field("dialer", &self.dialer.as_ref().map(|d| d.describe()))
            .finish_non_exhaustive()
    }
}

impl ClientConfigBuilder {
    /// The organization id (required).
    pub fn org_id(mut self, org_id: impl Into<String>) -> Self {
        self.org_id = Some(org_id.into());
        self
    }

    /// The app id (required).
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Authenticate with an API key (this or [`auth_token`](Self::auth_token) is required).
    pub fn api_key(mut self, key: impl Into<Secret>) -> Self {
        self.credentials = Some(Credentials::ApiKey(key.into()));
        self
    }

    /// Authenticate with an auth token.
    pub fn auth_token(mut self, token: impl Into<Secret>) -> Self {
        self.credentials = Some(Credentials::AuthToken(token.into()));
        self
    }

    /// Sets the credentials.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// App (default) or simulator.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Whether the server may send notifications on this connection (default `true`); sent as
    /// `simplex_mode = !allow`. This holds for simulators too: a simulator in simplex mode would
    /// never hear the messages apps send to its customers.
    pub fn allow_notifications(mut self, allow: bool) -> Self {
        self.allow_notifications = allow;
        self
    }

    /// Where to connect (default `tls://tcp.elarian.dev:443`). Any transport works, including
    /// plain `tcp://` for a local server.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self.endpoint_error = None;
        self
    }

    /// Where to connect, as a URL such as `wss://web.elarian.dev:443/` or `tcp://127.0.0.1:7000`.
    /// A URL that does not parse makes [`build`](Self::build) fail.
    pub fn endpoint_url(mut self, url: &str) -> Self {
        match url.parse::<Endpoint>() {
            Ok(endpoint) => {
                self.endpoint = Some(endpoint);
                self.endpoint_error = None;
            }
            Err(error) => self.endpoint_error = Some(format!("{url:?}: {error}")),
        }
        self
    }

    /// Opens every transport with `dialer` instead of dialling the
    /// [`endpoint`](Self::endpoint): the first connection, every reconnection and every
    /// resumption. [`connect_timeout`](Self::connect_timeout) bounds each dial as it bounds
    /// opening a socket. For a server in the same process, such as the Elarian emulator's
    /// in-process dialer, this skips the operating system's network stack altogether.
    ///
    /// The endpoint, if also set, is then only shown in logs and `Debug` output; the TLS
    /// settings are not used.
    pub fn dialer(mut self, dialer: Arc<dyn Dialer>) -> Self {
        self.dialer = Some(dialer);
        self
    }

    /// TLS settings for `tls://` and `wss://` endpoints.
    pub fn tls_options(mut self, options: TlsClientOptions) -> Self {
        self.tls = options;
        self.tls_error = None;
        self
    }

    /// Also trusts the root certificates in this PEM text (for a private CA or a test server).
    /// Unparsable PEM makes [`build`](Self::build) fail.
    pub fn root_certificate_pem(mut self, pem: &[u8]) -> Self {
        match self.tls.clone().add_root_certificates_pem(pem) {
            Ok(tls) => self.tls = tls,
            Err(error) => self.tls_error = Some(error.to_string()),
        }
        self
    }

    /// Also trusts this DER-encoded root certificate.
    pub fn root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.tls = self.tls.add_root_certificate_der(der);
        self
    }

    /// RSocket keepalive interval (default 1 s).
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// RSocket max lifetime (default 60 s): silence after which the connection counts as dead.
    /// A detached session is resumed only within this time.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Whether to make sessions resumable (default `true`), so that a dropped connection loses
    /// no command in flight.
    pub fn resumption(mut self, enabled: bool) -> Self {
        self.resumption = enabled;
        self
    }

    /// The reconnect policy.
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Waits `delay(attempt)` before reconnection attempt `attempt` (1-based) instead of the
    /// default jittered exponential backoff; the policy's attempt limit still applies. The
    /// same as [`ReconnectPolicy::custom_delay`] on the current policy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use elarian_core::ClientConfig;
    ///
    /// let config = ClientConfig::builder()
    ///     .org_id("el_org_1")
    ///     .app_id("el_app_1")
    ///     .api_key("el_k_1")
    ///     .reconnect_delay(|attempt| Duration::from_millis(250).saturating_mul(attempt))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.reconnect_policy().delay(4), Duration::from_secs(1));
    /// ```
    pub fn reconnect_delay(
        mut self,
        delay: impl Fn(u32) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.reconnect = self.reconnect.custom_delay(delay);
        self
    }

    /// Bound of each phase of a connection attempt (default 10 s): opening the transport (TCP,
    /// TLS, WebSocket handshakes), then the SETUP (or RESUME) exchange with the server.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`Client::connect`](crate::Client::connect) waits for the first connection,
    /// over all attempts (default 60 s).
    pub fn initial_connect_timeout(mut self, timeout: Duration) -> Self {
        self.initial_connect_timeout = timeout;
        self
    }

    /// Bound of one command, including time spent waiting for a reconnection (default 30 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long a notification handler may run before the default reply is sent (default 5 s).
    pub fn notification_timeout(mut self, timeout: Duration) -> Self {
        self.notification_timeout = timeout;
        self
    }

    /// How long [`Client::disconnect`](crate::Client::disconnect) lets in-flight commands finish
    /// (default 5 s).
    pub fn disconnect_timeout(mut self, timeout: Duration) -> Self {
        self.disconnect_timeout = timeout;
        self
    }

    /// How many notification handlers may run at once (default 64). Further notifications wait
    /// in the client for a free slot, in arrival order, up to
    /// [`max_pending_notifications`](Self::max_pending_notifications); none is refused (see the
    /// crate docs, "Backpressure").
    pub fn max_concurrent_notifications(mut self, limit: usize) -> Self {
        self.max_concurrent_notifications = limit;
        self
    }

    /// How many received notifications may wait for a free handler slot (default 1024). While
    /// there is room, the client keeps reading from the connection, so replies to the commands
    /// that running handlers send still arrive; once that many wait, it stops reading until a
    /// handler finishes (see the crate docs, "Backpressure"); it also stops once the waiting
    /// notifications hold 64 MiB. Zero stops reading as soon as every handler slot is taken,
    /// so a handler awaiting a command's reply may then wait for the notification timeout.
    pub fn max_pending_notifications(mut self, limit: usize) -> Self {
        self.max_pending_notifications = limit;
        self
    }

    /// How many commands may wait while the client is (re)connecting (default 1024); beyond it
    /// commands fail with [`CommandError::QueueFull`](crate::CommandError::QueueFull). Zero makes
    /// every command issued while disconnected fail at once.
    pub fn max_queued_commands(mut self, limit: usize) -> Self {
        self.max_queued_commands = limit;
        self
    }

    /// Most of the client's commands in flight at once (default 1024, the limit the Elarian
    /// emulator enforces per connection). Commands beyond it wait for a slot within their
    /// timeout rather than fail. When the server answers a command with RSocket REJECTED (not
    /// processed, for example because its own limit is lower), the client shrinks this window,
    /// sends the command again after a jittered backoff within its timeout, and grows the window
    /// back as commands are answered; see [`Client::flow_stats`](crate::Client::flow_stats).
    pub fn max_commands_in_flight(mut self, limit: usize) -> Self {
        self.max_commands_in_flight = limit;
        self
    }

    /// Largest encoded command in bytes (default 16 MiB).
    pub fn max_command_size(mut self, bytes: usize) -> Self {
        self.max_command_size = bytes;
        self
    }

    /// Registers a callback for every [`ConnectionEvent`], including the ones emitted before
    /// [`Client::connect`](crate::Client::connect) returns. It runs on the runtime task: keep it
    /// short and non-blocking.
    pub fn on_event(mut self, callback: impl Fn(&ConnectionEvent) + Send + Sync + 'static) -> Self {
        self.callbacks.push(Arc::new(callback));
        self
    }

    /// Emits the events of every client built from this config through `hub` rather than
    /// through a hub of each client's own, so that the hub's subscribers (see
    /// [`EventHub::subscribe_all`]) follow successive clients. Callbacks given with
    /// [`on_event`](Self::on_event) are added to the hub once, by [`build`](Self::build).
    pub fn event_hub(mut self, hub: Arc<EventHub>) -> Self {
        self.event_hub = Some(hub);
        self
    }

    /// Checks the settings and builds the config.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        let org_id = required_text("org_id", self.org_id)?;
        let app_id = required_text("app_id", self.app_id)?;
        let credentials = self.credentials.ok_or(ConfigError::Missing("api_key"))?;
        let secret = match &credentials {
            Credentials::ApiKey(s) => ("api_key", s),
            Credentials::AuthToken(s) => ("auth_token", s),
        };
        if secret.1.expose().trim().is_empty() {
            return Err(invalid(secret.0, "must not be empty"));
        }
        if let Some(reason) = self.endpoint_error {
            return Err(invalid("endpoint", reason));
        }
        if let Some(reason) = self.tls_error {
            return Err(invalid("root_certificate", reason));
        }
        let endpoint = match self.endpoint {
            Some(endpoint) => endpoint,
            None => default_endpoint()?,
        };
        // A dialer replaces the endpoint, so a scheme this build cannot dial does not matter.
        if self.dialer.is_none() && !endpoint.scheme().is_enabled() {
            return Err(invalid(
                "endpoint",
                format!(
                    "{}:// endpoints need the `{}` feature (of elarian-sdk or elarian-core), which this build leaves out",
                    endpoint.scheme(),
                    endpoint.scheme().required_features().join("` and `")
                ),
            ));
        }
        for (field, value) in [
            ("keepalive_interval", self.keepalive_interval),
            ("max_lifetime", self.max_lifetime),
            ("connect_timeout", self.connect_timeout),
            ("initial_connect_timeout", self.initial_connect_timeout),
            ("command_timeout", self.command_timeout),
            ("notification_timeout", self.notification_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(field, "must be greater than zero"));
            }
        }
        // RSocket encodes both as 31-bit millisecond counts.
        for (field, value) in [
            ("keepalive_interval", self.keepalive_interval),
            ("max_lifetime", self.max_lifetime),
        ] {
            if value.as_millis() > i32::MAX as u128 {
                return Err(invalid(field, "must be below 2^31 milliseconds"));
            }
        }
        if self.max_lifetime <= self.keepalive_interval {
            return Err(invalid(
                "max_lifetime",
                "must be longer than the keepalive interval",
            ));
        }
        if self.max_concurrent_notifications == 0 {
            return Err(invalid(
                "max_concurrent_notifications",
                "must be at least 1",
            ));
        }
        // Semaphore permits are capped well below usize::MAX.
        if self.max_concurrent_notifications > tokio::sync::Semaphore::MAX_PERMITS
            || self.max_queued_commands > tokio::sync::Semaphore::MAX_PERMITS
        {
            return Err(invalid("max_queued_commands", "is too large"));
        }
        if self.max_commands_in_flight == 0 {
            return Err(invalid("max_commands_in_flight", "must be at least 1"));
        }
        if self.max_command_size == 0 {
            return Err(invalid("max_command_size", "must be at least 1"));
        }
        if self.reconnect.attempt_limit() == Some(0) {
            return Err(invalid(
                "reconnect_policy",
                "max_attempts must be at least 1 (or unlimited)",
            ));
        }
        if !self.reconnect.has_custom_delay()
            && self.reconnect.initial_ceiling() > self.reconnect.max_ceiling()
        {
            return Err(invalid(
                "reconnect_policy",
                "initial_delay must not exceed max_delay",
            ));
        }
        let mut callbacks = self.callbacks;
        if let Some(hub) = &self.event_hub {
            for callback in callbacks.drain(..) {
                hub.add_callback(callback);
            }
        }
        Ok(ClientConfig {
            org_id,
            app_id,
            credentials,
            role: self.role,
            allow_notifications: self.allow_notifications,
            endpoint,
            dialer: self.dialer,
            tls: self.tls,
            keepalive_interval: self.keepalive_interval,
            max_lifetime: self.max_lifetime,
            resumption: self.resumption,
            reconnect: self.reconnect,
            connect_timeout: self.connect_timeout,
            initial_connect_timeout: self.initial_connect_timeout,
            command_timeout: self.command_timeout,
            notification_timeout: self.notification_timeout,
            disconnect_timeout: self.disconnect_timeout,
            max_concurrent_notifications: self.max_concurrent_notifications,
            max_pending_notifications: self.max_pending_notifications,
            max_queued_commands: self.max_queued_commands,
            max_commands_in_flight: self.max_commands_in_flight,
            max_command_size: self.max_command_size,
            callbacks,
            event_hub: self.event_hub,
        })
    }
}

fn default_endpoint() -> Result<Endpoint, ConfigError> {
    format!("tls://{DEFAULT_TLS_HOST}:{DEFAULT_PORT}")
        .parse::<Endpoint>()
        .map_err(|e| invalid("endpoint", e.to_string()))
}

fn required_text(field: &'static str, value: Option<String>) -> Result<String, ConfigError> {
    match value {
        None => Err(ConfigError::Missing(field)),
        Some(v) if v.trim().is_empty() => Err(invalid(field, "must not be empty")),
        Some(v) => Ok(v),
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ClientConfigBuilder {
        ClientConfig::builder()
            .org_id("el_org_1")
            .app_id("el_app_1")
            .api_key("el_k_1")
    }

    #[test]
    fn endpoints_of_features_left_out_are_refused_when_built() {
        for (url, enabled) in [
            ("tcp://localhost:1", true),
            ("tls://localhost:1", cfg!(feature = "tls")),
            ("ws://localhost:1", cfg!(feature = "websocket")),
            (
                "wss://localhost:1",
                cfg!(all(feature = "tls", feature = "websocket")),
            ),
        ] {
            let result = base().endpoint_url(url).build();
            if enabled {
                assert!(result.is_ok(), "{url}: {result:?}");
            } else {
                let error = result.unwrap_err().to_string();
                assert!(error.contains("feature"), "{url}: {error}");
            }
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn defaults() {
        let config = base().build().unwrap();
        assert_eq!(config.endpoint().to_string(), "tls://tcp.elarian.dev:443");
        assert_eq!(config.role(), Role::App);
        assert!(config.allow_notifications());
        assert!(config.resumption());
        assert_eq!(config.keepalive_interval(), Duration::from_secs(1));
        assert_eq!(config.max_lifetime(), Duration::from_secs(60));
        assert_eq!(config.notification_timeout(), Duration::from_secs(5));
        assert_eq!(config.max_concurrent_notifications(), 64);
        assert_eq!(config.max_pending_notifications(), 1024);
        assert_eq!(
            base()
                .max_pending_notifications(8)
                .build()
                .unwrap()
                .max_pending_notifications(),
            8
        );
        assert_eq!(config.reconnect_policy().attempt_limit(), None);
    }

    #[test]
    fn invalid_settings_are_typed_errors() {
        assert_eq!(
            ClientConfig::builder()
                .app_id("a")
                .api_key("k")
                .build()
                .unwrap_err(),
            ConfigError::Missing("org_id")
        );
        assert_eq!(
            ClientConfig::builder()
                .org_id("o")
                .app_id("a")
                .build()
                .unwrap_err(),
            ConfigError::Missing("api_key")
        );
        let field = |b: ClientConfigBuilder| match b.build().unwrap_err() {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(field(base().org_id("  ")), "org_id");
        assert_eq!(field(base().api_key("")), "api_key");
        assert_eq!(field(base().auth_token(" ")), "auth_token");
        assert_eq!(field(base().endpoint_url("ftp://x")), "endpoint");
        assert_eq!(
            field(base().max_lifetime(Duration::from_millis(500))),
            "max_lifetime"
        );
        assert_eq!(
            field(base().command_timeout(Duration::ZERO)),
            "command_timeout"
        );
        assert_eq!(
            field(base().max_commands_in_flight(0)),
            "max_commands_in_flight"
        );
        assert_eq!(
            field(base().max_concurrent_notifications(0)),
            "max_concurrent_notifications"
        );
        assert_eq!(
            field(base().reconnect_policy(ReconnectPolicy::default().max_attempts(Some(0)))),
            "reconnect_policy"
        );
        assert_eq!(
            field(
                base().reconnect_policy(
                    ReconnectPolicy::default()
                        .initial_delay(Duration::from_secs(10))
                        .max_delay(Duration::from_secs(1))
                )
            ),
            "reconnect_policy"
        );
    }

    #[test]
    fn endpoint_url_and_websocket() {
        let config = base()
            .endpoint_url(&format!("wss://{DEFAULT_WEBSOCKET_HOST}:{DEFAULT_PORT}/"))
            .build()
            .unwrap();
        assert_eq!(config.endpoint().host(), DEFAULT_WEBSOCKET_HOST);
        // A later valid endpoint replaces an earlier invalid one.
        assert!(
            base()
                .endpoint_url("nope")
                .endpoint_url("tcp://127.0.0.1:9000")
                .build()
                .is_ok()
        );
    }
}
