//! The web console: a live view of the emulator's state and a customer's phone in the browser.
//!
//! An HTTP listener of its own (axum, on the emulator's runtime) serves a few server-rendered
//! pages with embedded assets and a small plain script: every data section is HTML rendered on
//! the server ([`fragments`]) and served again under `/fragments/...`. A server-sent event
//! stream (`/api/events`), fed by the engine's observation [`feed`], tells the page what
//! changed; the script re-fetches only the affected fragments, so nothing polls the engine. A
//! JSON API under `/api/...` serves the same snapshots and the customer's actions to scripts
//! (and to the page's forms). Campaigns come from a campaigns HTTP API ([`campaigns`]).
//!
//! Access: on a loopback address the console needs no token, but only answers requests whose
//! `Host` is a loopback name (so a web page elsewhere cannot reach it by DNS rebinding), and its
//! actions only accept JSON bodies (which a cross-site form cannot send). Any other address
//! requires an access token, asked for by the page and sent back as a cookie or a bearer token.

mod api;
pub(crate) mod campaigns;
pub(crate) mod feed;
mod fragments;
mod pages;

pub use campaigns::CampaignsUrlError;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use tokio::sync::{Semaphore, broadcast, watch};

use crate::delivery::Hub;
use crate::engine::Engine;
use crate::server::CommandLimits;

/// Event streams open at once; more get 503 (each holds a slot of the feed's ring at most).
const MAX_STREAMS: usize = 64;
/// Name of the cookie that carries the access token.
pub(crate) const TOKEN_COOKIE: &str = "elarian_console_token";

/// What every console request needs.
pub(crate) struct Ctx {
    pub engine: Arc<Engine>,
    pub hub: Arc<Hub>,
    pub limits: CommandLimits,
    /// Where the campaigns page reads campaigns, if anywhere.
    pub campaigns: Option<campaigns::Source>,
    token: Option<String>,
    streams: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
}

/// Why the console did not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A non-loopback address without an access token.
    #[error(
        "refusing to serve the console on {0}, which is not a loopback address, without an access token: set one (--console-token or console.access_token) or use 127.0.0.1"
    )]
    Exposed(SocketAddr),
    /// An empty access token.
    #[error("the console access token must not be empty")]
    EmptyToken,
    /// The campaigns source's URL or key is unusable.
    #[error(transparent)]
    Campaigns(#[from] CampaignsUrlError),
    /// The listener could not bind.
    #[error("cannot listen for the console on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Where the console reads campaigns: a campaigns HTTP API's base URL and API key.
#[derive(Clone)]
pub(crate) struct CampaignsSource {
    pub url: String,
    pub key: String,
}

impl std::fmt::Debug for CampaignsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignsSource")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Checks the address, token and campaigns source, binds, and serves until `shutdown`.
/// Returns the bound address and the serving task.
pub(crate) async fn start(
    addr: SocketAddr,
    token: Option<String>,
    campaigns: Option<CampaignsSource>,
    engine: Arc<Engine>,
    hub: Arc<Hub>,
    limits: CommandLimits,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ConsoleError> {
    if token.as_deref() == Some("") {
        return Err(ConsoleError::EmptyToken);
    }
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(ConsoleError::Exposed(addr));
    }
    let campaigns = campaigns
        .map(|c| campaigns::Source::new(&c.url, &c.key))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ConsoleError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let ctx = Arc::new(Ctx {
        engine,
        hub,
        limits,
        campaigns,
        token,
        streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        shutdown: shutdown.clone(),
    });
    let app = router(ctx);
    let mut stop = shutdown;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "console stopped");
        }
    });
    Ok((bound, task))
}

fn router(ctx: Arc<Ctx>) -> Router {
    let api = Router::new()
        .route("/api/overview", get(api::overview))
        .route("/api/customers", get(api::customers))
        .route("/api/customers/{id}", get(api::customer))
        .route("/api/payments", get(api::payments))
        .route("/api/activity", get(api::activity))
        .route("/api/events", get(events))
        .route("/api/simulate/message", post(api::send_message))
        .route("/api/simulate/ussd", post(api::ussd))
        .route("/api/simulate/voice", post(api::voice))
        .route("/api/simulate/payment", post(api::pay))
        .route(
            "/api/simulate/payments/{transaction_id}",
            post(api::payment_status),
        );
    let pages = Router::new()
        .route("/", get(pages::customers))
        .route("/customers/{id}", get(pages::customer))
        .route("/payments", get(pages::payments))
        .route("/activity", get(pages::activity))
        .route("/campaigns", get(pages::campaigns))
        .route("/fragments/customers", get(fragments::customers_fragment))
        .route(
            "/fragments/customers/{id}/{section}",
            get(fragments::customer_fragment),
        )
        .route("/fragments/payments", get(fragments::payments_fragment))
        .route(
            "/fragments/activity/{section}",
            get(fragments::activity_fragment),
        )
        .route("/fragments/campaigns", get(fragments::campaigns_fragment));
    api.merge(pages)
        .layer(middleware::from_fn_with_state(ctx.clone(), guard))
        .route("/assets/console.css", get(pages::css))
        .route("/assets/console.js", get(pages::js))
        .fallback(pages::not_found)
        .with_state(ctx)
}

/// Refuses requests for a foreign `Host` (no token) or without the access token.
async fn guard(State(ctx): State<Arc<Ctx>>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    match &ctx.token {
        None => {
            if !loopback_host(request.headers()) {
                return (
                    StatusCode::FORBIDDEN,
                    "the console answers requests for localhost only",
                )
                    .into_response();
            }
        }
        Some(token) => {
            if !has_token(request.headers(), token) {
                return if api {
                    (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({"error": "access token required"})),
                    )
                        .into_response()
                } else {
                    pages::login(&ctx).into_response()
                };
            }
        }
    }
    next.run(request).await
}

/// Whether the `Host` header names this machine (`localhost`, a loopback IP), any port.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the request carries the token, as a bearer token or in the console's cookie.
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| same(b.trim(), token)) {
        return true;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(name, value)| name == TOKEN_COOKIE && same(&percent_decode(value), token))
}

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes the `%XX` escapes `encodeURIComponent` puts in a cookie value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /api/events`: the live feed as server-sent events, one JSON object per event:
/// `changed`, `notification`, `connection`, `rate` (commands per second, every second) and
/// `resync` (events were missed: re-read the snapshots).
async fn events(State(ctx): State<Arc<Ctx>>) -> Response {
    let Ok(permit) = ctx.streams.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many open consoles").into_response();
    };
    let sub = feed::Feed::subscribe(&ctx.engine);
    let stream = event_stream(ctx.clone(), sub, permit);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn event_stream(
    ctx: Arc<Ctx>,
    sub: feed::Subscription,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let last = ctx.engine.feed().commands();
    let state = (ctx, sub, tick, last, permit, true);
    futures_util::stream::unfold(state, |mut s| async move {
        let (ctx, sub, tick, last, _, first) = &mut s;
        if std::mem::take(first) {
            // Tells the page its view is current from here on.
            let hello = Event::default().data(r#"{"type":"resync"}"#);
            return Some((Ok(hello), s));
        }
        let mut shutdown = ctx.shutdown.clone();
        let event = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return None,
            received = sub.rx.recv() => match received {
                Ok(text) => Event::default().data(&*text),
                Err(broadcast::error::RecvError::Lagged(missed)) => Event::default()
                    .data(format!(r#"{{"type":"resync","missed":{missed}}}"#)),
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = tick.tick() => {
                let now = ctx.engine.feed().commands();
                let rate = now.saturating_sub(*last);
                *last = now;
                Event::default().data(format!(r#"{{"type":"rate","commands_per_sec":{rate}}}"#))
            }
        };
        Some((Ok(event), s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_only() {
        let mut h = HeaderMap::new();
        for (host, ok) in [
            ("localhost:5558", true),
            ("127.0.0.1:5558", true),
            ("[::1]:5558", true),
            ("LOCALHOST", true),
            ("evil.example:5558", false),
            ("10.0.0.1:5558", false),
        ] {
            h.insert(header::HOST, host.parse().unwrap());
            assert_eq!(loopback_host(&h), ok, "{host}");
        }
        assert!(!loopback_host(&HeaderMap::new()));
    }

    #[test]
    fn token_from_cookie_or_bearer() {
        let mut h = HeaderMap::new();
        assert!(!has_token(&h, "s3cret"));
        h.insert(
            header::COOKIE,
            "a=b; elarian_console_token=s3cret".parse().unwrap(),
        );
        assert!(has_token(&h, "s3cret"));
        assert!(!has_token(&h, "s3cre"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(has_token(&h, "s3cret"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "elarian_console_token=a%20b".parse().unwrap(),
        );
        assert!(has_token(&h, "a b"));
    }
}
