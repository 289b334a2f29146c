//! Extractors: the correlation id, a write's context, path parameters (percent-decoded by axum)
//! and JSON bodies.
//! Their rejections are this crate's `Error`, so they answer with the contract's error body.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::MAX_BODY_BYTES;
use crate::error::Error;
use crate::store::{Claim, WriteContext};

pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The caller's `x-correlation-id` when it is a sane token, else a fresh UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(String);

impl CorrelationId {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let sane = |v: &&str| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/+=".contains(c))
        };
        let given = headers.get(CORRELATION_HEADER).and_then(|v| v.to_str().ok()).filter(sane);
        CorrelationId(given.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        // The router's middleware put it there; a handler called without it reads the header.
        Ok(parts
            .extensions
            .get::<CorrelationId>()
            .cloned()
            .unwrap_or_else(|| Self::from_headers(&parts.headers)))
    }
}

/// The X-Ray trace header of a request (in Lambda the invocation's, locally the request's
/// header), left in the request's extensions by the router's middleware.
#[derive(Debug, Clone, Default)]
pub struct TraceHeader(pub Option<String>);

/// A write requested over HTTP: its correlation id, the `Idempotency-Key` claim the idempotency
/// middleware left in the request, the trace header and the caller.
impl<S: Send + Sync> FromRequestParts<S> for WriteContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let correlation = CorrelationId::from_request_parts(parts, state).await?;
        let Actor(actor) = Actor::from_request_parts(parts, state).await?;
        let trace = parts.extensions.get::<TraceHeader>().and_then(|t| t.0.clone());
        let claim = parts.extensions.get::<Arc<Claim>>().cloned();
        let mut ctx = WriteContext::correlated(correlation.as_str()).traced(trace).claiming(claim);
        ctx.actor = actor;
        Ok(ctx)
    }
}

/// A route's path parameters (a struct named after them), checked against the contract.
pub trait PathParams: DeserializeOwned + Send {
    fn validate(&self) -> Result<(), Error>;
}

/// Path parameters, percent-decoded and validated, into `T`. Parts extractors run before the
/// body's, so a bad identifier is reported before a bad body.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: PathParams> FromRequestParts<S> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let params = match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(params)) => params,
            Err(rejection) => {
                return Err(Error::validation(format!("invalid path: {}", rejection.body_text())))
            }
        };
        params.validate()?;
        Ok(Params(params))
    }
}

/// A JSON body of a type that rejects unknown fields. No `Content-Type` is required.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::validation("a JSON request body is required"));
        }
        parse_body(&bytes).map(JsonBody)
    }
}

/// A JSON body into `T`; a field that is missing, unknown, null or of the wrong type is named
/// in the error's `details.field` (its path: `lines[0].quantity`).
fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let message = format!("invalid request body: {}", e.inner());
        match field_of(&e) {
            Some(field) => Error::invalid_field(&field, message),
            None => Error::validation(message),
        }
    })
}

/// The body field an error is about, if it is about one (not malformed JSON).
fn field_of(error: &serde_path_to_error::Error<serde_json::Error>) -> Option<String> {
    if !error.inner().is_data() {
        return None;
    }
    let path = error.path().to_string();
    let path = if path == "." { String::new() } else { path };
    // serde names a missing field in its message only; the path is the object it is missing from.
    let text = error.inner().to_string();
    let missing = text.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
    let field = match missing {
        Some(name) if path.is_empty() => name.to_owned(),
        Some(name) => format!("{path}.{name}"),
        None => path,
    };
    (!field.is_empty()).then_some(field)
}

pub use crate::domain::not_null;

/// For actions without parameters: no body, or `{}`.
pub struct NoParameters;

impl<S: Send + Sync> FromRequest<S> for NoParameters {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Empty {}
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(NoParameters);
        }
        parse_body::<Empty>(&bytes).map(|_| NoParameters)
    }
}

async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(request, state).await.map_err(|rejection: BytesRejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge { limit: MAX_BODY_BYTES }
        } else {
            Error::validation(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })
}

/// The largest page a list gives, and what it gives without `limit`.
pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 50;

/// What an order's history gives without `limit` (docs/api.md).
pub const DEFAULT_ORDER_PAGE: i32 = 20;

/// `?limit=1..100&cursor=...` of a paged list (no other query parameter); `DEFAULT` without
/// `limit`.
pub struct PageParams<const DEFAULT: i32 = DEFAULT_PAGE> {
    pub limit: i32,
    pub cursor: Option<String>,
}

impl<S: Send + Sync, const DEFAULT: i32> FromRequestParts<S> for PageParams<DEFAULT> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            limit: Option<String>,
            cursor: Option<String>,
        }
        let raw = axum::extract::Query::<Raw>::try_from_uri(&parts.uri)
            .map_err(|e| Error::invalid_field("query", e.body_text()))?
            .0;
        let limit = match raw.limit {
            None => DEFAULT,
            Some(limit) => limit.parse().ok().filter(|l| (1..=MAX_PAGE).contains(l)).ok_or_else(|| {
                Error::invalid_field("limit", format!("limit must be an integer 1-{MAX_PAGE}"))
            })?,
        };
        if raw.cursor.as_deref().is_some_and(|c| c.is_empty() || c.len() > 512) {
            return Err(Error::invalid_field("cursor", "cursor is not one this list gave"));
        }
        Ok(PageParams { limit, cursor: raw.cursor })
    }
}

/// The caller, as API Gateway's JWT authorizer verified it: the token's `sub` (absent locally, or
/// without an authorizer).
pub struct Actor(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        use lambda_http::request::RequestContext;
        let sub = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .and_then(|jwt| jwt.claims.get("sub"))
                .cloned(),
            _ => None,
        };
        Ok(Actor(sub))
    }
}

/// Who sent a request, as API Gateway verified it: `jwt:{sub}` (JWT authorizer), `iam:{arn}`
/// (IAM authorization; an assumed role's ARN without its session name, so every session of one
/// role is one caller), else `local` (the local server, or a route deployed open). An
/// `Idempotency-Key` belongs to its caller.
pub fn caller(extensions: &http::Extensions) -> String {
    use lambda_http::request::RequestContext;
    let Some(RequestContext::ApiGatewayV2(context)) = extensions.get::<RequestContext>() else {
        return "local".to_owned();
    };
    let authorizer = context.authorizer.as_ref();
    if let Some(sub) = authorizer.and_then(|a| a.jwt.as_ref()).and_then(|jwt| jwt.claims.get("sub")) {
        return format!("jwt:{sub}");
    }
    if let Some(arn) = authorizer.and_then(|a| a.iam.as_ref()).and_then(|iam| iam.user_arn.as_deref()) {
        return format!("iam:{}", role_of(arn));
    }
    "local".to_owned()
}

/// `arn:aws:sts::123:assumed-role/Role/session` -> `arn:aws:sts::123:assumed-role/Role`; any
/// other ARN as it is.
fn role_of(arn: &str) -> &str {
    const ASSUMED: &str = ":assumed-role/";
    let Some(at) = arn.find(ASSUMED).map(|at| at + ASSUMED.len()) else { return arn };
    match arn[at..].find('/') {
        Some(slash) => &arn[..at + slash],
        None => arn,
    }
}

#[cfg(test)]
mod caller_tests {
    use super::*;
    use lambda_http::request::RequestContext;

    fn context(authorizer: serde_json::Value) -> http::Extensions {
        let context = serde_json::json!({"routeKey": "POST /v1/reservations", "authorizer": authorizer,
            "http": {"method": "POST", "path": "/v1/reservations"}});
        let mut extensions = http::Extensions::new();
        let context: RequestContext =
            RequestContext::ApiGatewayV2(serde_json::from_value(context).expect("a request context"));
        extensions.insert(context);
        extensions
    }

    #[test]
    fn a_caller_is_the_tokens_subject_the_iam_principal_or_local() {
        assert_eq!(caller(&http::Extensions::new()), "local");
        assert_eq!(
            caller(&context(serde_json::json!({"jwt": {"claims": {"sub": "u-1"}, "scopes": null}}))),
            "jwt:u-1"
        );
        let session = |s: &str| {
            context(
                serde_json::json!({"iam": {"userArn": format!("arn:aws:sts::123456789012:assumed-role/checkout/{s}")}}),
            )
        };
        assert_eq!(caller(&session("i-1")), "iam:arn:aws:sts::123456789012:assumed-role/checkout");
        assert_eq!(caller(&session("i-1")), caller(&session("i-2")), "one role, one caller");
        let user = context(serde_json::json!({"iam": {"userArn": "arn:aws:iam::123456789012:user/ops"}}));
        assert_eq!(caller(&user), "iam:arn:aws:iam::123456789012:user/ops");
        assert_eq!(caller(&context(serde_json::Value::Null)), "local");
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        order_id: String,
        lines: Vec<Line>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: i64,
    }

    fn field(body: &str) -> Option<String> {
        match parse_body::<Body>(body.as_bytes()).unwrap_err() {
            Error::Validation { field, .. } => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_body_error_names_its_field_by_its_path() {
        assert_eq!(field(r#"{"lines": []}"#).as_deref(), Some("orderId"));
        assert_eq!(field(r#"{"orderId": 7, "lines": []}"#).as_deref(), Some("orderId"));
        let wrong_type =
            r#"{"orderId": "o", "lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": "x"}]}"#;
        assert_eq!(field(wrong_type).as_deref(), Some("lines[1].quantity"));
        assert_eq!(field(r#"{"orderId": "o", "lines": [{"quantity": 1}]}"#).as_deref(), Some("lines[0].sku"));
        assert_eq!(field(r#"{"orderId": "o", "lines": [], "colour": 1}"#).as_deref(), Some("colour"));
        assert_eq!(field(r#"{"orderId": "o", "lines": ["#), None, "malformed JSON names no field");
    }
}
