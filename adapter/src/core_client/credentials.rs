//! What the adapter shows the core: a bearer token and, optionally, TLS settings.
//!
//! Both are read and checked once at start (the token becomes a ready header
//! value, the PEM files are read while the configuration is parsed), so a
//! request only clones prepared values.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use http::HeaderValue;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// The bearer token of `GATEWAY_API_TOKEN`. `Debug` never shows it.
#[derive(Clone)]
pub struct ApiToken {
    /// `Bearer <token>`, built once and marked sensitive (HPACK never indexes it).
    header: HeaderValue,
}

/// A token that cannot be sent as `Bearer <token>`. The message never quotes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is empty")]
    Empty,
    #[error("the token must be visible ASCII without spaces")]
    NotVisibleAscii,
}

impl FromStr for ApiToken {
    type Err = TokenError;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        // The core splits its list on commas and refuses whitespace, so neither can match there.
        if !token.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(TokenError::NotVisibleAscii);
        }
        let mut header = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| TokenError::NotVisibleAscii)?;
        header.set_sensitive(true);
        Ok(Self { header })
    }
}

impl ApiToken {
    /// The `authorization` metadata value, `Bearer <token>`.
    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A PEM file read while the configuration is parsed. `Debug` shows the path only.
#[derive(Clone)]
pub struct PemFile {
    path: PathBuf,
    pem: Arc<[u8]>,
}

impl PemFile {
    /// Reads `path`; the error names the path (never the contents).
    pub fn read(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let pem = std::fs::read(&path)?;
        Ok(Self {
            path,
            pem: pem.into(),
        })
    }

    fn bytes(&self) -> &[u8] {
        &self.pem
    }
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PemFile({})", self.path.display())
    }
}

/// TLS towards the core: the CA to trust and an optional client identity (mTLS).
#[derive(Debug, Clone, Default)]
pub struct CoreTls {
    pub ca: Option<PemFile>,
    pub client_cert: Option<PemFile>,
    pub client_key: Option<PemFile>,
}

impl CoreTls {
    /// tonic's client TLS settings, or `None` when no CA is configured (plain HTTP/2).
    pub fn client_config(&self) -> Option<ClientTlsConfig> {
        let ca = self.ca.as_ref()?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.bytes()));
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            tls = tls.identity(Identity::from_pem(cert.bytes(), key.bytes()));
        }
        Some(tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_becomes_a_sensitive_bearer_header_and_never_prints() {
        let token: ApiToken = "fake-token-not-real".parse().unwrap();
        assert_eq!(token.header(), "Bearer fake-token-not-real");
        assert!(token.header().is_sensitive());
        assert_eq!(format!("{token:?}"), "[redacted]");
    }

    #[test]
    fn tokens_the_core_could_never_accept_are_refused() {
        assert_eq!("".parse::<ApiToken>().err(), Some(TokenError::Empty));
        for bad in ["with space", "a,b", "tab\t", "é"] {
            assert_eq!(
                bad.parse::<ApiToken>().err(),
                Some(TokenError::NotVisibleAscii),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pem_debug_shows_the_path_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "FAKE KEY MATERIAL").unwrap();
        let shown = format!("{:?}", PemFile::read(&path).unwrap());
        assert!(shown.contains("key.pem"), "{shown}");
        assert!(!shown.contains("FAKE KEY"), "{shown}");
    }
}
