//! Scopes: every route needs the one openapi.json names, and with `REQUIRE_SCOPES` a token without
//! it is refused.

use super::*;
use integration_tests::TestTable;
use inventory::http::ROUTES;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

#[test]
fn every_route_needs_the_scope_openapi_names() {
    for (method, template, op) in ROUTES {
        let described = &openapi().spec()["paths"][*template][method.to_lowercase()]["x-scope"];
        assert_eq!(described.as_str(), op.scope(), "{method} {template}");
    }
}

/// An API Gateway (payload 2.0) event for `method path` whose JWT carries `scope`, if any.
fn event_with_scope(
    method: &str,
    template: &str,
    path: &str,
    scope: Option<&str>,
) -> http::Request<lambda_http::Body> {
    let mut context =
        json!({"http": {"method": method, "path": path}, "routeKey": format!("{method} {template}")});
    if let Some(scope) = scope {
        context["authorizer"] =
            json!({"jwt": {"claims": {"sub": "caller-1", "scope": scope}, "scopes": null}});
    }
    let event = json!({
        "version": "2.0", "routeKey": format!("{method} {template}"), "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"}, "requestContext": context, "isBase64Encoded": false,
        "body": if method == "GET" { Value::Null } else { json!("{}") },
    });
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event")
}

#[tokio::test]
async fn with_require_scopes_each_route_refuses_a_token_without_its_scope_and_accepts_one_with_it() {
    use inventory::http::{router_with, RouterOptions};
    let t = TestTable::new().await;
    let options = RouterOptions { local_budget: Duration::from_secs(9), require_scopes: true, metrics: None };
    let id = uuid::Uuid::new_v4().to_string();
    for (method, template, op) in ROUTES {
        let path = template
            .replace("{sku}", "S")
            .replace("{locationId}", "w1")
            .replace("{reservationId}", &id)
            .replace("{orderId}", "o-1");
        let status = |scope: Option<&'static str>| {
            let app = router_with(Arc::new(t.store.clone()), &[*op], options.clone());
            let request = event_with_scope(method, template, &path, scope);
            async move {
                let response = app.oneshot(request).await.expect("infallible");
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
            }
        };
        let Some(scope) = op.scope() else {
            assert_eq!(status(None).await.0, 200, "{method} {template} needs no token");
            continue;
        };
        for wrong in [None, Some("inventory/other"), Some("inventory/read.not")] {
            let (code, body) = status(wrong).await;
            assert_eq!(code, 403, "{method} {template} with {wrong:?}: {body}");
            assert_eq!(body["error"]["code"], "FORBIDDEN");
            assert_eq!(body["error"]["details"]["requiredScope"], scope);
        }
        let both = Box::leak(format!("openid {scope}").into_boxed_str());
        let (code, body) = status(Some(both)).await;
        assert_ne!(code, 403, "{method} {template} with {scope}: {body}");
    }
}
