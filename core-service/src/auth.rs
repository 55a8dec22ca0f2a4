//! Bearer-token authentication and scopes on the core's own services.
//!
//! When `GATEWAY_API_TOKENS` is set, every `kapso.gateway.v1.*` call must carry
//! `authorization: Bearer <token>` naming one of them, and that token's scopes
//! must include the one the method needs ([`Scope::of_method`]). Health and
//! reflection stay open: load balancers and `grpcurl` probe them without
//! credentials, and they reveal nothing a token protects.
//!
//! The check is pure ([`authorize`]) and compares in constant time against every
//! configured token, so neither timing nor the order of the list tells a caller
//! how close a guess came.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use subtle::{ConditionallySelectable, ConstantTimeEq};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;

/// What a token may do. A token configured without scopes has them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `Ingest.IngestEvents`: what the adapter needs.
    Ingest,
    /// `GetMessage`, `ListMessages`, `WatchEvents`, `AckEvents`,
    /// `SeekConsumer`, `ListConsumers`: consumers.
    Read,
    /// `SendText`, `MarkRead`: services that message customers.
    Send,
}

impl Scope {
    const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Send];

    fn bit(self) -> u8 {
        match self {
            Scope::Ingest => 1,
            Scope::Read => 2,
            Scope::Send => 4,
        }
    }

    /// The scope a gateway method (`/kapso.gateway.v1.Service/Method`) needs.
    /// A Messaging method not listed as a read needs `send`: a new method is
    /// closed to readers until it is known to only read.
    pub fn of_method(path: &str) -> Scope {
        match path.strip_prefix("/kapso.gateway.v1.") {
            Some(method) if method.starts_with("Ingest/") => Scope::Ingest,
            Some(
                "Messaging/GetMessage"
                | "Messaging/ListMessages"
                | "Messaging/WatchEvents"
                | "Messaging/AckEvents"
                | "Messaging/SeekConsumer"
                | "Messaging/ListConsumers",
            ) => Scope::Read,
            _ => Scope::Send,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Send => "send",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub const ALL: Scopes = Scopes(7);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }
}

/// One accepted bearer token and what it may do. `Debug` never shows the token.
#[derive(Clone)]
pub struct ApiToken {
    token: String,
    scopes: Scopes,
}

impl ApiToken {
    /// A token with every scope.
    pub fn new(token: impl Into<String>) -> ApiToken {
        ApiToken {
            token: token.into(),
            scopes: Scopes::ALL,
        }
    }

    /// The token itself, for a client's request header only.
    pub fn expose(&self) -> &str {
        &self.token
    }

    pub fn scopes(&self) -> Scopes {
        self.scopes
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("token", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The accepted tokens, parsed from `GATEWAY_API_TOKENS`: a comma-separated
/// list (blanks around entries ignored) of `TOKEN` (every scope) or
/// `TOKEN=SCOPE+SCOPE` with scopes `ingest`, `read`, `send`. A token cannot
/// contain `,`, `=`, `+` or whitespace. Several tokens let callers rotate
/// without downtime. Errors name the entry by position, never by its text.
#[derive(Clone, Debug)]
pub struct ApiTokens(Vec<ApiToken>);

impl ApiTokens {
    pub fn tokens(&self) -> &[ApiToken] {
        &self.0
    }
}

impl FromStr for ApiTokens {
    type Err = String;

    fn from_str(s: &str) -> Result<ApiTokens, String> {
        let entries: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if entries.is_empty() {
            return Err("set but holds no token".into());
        }
        let mut tokens: Vec<ApiToken> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let n = index + 1;
            let (token, scopes) = match entry.split_once('=') {
                None => (*entry, Scopes::ALL),
                Some((token, scopes)) => (token.trim_end(), parse_scopes(scopes.trim_start(), n)?),
            };
            if token.is_empty() {
                return Err(format!("entry {n} has scopes but no token"));
            }
            if token
                .chars()
                .any(|c| c.is_whitespace() || c == '=' || c == '+')
            {
                return Err(format!(
                    "token {n} contains whitespace, `=` or `+` (write TOKEN or TOKEN=SCOPE+SCOPE)"
                ));
            }
            if tokens.iter().any(|t| t.token == token) {
                return Err(format!("token {n} repeats an earlier token"));
            }
            tokens.push(ApiToken {
                token: token.to_owned(),
                scopes,
            });
        }
        Ok(ApiTokens(tokens))
    }
}

/// `ingest+read` and the like; `n` names the entry in errors.
fn parse_scopes(list: &str, n: usize) -> Result<Scopes, String> {
    let mut bits = 0;
    for name in list.split('+').map(str::trim) {
        let scope = Scope::ALL
            .into_iter()
            .find(|s| s.name() == name)
            // The unknown name is not quoted: a misplaced separator could make it a token.
            .ok_or_else(|| {
                format!("token {n} names an unknown scope (scopes: ingest, read, send)")
            })?;
        bits |= scope.bit();
    }
    Ok(Scopes(bits))
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` metadata, or not of the form `Bearer <token>`: `UNAUTHENTICATED`.
    #[error("missing bearer token: send `authorization: Bearer <token>`")]
    Missing,
    /// A bearer token that is none of the configured ones: `UNAUTHENTICATED`.
    #[error("invalid bearer token")]
    Invalid,
    /// A valid token without the scope the method needs: `PERMISSION_DENIED`.
    #[error("this token lacks the `{0}` scope this method needs")]
    OutOfScope(Scope),
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Status {
        match error {
            AuthError::Missing | AuthError::Invalid => Status::unauthenticated(error.to_string()),
            AuthError::OutOfScope(_) => Status::permission_denied(error.to_string()),
        }
    }
}

/// Checks an `authorization` header value against `tokens` for a call needing `needed`.
pub fn authorize(
    tokens: &ApiTokens,
    header: Option<&[u8]>,
    needed: Scope,
) -> Result<(), AuthError> {
    let presented = header
        .and_then(bearer)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    // Every token is compared (no early exit), and the matching token's scopes
    // are picked without a branch, so the time taken does not depend on which
    // token matched or how many were tried.
    let (matched, scopes) =
        tokens
            .0
            .iter()
            .fold((subtle::Choice::from(0), 0u8), |(found, scopes), token| {
                let equal = token.token.as_bytes().ct_eq(presented);
                (
                    found | equal,
                    u8::conditional_select(&scopes, &token.scopes.0, equal),
                )
            });
    if !bool::from(matched) {
        return Err(AuthError::Invalid);
    }
    if Scopes(scopes).contains(needed) {
        Ok(())
    } else {
        Err(AuthError::OutOfScope(needed))
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, per RFC 9110).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// The token check in front of Ingest and Messaging. `None`: open (no tokens configured).
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

    /// Admits or refuses a call to `path` (`/package.Service/Method`).
    pub fn check(&self, path: &str, header: Option<&[u8]>) -> Result<(), Status> {
        let Some(tokens) = &self.0 else {
            return Ok(());
        };
        authorize(tokens, header, Scope::of_method(path)).map_err(|error| {
            // DEBUG: an unauthenticated caller must not be able to fill the log.
            tracing::debug!(%error, path, "call refused");
            Status::from(error)
        })
    }

    /// `service` behind this check.
    pub fn guard<S>(&self, service: S) -> Guarded<S> {
        Guarded {
            inner: service,
            auth: self.clone(),
        }
    }
}

/// A gRPC service behind [`Authenticate`]. Unlike a tonic interceptor it sees
/// the request path, which is what decides the scope a call needs.
#[derive(Clone, Debug)]
pub struct Guarded<S> {
    inner: S,
    auth: Authenticate,
}

impl<S, B> tower::Service<http::Request<B>> for Guarded<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future =
        futures::future::Either<std::future::Ready<Result<Self::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        match self.auth.check(request.uri().path(), header) {
            Ok(()) => futures::future::Either::Right(self.inner.call(request)),
            Err(status) => {
                futures::future::Either::Left(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> ApiTokens {
        "fake-token-one, fake-token-two".parse().unwrap()
    }

    fn verify(tokens: &ApiTokens, header: Option<&[u8]>) -> Result<(), AuthError> {
        authorize(tokens, header, Scope::Send)
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
    fn scoped_token_lists_parse_and_errors_never_quote_a_token() {
        let t: ApiTokens = "fake-adapter=ingest, fake-reader = read+send ,fake-all"
            .parse()
            .unwrap();
        let scopes: Vec<Scopes> = t.tokens().iter().map(ApiToken::scopes).collect();
        assert_eq!(scopes, [Scopes(1), Scopes(6), Scopes::ALL]);
        assert_eq!(t.tokens()[1].expose(), "fake-reader");
        for bad in [
            "fake-secret=admin",
            "fake-secret=",
            "=read",
            "fake-secret=read=send",
            "fake-secret+x",
            "fake-secret,fake-secret=read",
            "fake-secret=read+",
        ] {
            let error = bad.parse::<ApiTokens>().unwrap_err();
            assert!(!error.contains("fake"), "{bad}: {error}");
        }
    }

    #[test]
    fn methods_need_their_scope_and_tokens_grant_theirs() {
        assert_eq!(
            Scope::of_method("/kapso.gateway.v1.Ingest/IngestEvents"),
            Scope::Ingest
        );
        for read in [
            "GetMessage",
            "ListMessages",
            "WatchEvents",
            "AckEvents",
            "SeekConsumer",
            "ListConsumers",
        ] {
            let path = format!("/kapso.gateway.v1.Messaging/{read}");
            assert_eq!(Scope::of_method(&path), Scope::Read);
        }
        for send in ["SendText", "MarkRead", "SendTemplate"] {
            let path = format!("/kapso.gateway.v1.Messaging/{send}");
            assert_eq!(Scope::of_method(&path), Scope::Send);
        }
        let t: ApiTokens = "fake-adapter=ingest,fake-reader=read,fake-all"
            .parse()
            .unwrap();
        let header = |token: &str| format!("Bearer {token}").into_bytes();
        let check = |token: &str, scope| authorize(&t, Some(&header(token)), scope);
        assert_eq!(check("fake-adapter", Scope::Ingest), Ok(()));
        assert_eq!(
            check("fake-adapter", Scope::Read),
            Err(AuthError::OutOfScope(Scope::Read))
        );
        assert_eq!(check("fake-reader", Scope::Read), Ok(()));
        assert_eq!(
            check("fake-reader", Scope::Send),
            Err(AuthError::OutOfScope(Scope::Send))
        );
        for scope in Scope::ALL {
            assert_eq!(check("fake-all", scope), Ok(()));
        }
        assert_eq!(check("fake-other", Scope::Read), Err(AuthError::Invalid));
        let denied = Status::from(AuthError::OutOfScope(Scope::Send));
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("`send`"));
    }

    #[test]
    fn without_tokens_every_call_passes() {
        let path = "/kapso.gateway.v1.Messaging/SendText";
        assert!(Authenticate::new(None).check(path, None).is_ok());
        let refused = Authenticate::new(Some(tokens()))
            .check(path, None)
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }
}
