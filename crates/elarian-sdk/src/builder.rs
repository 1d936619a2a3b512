//! [`ElarianBuilder`]: configure and connect an [`Elarian`] app in one expression.

use std::sync::Arc;
use std::time::Duration;

use elarian_core::{
    ClientConfigBuilder, ConnectionEvent, Credentials, Dialer, Endpoint, ReconnectPolicy, Secret,
    TlsClientOptions,
};

use crate::client::Elarian;
use crate::error::Result;

/// Builds an [`Elarian`] app: [`connect`](Self::connect) yields a connected app in one
/// expression, [`build`](Self::build) an app not yet connected (to register handlers first,
/// then call [`Elarian::connect`]). From [`Elarian::builder`].
///
/// The settings are those of [`ClientConfigBuilder`] (each method here sets the one of the
/// same name there; [`config`](Self::config) reaches the rest), checked when the app is built.
///
/// ```no_run
/// use std::time::Duration;
/// use elarian_sdk::{CustomerNumber, Elarian};
///
/// # async fn run() -> Result<(), elarian_sdk::Error> {
/// let app = Elarian::builder()
///     .org_id("el_org_eu_1SJ2jx")
///     .app_id("el_app_WZFQdt")
///     .api_key("el_k_test_…")
///     // The app's own spacing of reconnection attempts instead of the jittered backoff.
///     .reconnect_delay(|attempt| Duration::from_secs(u64::from(attempt.min(30))))
///     .connect()
///     .await?;
/// let state = app.customer(CustomerNumber::cellular("+254700000000")).get_state().await?;
/// # let _ = state;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `connect` or `build` is called"]
pub struct ElarianBuilder {
    config: ClientConfigBuilder,
}

/// Setters that forward to the [`ClientConfigBuilder`] method of the same name.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[doc = concat!("Sets [`ClientConfigBuilder::", stringify!($name), "`].")]
            pub fn $name(mut self, $($arg: $ty),*) -> Self {
                self.config = self.config.$name($($arg),*);
                self
            }
        )*
    };
}

impl ElarianBuilder {
    /// A builder with the defaults of [`ClientConfigBuilder`].
    pub fn new() -> Self {
        Self::default()
    }

    forward! {
        org_id(org_id: impl Into<String>);
        app_id(app_id: impl Into<String>);
        api_key(key: impl Into<Secret>);
        auth_token(token: impl Into<Secret>);
        credentials(credentials: Credentials);
        allow_notifications(allow: bool);
        endpoint(endpoint: Endpoint);
        endpoint_url(url: &str);
        dialer(dialer: Arc<dyn Dialer>);
        tls_options(options: TlsClientOptions);
        root_certificate_pem(pem: &[u8]);
        root_certificate_der(der: impl Into<Vec<u8>>);
        keepalive_interval(interval: Duration);
        max_lifetime(lifetime: Duration);
        resumption(enabled: bool);
        reconnect_policy(policy: ReconnectPolicy);
        reconnect_delay(delay: impl Fn(u32) -> Duration + Send + Sync + 'static);
        connect_timeout(timeout: Duration);
        initial_connect_timeout(timeout: Duration);
        command_timeout(timeout: Duration);
        notification_timeout(timeout: Duration);
        disconnect_timeout(timeout: Duration);
        max_concurrent_notifications(limit: usize);
        max_pending_notifications(limit: usize);
        max_queued_commands(limit: usize);
        max_command_size(bytes: usize);
        on_event(callback: impl Fn(&ConnectionEvent) + Send + Sync + 'static);
    }

    /// Any other change to the underlying [`ClientConfigBuilder`].
    pub fn config(
        mut self,
        change: impl FnOnce(ClientConfigBuilder) -> ClientConfigBuilder,
    ) -> Self {
        self.config = change(self.config);
        self
    }

    /// The app, not connected yet: register handlers, then [`Elarian::connect`]. Fails with
    /// [`Error::Config`](crate::Error::Config) for an invalid setting.
    pub fn build(self) -> Result<Elarian> {
        Elarian::new(self.config)
    }

    /// Builds the app and connects it; resolves once the connection is up, like
    /// [`Elarian::connect`] (whose errors it returns, a timeout with the last attempt's error
    /// as its [`source`](std::error::Error::source)).
    pub async fn connect(self) -> Result<Elarian> {
        let app = self.build()?;
        app.connect().await?;
        Ok(app)
    }
}

impl From<ClientConfigBuilder> for ElarianBuilder {
    fn from(config: ClientConfigBuilder) -> Self {
        ElarianBuilder { config }
    }
}
