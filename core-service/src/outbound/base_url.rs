//! `KAPSO_API_BASE_URL` parsed once into the proxy base sends go under.
//!
//! Kapso users carry the variable in three forms (docs/kapso-contract.md, 1):
//! a host (`https://api.kapso.ai`, as Kapso's own tooling defines it), the
//! full Meta proxy base (`https://api.kapso.ai/meta/whatsapp/v24.0`), and the
//! platform API of older `.env` files (`https://app.kapso.ai/api/v1`). The
//! first two are accepted; the third is refused at start, because sending
//! under it only ever meets 404s that read as permanent refusals.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

/// The Graph API version a host-only URL is completed with.
pub const GRAPH_VERSION: &str = "v24.0";

/// The proxy path under a host, without the version.
const PROXY_PATH: &str = "/meta/whatsapp";

/// Kapso's Meta proxy base, without a trailing `/`; requests go to
/// `{base}/{phone_number_id}/messages`.
///
/// # Examples
///
/// ```
/// use kapso_core::outbound::base_url::KapsoBaseUrl;
///
/// let base: KapsoBaseUrl = "https://api.kapso.ai".parse().unwrap();
/// assert_eq!(base.as_str(), "https://api.kapso.ai/meta/whatsapp/v24.0");
/// assert!("https://app.kapso.ai/api/v1".parse::<KapsoBaseUrl>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KapsoBaseUrl(String);

/// Why a `KAPSO_API_BASE_URL` was refused. Each message names the variable
/// and the form expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    /// Not an absolute `http(s)` URL.
    #[error(
        "KAPSO_API_BASE_URL {0:?} is not an http(s) URL; expected e.g. https://api.kapso.ai or https://api.kapso.ai/meta/whatsapp/v24.0"
    )]
    NotHttp(String),
    /// Kapso's platform API, which does not serve Meta's send endpoint.
    #[error(
        "KAPSO_API_BASE_URL {0:?} is Kapso's platform API, not its Meta proxy; set KAPSO_API_BASE_URL=https://api.kapso.ai (or https://api.kapso.ai/meta/whatsapp/v24.0)"
    )]
    PlatformApi(String),
}

impl KapsoBaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where a send from `phone_number_id` goes, for the start-up log line.
    pub fn messages_url(&self, phone_number_id: &str) -> String {
        format!("{}/{phone_number_id}/messages", self.0)
    }
}

impl FromStr for KapsoBaseUrl {
    type Err = BaseUrlError;

    fn from_str(raw: &str) -> Result<KapsoBaseUrl, BaseUrlError> {
        let url = Url::parse(raw.trim()).map_err(|_| BaseUrlError::NotHttp(raw.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(BaseUrlError::NotHttp(raw.to_owned()));
        }
        let path = url.path().trim_end_matches('/');
        let platform = url.host_str() == Some("app.kapso.ai")
            || path.ends_with("/api/v1")
            || path.ends_with("/platform/v1");
        if platform {
            return Err(BaseUrlError::PlatformApi(raw.to_owned()));
        }
        // The query and fragment have no place in a base that paths are
        // appended to; the origin keeps any port.
        let origin = url.origin().ascii_serialization();
        let base = if path.is_empty() {
            format!("{origin}{PROXY_PATH}/{GRAPH_VERSION}")
        } else if path.ends_with(PROXY_PATH) {
            format!("{origin}{path}/{GRAPH_VERSION}")
        } else {
            // A full proxy base (or another proxy in front of Kapso): as is.
            format!("{origin}{path}")
        };
        Ok(KapsoBaseUrl(base))
    }
}

impl fmt::Display for KapsoBaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(raw: &str) -> String {
        raw.parse::<KapsoBaseUrl>().unwrap().0
    }

    #[test]
    fn a_host_gets_the_proxy_path_and_version() {
        let full = "https://api.kapso.ai/meta/whatsapp/v24.0";
        assert_eq!(base("https://api.kapso.ai"), full);
        assert_eq!(base("https://api.kapso.ai/"), full);
        assert_eq!(
            base("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/meta/whatsapp/v24.0"
        );
    }

    #[test]
    fn a_full_proxy_base_is_kept() {
        let full = "https://api.kapso.ai/meta/whatsapp/v24.0";
        assert_eq!(base(full), full);
        assert_eq!(base(&format!("{full}/")), full);
        assert_eq!(
            base("https://api.kapso.ai/meta/whatsapp/v23.0"),
            "https://api.kapso.ai/meta/whatsapp/v23.0"
        );
        assert_eq!(base("https://api.kapso.ai/meta/whatsapp"), full);
        assert_eq!(
            base("http://proxy.internal:9000/kapso"),
            "http://proxy.internal:9000/kapso"
        );
    }

    #[test]
    fn the_platform_api_is_refused_naming_the_variable() {
        for raw in [
            "https://app.kapso.ai/api/v1",
            "https://app.kapso.ai/api/v1/",
            "https://app.kapso.ai",
            "https://api.kapso.ai/platform/v1",
            "http://127.0.0.1:9/api/v1",
        ] {
            let error = raw.parse::<KapsoBaseUrl>().unwrap_err();
            assert_eq!(error, BaseUrlError::PlatformApi(raw.into()), "{raw}");
            let text = error.to_string();
            assert!(text.contains("KAPSO_API_BASE_URL"), "{text}");
            assert!(text.contains("https://api.kapso.ai"), "{text}");
        }
    }

    #[test]
    fn what_is_not_an_http_url_is_refused() {
        for raw in ["api.kapso.ai", "", "ftp://api.kapso.ai", "unix:/tmp/sock"] {
            let error = raw.parse::<KapsoBaseUrl>().unwrap_err();
            assert!(matches!(error, BaseUrlError::NotHttp(_)), "{raw}");
        }
    }
}
