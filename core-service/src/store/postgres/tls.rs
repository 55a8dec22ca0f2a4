//! TLS to PostgreSQL as libpq's `sslmode` means it, over rustls (ring).
//!
//! | `sslmode`          | encrypted                 | server certificate checked         |
//! |--------------------|---------------------------|------------------------------------|
//! | `disable`          | never                     | no                                 |
//! | `prefer` (default) | when the server offers it | chain, only if `sslrootcert` given |
//! | `require`          | always                    | chain, only if `sslrootcert` given |
//! | `verify-ca`        | always                    | chain up to `sslrootcert`          |
//! | `verify-full`      | always                    | chain, and the host name           |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the
//! Mozilla root set. tokio-postgres knows only `disable`, `prefer` and `require`
//! and no `sslrootcert`: both are taken out of the URL here, the rest is its.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// A `DATABASE_URL` split into what tokio-postgres parses and the TLS it connects with.
#[derive(Debug)]
pub(super) struct Secured {
    /// The URL without `sslmode` and `sslrootcert`.
    pub url: String,
    /// `sslmode` as tokio-postgres knows it (`verify-*` require TLS).
    pub mode: SslMode,
    pub tls: MakeRustls,
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Takes `sslmode` and `sslrootcert` out of `url` and builds the TLS they ask
/// for. Errors name the parameter, never the URL (it may hold a password).
pub(super) fn secure(url: &str) -> Result<Secured, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root) = (Mode::Prefer, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("{key} is not valid UTF-8"))?;
        match key {
            "sslmode" => {
                mode = match &*value {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode `{other}` is none of disable, prefer, require, \
                             verify-ca, verify-full"
                        ));
                    }
                }
            }
            "sslrootcert" => root = Some(value.into_owned()),
            _ => kept.push(pair),
        }
    }
    let roots = match root.as_deref() {
        None if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) => {
            return Err("sslmode=verify-ca and verify-full need sslrootcert=FILE \
                        (PEM CA certificates) or sslrootcert=system"
                .into());
        }
        None => None,
        Some("system") => Some(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Some(path) => Some(read_roots(path)?),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Verifier {
        roots: roots.map(Arc::new),
        check_name: mode == Mode::VerifyFull,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let mut url = base.to_owned();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    Ok(Secured {
        url,
        mode: match mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        },
        tls: MakeRustls(Arc::new(config)),
    })
}

fn read_roots(path: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("sslrootcert {path}: {e}"))?;
    let (added, _ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(format!("sslrootcert {path}: no usable CA certificate"));
    }
    Ok(roots)
}

/// Checks the server's certificate as far as the mode asks: not at all
/// without roots (`prefer`, `require`), the chain with them, and the host name
/// too for `verify-full`. Handshake signatures are always verified.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// tokio-postgres' TLS connector over rustls, one per store, cheap to clone.
#[derive(Clone)]
pub(super) struct MakeRustls(Arc<ClientConfig>);

impl std::fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MakeRustls")
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, Self::Error> {
        // An IP address becomes an IP name, checked against the certificate's IP entries.
        let name = ServerName::try_from(host.to_owned())?;
        Ok(RustlsConnect {
            config: Arc::clone(&self.0),
            name,
        })
    }
}

/// One connection's handshake.
pub(super) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<RustlsStream<S>>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            let stream = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// An encrypted connection to the server.
pub(super) struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// No `tls-server-end-point` binding: SCRAM then authenticates without
    /// channel binding (tokio-postgres' `channel_binding=prefer` default).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_leave_the_url_and_set_the_mode() {
        let plain = secure("postgres://u:pw@db/kapso").unwrap();
        assert_eq!(
            (plain.url.as_str(), plain.mode),
            ("postgres://u:pw@db/kapso", SslMode::Prefer)
        );
        let required = secure("postgres://db/kapso?application_name=x&sslmode=require").unwrap();
        assert_eq!(required.url, "postgres://db/kapso?application_name=x");
        assert_eq!(required.mode, SslMode::Require);
        let full = secure("postgres://db/k?sslmode=verify-full&sslrootcert=system").unwrap();
        assert_eq!(
            (full.url.as_str(), full.mode),
            ("postgres://db/k", SslMode::Require)
        );
        let off = secure("postgres://db/k?sslmode=disable").unwrap();
        assert_eq!(off.mode, SslMode::Disable);
    }

    #[test]
    fn bad_tls_parameters_are_refused_without_quoting_the_url() {
        for (url, says) in [
            ("postgres://u:pw@db/k?sslmode=verify-full", "sslrootcert"),
            ("postgres://u:pw@db/k?sslmode=verify-ca", "sslrootcert"),
            ("postgres://u:pw@db/k?sslmode=always", "sslmode `always`"),
            (
                "postgres://u:pw@db/k?sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
        ] {
            let error = secure(url).unwrap_err();
            assert!(error.contains(says), "{url}: {error}");
            assert!(!error.contains("pw"), "{url}: {error}");
        }
    }
}
