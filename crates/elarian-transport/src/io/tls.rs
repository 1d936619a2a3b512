//! TLS over TCP with rustls and its ring crypto provider.
//!
//! [`TlsClientOptions`] exists whatever the enabled features, so that configurations (and
//! [`crate::io::connect`]) look the same in every build; the rustls machinery behind it needs the
//! `tls` feature. Root certificates are therefore kept as DER bytes, and PEM text is decoded
//! here (a few lines of base64) rather than by `rustls-pki-types`, so that a build without `tls`
//! has no rustls crate in its tree.

/// A TLS configuration that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The PEM text could not be parsed.
    #[error("invalid PEM input: {0}")]
    Pem(String),
    /// The PEM text held no certificate.
    #[error("no certificate found in the PEM input")]
    NoCertificate,
    /// The PEM text held no private key.
    #[error("no private key found in the PEM input")]
    NoPrivateKey,
    /// rustls refused the certificates, the key or the root store.
    #[error("invalid TLS configuration: {0}")]
    Rustls(String),
}

/// How a client checks the server's certificate.
///
/// By default the server must present a chain to one of the Mozilla roots shipped in
/// `webpki-roots`. Extra roots (for a private CA or a self-signed test server) can be added, and
/// [`only_custom_roots`](TlsClientOptions::only_custom_roots) drops the built-in ones.
///
/// ```
/// use elarian_transport::io::TlsClientOptions;
///
/// # fn load() -> Result<(), elarian_transport::io::TlsConfigError> {
/// # let ca_pem = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem();
/// let options = TlsClientOptions::new()
///     .add_root_certificates_pem(ca_pem.as_bytes())?
///     .only_custom_roots(true)
///     .server_name("localhost");
/// assert_eq!(options.custom_roots().len(), 1);
/// # Ok(())
/// # }
/// # load().unwrap();
/// ```
#[derive(Clone, Default)]
pub struct TlsClientOptions {
    roots: Vec<Vec<u8>>,
    only_custom_roots: bool,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClientOptions")
            .field("custom_roots", &self.roots.len())
            .field("only_custom_roots", &self.only_custom_roots)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsClientOptions {
    /// Trust the built-in roots only, and check the certificate against the endpoint's host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also trusts a root certificate given in DER. It is checked when the first connection is
    /// made; an unusable one makes that connection fail.
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(der.into());
        self
    }

    /// Also trusts every certificate in a PEM text (one or more `CERTIFICATE` blocks).
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, TlsConfigError> {
        let certificates = pem_certificates(pem)?;
        if certificates.is_empty() {
            return Err(TlsConfigError::NoCertificate);
        }
        self.roots.extend(certificates);
        Ok(self)
    }

    /// With `true`, trusts only the roots added here, not the built-in ones.
    pub fn only_custom_roots(mut self, only: bool) -> Self {
        self.only_custom_roots = only;
        self
    }

    /// Checks the server certificate against this name (and sends it as SNI) instead of the
    /// endpoint's host. Useful when connecting by IP address to a server with a DNS-name
    /// certificate.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The roots added to the built-in ones, in DER.
    pub fn custom_roots(&self) -> &[Vec<u8>] {
        &self.roots
    }

    /// Whether the built-in roots are left out.
    pub fn uses_only_custom_roots(&self) -> bool {
        self.only_custom_roots
    }

    /// The name override, if any.
    pub fn server_name_override(&self) -> Option<&str> {
        self.server_name.as_deref()
    }
}

/// The DER contents of every `CERTIFICATE` block of a PEM text (RFC 7468), in order. Other
/// blocks (keys, parameters) and text between blocks are skipped.
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, TlsConfigError> {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    let text = std::str::from_utf8(pem)
        .map_err(|_| TlsConfigError::Pem("the PEM text is not UTF-8".into()))?;
    let mut certificates = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix(BEGIN)
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if let Some(end) = line.strip_prefix(END) {
                if end.strip_suffix("-----") != Some(label) {
                    return Err(TlsConfigError::Pem(format!(
                        "`{BEGIN}{label}-----` is closed by `{line}`"
                    )));
                }
                closed = true;
                break;
            }
            body.push_str(line);
        }
        if !closed {
            return Err(TlsConfigError::Pem(format!(
                "`{BEGIN}{label}-----` has no END line"
            )));
        }
        if label == "CERTIFICATE" {
            certificates.push(base64_decode(&body).ok_or_else(|| {
                TlsConfigError::Pem("a CERTIFICATE block is not valid base64".into())
            })?);
        }
    }
    Ok(certificates)
}

/// Standard base64 (RFC 4648, with `=` padding) to bytes; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.chunks_exact(4);
    let last = chunks.len().checked_sub(1);
    for (i, chunk) in chunks.enumerate() {
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && Some(i) != last) {
            return None;
        }
        let mut group = 0u32;
        for &c in &chunk[..4 - padding] {
            group = (group << 6) | value(c)?;
        }
        group <<= 6 * padding as u32;
        let [_, a, b, c] = group.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..3 - padding]);
    }
    Some(out)
}

#[cfg(feature = "tls")]
pub use self::rustls_impl::{TlsServerOptions, TlsStream};

#[cfg(feature = "tls")]
pub(crate) use self::rustls_impl::client_handshake;

#[cfg(feature = "tls")]
mod rustls_impl {
    use std::sync::Arc;

    use rustls::{ClientConfig, RootCertStore, ServerConfig};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::net::TcpStream;

    use super::{TlsClientOptions, TlsConfigError};
    use crate::io::TransportError;

    /// A TLS session over TCP, client or server side.
    pub type TlsStream = tokio_rustls::TlsStream<TcpStream>;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Builds the rustls client configuration for `options`.
    pub(crate) fn client_config(
        options: &TlsClientOptions,
    ) -> Result<Arc<ClientConfig>, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        if !options.only_custom_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for cert in &options.roots {
            roots
                .add(CertificateDer::from(cert.clone()))
                .map_err(|e| TlsConfigError::Rustls(format!("unusable root certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(TlsConfigError::Rustls(
                "no trusted root certificates: `only_custom_roots` is set but none were added"
                    .into(),
            ));
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Runs the client side of a TLS handshake over `tcp`, checking the certificate against
    /// `host` (or the override in `options`).
    pub(crate) async fn client_handshake(
        tcp: TcpStream,
        host: &str,
        options: &TlsClientOptions,
    ) -> Result<TlsStream, TransportError> {
        let config = client_config(options).map_err(|e| TransportError::Protocol(e.to_string()))?;
        let name = options.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned()).map_err(|_| {
            TransportError::Protocol(format!("`{name}` is not a valid TLS server name"))
        })?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let stream = connector
            .connect(server_name, tcp)
            .await
            .map_err(|source| TransportError::Handshake {
                what: format!("TLS handshake with `{name}`"),
                source: Box::new(source),
            })?;
        Ok(TlsStream::Client(stream))
    }

    /// What a TLS server presents: its certificate chain and private key.
    ///
    /// ```
    /// use elarian_transport::io::TlsServerOptions;
    ///
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let options = TlsServerOptions::from_pem(
    ///     cert.cert.pem().as_bytes(),
    ///     cert.signing_key.serialize_pem().as_bytes(),
    /// )
    /// .unwrap();
    /// # let _ = options;
    /// ```
    #[derive(Clone)]
    pub struct TlsServerOptions {
        config: Arc<ServerConfig>,
    }

    impl std::fmt::Debug for TlsServerOptions {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // The configuration holds the private key: show nothing of it.
            f.debug_struct("TlsServerOptions").finish_non_exhaustive()
        }
    }

    impl TlsServerOptions {
        /// From a certificate chain (leaf first) and its private key, in DER.
        pub fn new(
            cert_chain: Vec<CertificateDer<'static>>,
            key: PrivateKeyDer<'static>,
        ) -> Result<Self, TlsConfigError> {
            if cert_chain.is_empty() {
                return Err(TlsConfigError::NoCertificate);
            }
            let config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
                .with_no_client_auth()
                .with_single_cert(cert_chain, key)
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
            Ok(TlsServerOptions {
                config: Arc::new(config),
            })
        }

        /// From PEM texts: the chain (leaf first) and a PKCS#8, PKCS#1 or SEC1 private key.
        pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsConfigError> {
            let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsConfigError::Pem(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
                rustls_pki_types::pem::Error::NoItemsFound => TlsConfigError::NoPrivateKey,
                other => TlsConfigError::Pem(other.to_string()),
            })?;
            Self::new(chain, key)
        }

        /// From PEM files, as [`from_pem`](Self::from_pem).
        pub fn from_pem_files(
            cert_chain_path: impl AsRef<std::path::Path>,
            key_path: impl AsRef<std::path::Path>,
        ) -> Result<Self, TlsConfigError> {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|e| {
                    TlsConfigError::Pem(format!("cannot read {}: {e}", path.display()))
                })
            };
            Self::from_pem(&read(cert_chain_path.as_ref())?, &read(key_path.as_ref())?)
        }

        /// From a rustls configuration built by the caller (client authentication, ALPN, …).
        pub fn from_rustls_config(config: Arc<ServerConfig>) -> Self {
            TlsServerOptions { config }
        }

        /// The rustls configuration in use.
        pub fn rustls_config(&self) -> &Arc<ServerConfig> {
            &self.config
        }

        /// Runs the server side of a TLS handshake over `tcp`.
        pub(crate) async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream, TransportError> {
            let acceptor = tokio_rustls::TlsAcceptor::from(self.config.clone());
            let stream =
                acceptor
                    .accept(tcp)
                    .await
                    .map_err(|source| TransportError::Handshake {
                        what: "TLS handshake".into(),
                        source: Box::new(source),
                    })?;
            Ok(TlsStream::Server(stream))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{TlsClientOptions, TlsConfigError, base64_decode, pem_certificates};

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (text, bytes) in [
            ("", &b""[..]),
            ("Zg==", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg==", b"foob"),
            ("Zm9vYmE=", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
            ("+/+/", &[0xfb, 0xff, 0xbf]),
        ] {
            assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text}");
        }
        for bad in ["Zg=", "Zg===", "Z===", "Zg==Zm9v", "Zm9*", "Zm9v\n"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn pem_yields_every_certificate_and_skips_other_blocks() {
        let pem = "junk before\n-----BEGIN CERTIFICATE-----\nZm9v\nYmFy\n-----END CERTIFICATE-----\n\
                   -----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\r\n\
                   -----BEGIN CERTIFICATE-----\r\nZg==\r\n-----END CERTIFICATE-----\r\n";
        assert_eq!(
            pem_certificates(pem.as_bytes()).unwrap(),
            vec![b"foobar".to_vec(), b"f".to_vec()]
        );
        let options = TlsClientOptions::new()
            .add_root_certificates_pem(pem.as_bytes())
            .unwrap();
        assert_eq!(options.custom_roots().len(), 2);
    }

    #[test]
    fn malformed_pem_is_a_typed_error() {
        for bad in [
            "-----BEGIN CERTIFICATE-----\nZm9v\n",
            "-----BEGIN CERTIFICATE-----\nZm9v\n-----END PRIVATE KEY-----\n",
            "-----BEGIN CERTIFICATE-----\nZm9*\n-----END CERTIFICATE-----\n",
        ] {
            assert!(
                matches!(
                    TlsClientOptions::new().add_root_certificates_pem(bad.as_bytes()),
                    Err(TlsConfigError::Pem(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            TlsClientOptions::new().add_root_certificates_pem(b"no blocks here"),
            Err(TlsConfigError::NoCertificate)
        ));
        assert!(matches!(
            TlsClientOptions::new().add_root_certificates_pem(&[0xff, 0xfe]),
            Err(TlsConfigError::Pem(_))
        ));
    }
}
