//! Scopes (docs/api.md, "Scopes"): with the JWT authorizer on, API Gateway checks each route's scope;
//! with `REQUIRE_SCOPES=true` the handlers check it again from the request context, so a function
//! reached some other way (a misconfigured route, a direct invoke) refuses a token without it.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Extensions;
use lambda_http::request::RequestContext;

use crate::error::Error;

/// The scopes of the caller's token: the authorizer's `scopes`, or the `scope` / `scp` claim
/// (space-separated), as API Gateway's JWT authorizer passes them.
pub(crate) fn token_scopes(extensions: &Extensions) -> Vec<String> {
    let Some(RequestContext::ApiGatewayV2(context)) = extensions.get::<RequestContext>() else {
        return Vec::new();
    };
    let Some(jwt) = context.authorizer.as_ref().and_then(|a| a.jwt.as_ref()) else { return Vec::new() };
    let mut scopes: Vec<String> = jwt.scopes.clone().unwrap_or_default();
    for claim in ["scope", "scp"] {
        if let Some(value) = jwt.claims.get(claim) {
            scopes.extend(value.split_whitespace().map(str::to_owned));
        }
    }
    scopes
}

/// 403 FORBIDDEN unless the caller's token has `scope`.
pub(super) async fn require_scope(
    State(scope): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    if token_scopes(request.extensions()).iter().any(|s| s == scope) {
        next.run(request).await
    } else {
        Error::Forbidden { scope: scope.to_owned() }.into_response()
    }
}
