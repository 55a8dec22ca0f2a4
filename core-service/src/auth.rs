//! Bearer-token authentication of the core's own services.
//!
//! When `GATEWAY_API_TOKENS` is set, every `kapso.gateway.v1.*` call must carry
//! `authorization: Bearer <token>` naming one of them. Health and reflection stay
//! open: load balancers and `grpcurl` probe them without credentials, and they
//! reveal nothing a token protects.
//!
//! The check is pure ([`verify`]) and compares in constant time against every
//! configured token, so neither timing nor the order of the list tells a caller
//! how close a guess came.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// One accepted bearer token. `Debug` never shows it.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> ApiToken {
        ApiToken(token.into())
    }

    /// The token itself, for a client's request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The accepted tokens, parsed from a comma-separated list (blanks around
/// commas ignored). Several tokens let callers rotate without downtime.
#[derive(Clone, Debug)]
pub struct ApiTokens(Vec<ApiToken>);

impl ApiTokens {
    pub fn tokens(&self) -> &[ApiToken] {
        &self.0
    }
}

impl FromStr for ApiTokens {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<ApiTokens, Self::Err> {
        let tokens: Vec<ApiToken> = s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(ApiToken::new)
            .collect();
        if tokens.is_empty() {
            return Err("GATEWAY_API_TOKENS is set but holds no token");
        }
        if tokens.iter().any(|t| t.0.chars().any(char::is_whitespace)) {
            return Err("a gateway API token must not contain whitespace");
        }
        Ok(ApiTokens(tokens))
    }
}

/// Why a call was refused. Both map to gRPC `UNAUTHENTICATED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` metadata, or not of the form `Bearer <token>`.
    #[error("missing bearer token: send `authorization: Bearer <token>`")]
    Missing,
    /// A bearer token that is none of the configured ones.
    #[error("invalid bearer token")]
    Invalid,
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Status {
        Status::unauthenticated(error.to_string())
    }
}

/// Checks an `authorization` header value against `tokens`.
pub fn verify(tokens: &ApiTokens, header: Option<&[u8]>) -> Result<(), AuthError> {
    let presented = header
        .and_then(bearer)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    // Every token is compared (no early exit), so the time taken does not
    // depend on which token matched or how many were tried.
    let matched = tokens
        .0
        .iter()
        .fold(subtle::Choice::from(0), |found, token| {
            found | token.0.as_bytes().ct_eq(presented)
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(AuthError::Invalid)
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, per RFC 9110).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// The interceptor in front of Ingest and Messaging. `None`: open (no tokens configured).
#[derive(Clone, Debug)]
pub struct Authenticate(Option<Arc<ApiTokens>>);

impl Authenticate {
    pub fn new(tokens: Option<ApiTokens>) -> Authenticate {
        Authenticate(tokens.map(Arc::new))
    }

    /// Whether calls must present one of the tokens.
    pub fn requires_token(&self) -> bool {
        self.0.is_some()
    }
}

impl Interceptor for Authenticate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(tokens) = &self.0 else {
            return Ok(request);
        };
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        match verify(tokens, header) {
            Ok(()) => Ok(request),
            Err(error) => {
                tracing::info!(%error, "call refused");
                Err(error.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> ApiTokens {
        "fake-token-one, fake-token-two".parse().unwrap()
    }

    #[test]
    fn any_configured_token_is_accepted() {
        assert_eq!(verify(&tokens(), Some(b"Bearer fake-token-one")), Ok(()));
        assert_eq!(verify(&tokens(), Some(b"bearer fake-token-two")), Ok(()));
        assert_eq!(verify(&tokens(), Some(b"BEARER  fake-token-two ")), Ok(()));
    }

    #[test]
    fn missing_and_wrong_tokens_are_told_apart() {
        let t = tokens();
        assert_eq!(verify(&t, None), Err(AuthError::Missing));
        assert_eq!(verify(&t, Some(b"")), Err(AuthError::Missing));
        assert_eq!(verify(&t, Some(b"Bearer ")), Err(AuthError::Missing));
        assert_eq!(
            verify(&t, Some(b"Basic fake-token-one")),
            Err(AuthError::Missing)
        );
        assert_eq!(verify(&t, Some(b"fake-token-one")), Err(AuthError::Missing));
        assert_eq!(
            verify(&t, Some(b"Bearer fake-token")),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            verify(&t, Some(b"Bearer fake-token-one2")),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            verify(&t, Some(b"Bearer fake-token-one,fake-token-two")),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn token_lists_parse_and_stay_hidden() {
        let t = tokens();
        assert_eq!(t.tokens().len(), 2);
        assert_eq!(t.tokens()[1].expose(), "fake-token-two");
        assert!(!format!("{t:?}").contains("fake-token"));
        assert!(" , ".parse::<ApiTokens>().is_err());
        assert!("a b".parse::<ApiTokens>().is_err());
    }

    #[test]
    fn without_tokens_every_call_passes() {
        let mut open = Authenticate::new(None);
        assert!(open.call(Request::new(())).is_ok());
        let mut closed = Authenticate::new(Some(tokens()));
        let refused = closed.call(Request::new(())).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }
}
