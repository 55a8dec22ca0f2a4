//! Optional TLS (and mTLS) for the gRPC port, with rustls.
//!
//! Files are read once at start: a missing or unreadable file stops the core
//! before it binds, instead of surfacing as handshake failures later.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::TlsConfig;

/// A TLS file that could not be read. The core refuses to start.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} {path}: {source}")]
pub struct TlsError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// The server TLS settings `config` asks for; `None` when TLS is off.
pub fn server_config(config: &TlsConfig) -> Result<Option<ServerTlsConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(read("CORE_TLS_CERT", cert)?, read("CORE_TLS_KEY", key)?);
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &config.tls_client_ca {
        // With a client CA, rustls refuses any client without a certificate it signed.
        tls = tls.client_ca_root(Certificate::from_pem(read("CORE_TLS_CLIENT_CA", ca)?));
    }
    Ok(Some(tls))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError {
        what,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_without_files_and_a_missing_file_is_named() {
        assert!(server_config(&TlsConfig::default()).unwrap().is_none());
        let missing = TlsConfig {
            tls_cert: Some("/nonexistent/cert.pem".into()),
            tls_key: Some("/nonexistent/key.pem".into()),
            tls_client_ca: None,
        };
        let error = server_config(&missing).unwrap_err().to_string();
        assert!(
            error.contains("CORE_TLS_CERT /nonexistent/cert.pem"),
            "{error}"
        );
    }
}
