//! Where a client connects: [`Endpoint`] URLs and [`connect`].

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::time::Duration;

use super::{BoxTransport, TlsClientOptions, TransportError};

/// The transport an [`Endpoint`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// Plain TCP, `tcp://`.
    Tcp,
    /// TLS over TCP, `tls://`.
    Tls,
    /// WebSocket, `ws://`.
    Ws,
    /// WebSocket over TLS, `wss://`.
    Wss,
}

impl Scheme {
    /// Whether this build can dial the scheme: `tcp` always, the others only with the
    /// `tls` and `websocket` features (both for `wss`).
    pub fn is_enabled(self) -> bool {
        match self {
            Scheme::Tcp => cfg!(feature = "tcp"),
            Scheme::Tls => cfg!(feature = "tls"),
            Scheme::Ws => cfg!(feature = "websocket"),
            Scheme::Wss => cfg!(all(feature = "tls", feature = "websocket")),
        }
    }

    /// The features a build needs to dial the scheme, as Cargo feature names.
    pub fn required_features(self) -> &'static [&'static str] {
        match self {
            Scheme::Tcp => &["tcp"],
            Scheme::Tls => &["tls"],
            Scheme::Ws => &["websocket"],
            Scheme::Wss => &["tls", "websocket"],
        }
    }

    /// The URL prefix, without `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Tcp => "tcp",
            Scheme::Tls => "tls",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// The port used when the URL has none (`tcp://` has no default).
    pub fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Tcp => None,
            Scheme::Tls | Scheme::Wss => Some(443),
            Scheme::Ws => Some(80),
        }
    }

    /// Whether the scheme uses TLS.
    pub fn is_secure(self) -> bool {
        matches!(self, Scheme::Tls | Scheme::Wss)
    }

    fn is_websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a valid [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// No `scheme://` prefix.
    #[error("endpoint has no scheme (expected tcp://, tls://, ws:// or wss://)")]
    MissingScheme,
    /// A scheme other than `tcp`, `tls`, `ws` and `wss`.
    #[error("unsupported endpoint scheme `{0}` (expected tcp, tls, ws or wss)")]
    UnsupportedScheme(String),
    /// Nothing between `://` and the port or path.
    #[error("endpoint has no host")]
    MissingHost,
    /// A host with characters no host name or IP address has.
    #[error("invalid endpoint host `{0}`")]
    InvalidHost(String),
    /// A `tcp://` endpoint without a port.
    #[error("endpoint has no port (tcp:// has no default port)")]
    MissingPort,
    /// A port that is not a number from 1 to 65535.
    #[error("invalid endpoint port `{0}`")]
    InvalidPort(String),
    /// A path on a `tcp://` or `tls://` endpoint, or a WebSocket path that cannot be sent.
    #[error("invalid endpoint path `{0}`")]
    InvalidPath(String),
}

/// The address of an RSocket server: transport, host, port and (for WebSocket) path.
///
/// ```
/// use elarian_transport::io::{Endpoint, Scheme};
///
/// let endpoint: Endpoint = "tls://tcp.elarian.dev".parse()?;
/// assert_eq!(endpoint.scheme(), Scheme::Tls);
/// assert_eq!(endpoint.port(), 443);
/// assert_eq!(endpoint.to_string(), "tls://tcp.elarian.dev:443");
///
/// let ws = Endpoint::ws("[::1]", 8080, "/rsocket");
/// assert_eq!(ws.to_string(), "ws://[::1]:8080/rsocket");
/// assert_eq!(ws.to_string().parse::<Endpoint>()?, ws);
/// # Ok::<(), elarian_transport::io::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    scheme: Scheme,
    /// Without brackets, also for IPv6 addresses.
    host: String,
    port: u16,
    /// Empty for TCP and TLS; starts with `/` for WebSocket.
    path: String,
}

impl Endpoint {
    fn build(scheme: Scheme, host: impl Into<String>, port: u16, path: &str) -> Self {
        let host = host.into();
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(inner) => inner.to_owned(),
            None => host,
        };
        let path = if !scheme.is_websocket() {
            String::new()
        } else if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Endpoint {
            scheme,
            host,
            port,
            path,
        }
    }

    /// A plain TCP endpoint.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self::build(Scheme::Tcp, host, port, "")
    }

    /// A TLS-over-TCP endpoint.
    pub fn tls(host: impl Into<String>, port: u16) -> Self {
        Self::build(Scheme::Tls, host, port, "")
    }

    /// A WebSocket endpoint; a `path` without a leading `/` gets one.
    pub fn ws(host: impl Into<String>, port: u16, path: &str) -> Self {
        Self::build(Scheme::Ws, host, port, path)
    }

    /// A WebSocket-over-TLS endpoint; a `path` without a leading `/` gets one.
    pub fn wss(host: impl Into<String>, port: u16, path: &str) -> Self {
        Self::build(Scheme::Wss, host, port, path)
    }

    /// The transport.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WebSocket path (with any query), `""` for TCP and TLS.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn host_for_url(&self) -> HostForUrl<'_> {
        HostForUrl(&self.host)
    }
}

/// Puts brackets around IPv6 addresses, as URLs and `host:port` strings need.
struct HostForUrl<'a>(&'a str);

impl fmt::Display for HostForUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') {
            write!(f, "[{}]", self.0)
        } else {
            f.write_str(self.0)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme,
            self.host_for_url(),
            self.port,
            self.path
        )
    }
}

fn valid_host_name(host: &str) -> bool {
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl FromStr for Endpoint {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let (scheme, rest) = s.split_once("://").ok_or(ParseError::MissingScheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "tcp" => Scheme::Tcp,
            "tls" => Scheme::Tls,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            "" => return Err(ParseError::MissingScheme),
            _ => return Err(ParseError::UnsupportedScheme(scheme.to_owned())),
        };

        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);

        if authority.contains('@') {
            // Credentials in the URL would end up in logs; Elarian authenticates in SETUP instead.
            return Err(ParseError::InvalidHost(authority.to_owned()));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (inner, after) = bracketed
                .split_once(']')
                .ok_or_else(|| ParseError::InvalidHost(authority.to_owned()))?;
            if inner.parse::<Ipv6Addr>().is_err() {
                return Err(ParseError::InvalidHost(inner.to_owned()));
            }
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| ParseError::InvalidHost(authority.to_owned()))?,
                ),
            };
            (inner, port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(ParseError::MissingHost);
        }
        if !authority.starts_with('[') && !valid_host_name(host) {
            return Err(ParseError::InvalidHost(host.to_owned()));
        }
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(ParseError::InvalidPort(p.to_owned())),
                Ok(port) => port,
            },
            None => scheme.default_port().ok_or(ParseError::MissingPort)?,
        };

        if path.contains(|c: char| c == '#' || c.is_whitespace() || c.is_control()) {
            return Err(ParseError::InvalidPath(path.to_owned()));
        }
        let path = if scheme.is_websocket() {
            match path {
                "" => "/".to_owned(),
                p if p.starts_with('?') => format!("/{p}"),
                p => p.to_owned(),
            }
        } else if path.is_empty() || path == "/" {
            String::new()
        } else {
            return Err(ParseError::InvalidPath(path.to_owned()));
        };

        Ok(Endpoint {
            scheme,
            host: host.to_owned(),
            port,
            path,
        })
    }
}

/// Connects to `endpoint` and returns a transport ready for the RSocket SETUP.
///
/// The whole of it (name resolution, TCP connect, TLS handshake, WebSocket upgrade) must finish
/// within `timeout`, or it fails with an [`std::io::ErrorKind::TimedOut`] I/O error. `tls` applies
/// to `tls://` and `wss://` endpoints and is ignored otherwise. A scheme whose cargo feature is off
/// fails with [`TransportError::Protocol`].
///
/// ```no_run
/// # async fn run() -> Result<(), elarian_transport::io::TransportError> {
/// use std::time::Duration;
/// use elarian_transport::io::{connect, Endpoint, TlsClientOptions};
///
/// let endpoint: Endpoint = "tls://tcp.elarian.dev:443".parse().expect("valid endpoint");
/// let transport = connect(&endpoint, &TlsClientOptions::new(), Duration::from_secs(10)).await?;
/// # let _ = transport;
/// # Ok(())
/// # }
/// ```
pub async fn connect(
    endpoint: &Endpoint,
    tls: &TlsClientOptions,
    timeout: Duration,
) -> Result<BoxTransport, TransportError> {
    match tokio::time::timeout(timeout, connect_now(endpoint, tls)).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to {endpoint} timed out after {timeout:?}"),
        ))),
    }
}

#[cfg_attr(not(feature = "tls"), allow(unused_variables))]
async fn connect_now(
    endpoint: &Endpoint,
    tls: &TlsClientOptions,
) -> Result<BoxTransport, TransportError> {
    tracing::debug!(%endpoint, "connecting");
    match endpoint.scheme {
        #[cfg(feature = "tcp")]
        Scheme::Tcp => {
            let tcp = tcp_connect(endpoint).await?;
            Ok(BoxTransport::new(super::TcpTransport::new(
                tcp,
                super::FramingConfig::default(),
            )?))
        }
        #[cfg(feature = "tls")]
        Scheme::Tls => {
            let tcp = tcp_connect(endpoint).await?;
            let stream = super::tls::client_handshake(tcp, &endpoint.host, tls).await?;
            Ok(BoxTransport::new(super::LengthPrefixed::new(
                stream,
                super::FramingConfig::default(),
            )))
        }
        #[cfg(feature = "websocket")]
        Scheme::Ws => {
            let tcp = tcp_connect(endpoint).await?;
            let url = endpoint.to_string();
            super::ws::client_handshake(tcp, &url, &super::FramingConfig::default()).await
        }
        #[cfg(all(feature = "websocket", feature = "tls"))]
        Scheme::Wss => {
            let tcp = tcp_connect(endpoint).await?;
            let stream = super::tls::client_handshake(tcp, &endpoint.host, tls).await?;
            let url = endpoint.to_string();
            super::ws::client_handshake(stream, &url, &super::FramingConfig::default()).await
        }
        #[allow(unreachable_patterns)]
        scheme => Err(TransportError::Protocol(format!(
            "{scheme}:// endpoints are not supported by this build: enable the `{}` feature of elarian-transport",
            scheme.required_features().join("` and `")
        ))),
    }
}

#[cfg(feature = "tcp")]
async fn tcp_connect(endpoint: &Endpoint) -> Result<tokio::net::TcpStream, TransportError> {
    let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|source| TransportError::Connect {
            endpoint: endpoint.to_string(),
            source,
        })?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Endpoint, ParseError> {
        s.parse()
    }

    #[test]
    fn parses_every_scheme_with_defaults() {
        assert_eq!(
            parse("tcp://localhost:7000").unwrap(),
            Endpoint::tcp("localhost", 7000)
        );
        assert_eq!(
            parse("tls://tcp.elarian.dev").unwrap(),
            Endpoint::tls("tcp.elarian.dev", 443)
        );
        assert_eq!(parse("TLS://h:8443").unwrap(), Endpoint::tls("h", 8443));
        assert_eq!(parse("ws://h").unwrap(), Endpoint::ws("h", 80, "/"));
        assert_eq!(
            parse("wss://web.elarian.dev/rsocket?v=1").unwrap(),
            Endpoint::wss("web.elarian.dev", 443, "/rsocket?v=1")
        );
        assert_eq!(parse("ws://h:1?x").unwrap().path(), "/?x");
        assert_eq!(parse("tcp://h:1/").unwrap().path(), "");
    }

    #[test]
    fn handles_ipv6_hosts() {
        let e = parse("tcp://[::1]:9000").unwrap();
        assert_eq!(e.host(), "::1");
        assert_eq!(e.to_string(), "tcp://[::1]:9000");
        assert_eq!(Endpoint::tcp("[::1]", 9000), e);
        assert_eq!(parse("wss://[fe80::1]").unwrap().port(), 443);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp://a:1",
            "tls://b.c:443",
            "ws://d:80/",
            "wss://[::1]:5/x/y?z=1",
        ] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_malformed_endpoints_with_a_reason() {
        assert_eq!(parse("localhost:7000"), Err(ParseError::MissingScheme));
        assert_eq!(parse("://h:1"), Err(ParseError::MissingScheme));
        assert_eq!(
            parse("http://h:1"),
            Err(ParseError::UnsupportedScheme("http".into()))
        );
        assert_eq!(parse("tcp://:1"), Err(ParseError::MissingHost));
        assert_eq!(parse("tcp://h"), Err(ParseError::MissingPort));
        assert_eq!(parse("tcp://h:0"), Err(ParseError::InvalidPort("0".into())));
        assert_eq!(
            parse("tcp://h:70000"),
            Err(ParseError::InvalidPort("70000".into()))
        );
        assert_eq!(parse("tcp://h:"), Err(ParseError::InvalidPort("".into())));
        assert_eq!(
            parse("tcp://h:1/x"),
            Err(ParseError::InvalidPath("/x".into()))
        );
        assert_eq!(
            parse("ws://h/a b"),
            Err(ParseError::InvalidPath("/a b".into()))
        );
        assert_eq!(
            parse("tcp://u:p@h:1"),
            Err(ParseError::InvalidHost("u:p@h:1".into()))
        );
        assert_eq!(parse("tcp://::1:5"), Err(ParseError::MissingHost));
        assert!(matches!(
            parse("tcp://[zz]:1"),
            Err(ParseError::InvalidHost(_))
        ));
        assert!(matches!(
            parse("tcp://[::1]x"),
            Err(ParseError::InvalidHost(_))
        ));
        assert!(matches!(
            parse("tcp://h%41:1"),
            Err(ParseError::InvalidHost(_))
        ));
    }

    #[cfg(feature = "tcp")]
    #[tokio::test]
    async fn connect_reports_a_refused_connection_with_its_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = connect(
            &Endpoint::tcp("127.0.0.1", port),
            &TlsClientOptions::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
        assert!(err.is_refused(), "{err:?}");
        assert!(!err.is_timeout());
        let source = std::error::Error::source(&err).expect("the OS error is the source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(err.to_string().contains(&port.to_string()), "{err}");
    }
}
