//! The HTTP edge: API Gateway HTTP API (payload 2.0) requests in, API.md responses out. Every
//! Lambda, the local server and the tests call these same handlers. Typed errors become the
//! contract's error body here and only here; no response carries SDK text.

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::domain::{self, LineRequest};
use crate::error::Error;
use crate::store::{StockChange, Store};

/// Request bodies over this many bytes get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The HTTP operations; each is one Lambda function in AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Health,
    PutStock,
    AdjustStock,
    GetStock,
    Reserve,
    GetReservation,
    GetOrderReservation,
    Confirm,
    Release,
    Extend,
}

/// The routes of API.md, as API Gateway matches them (`{name}` is a path parameter).
pub const ROUTES: &[(&str, &str, Operation)] = &[
    ("GET", "/health", Operation::Health),
    ("PUT", "/v1/stock/{sku}/{locationId}", Operation::PutStock),
    ("POST", "/v1/stock/{sku}/{locationId}/adjustments", Operation::AdjustStock),
    ("GET", "/v1/stock/{sku}", Operation::GetStock),
    ("GET", "/v1/stock/{sku}/{locationId}", Operation::GetStock),
    ("POST", "/v1/reservations", Operation::Reserve),
    ("GET", "/v1/reservations/{reservationId}", Operation::GetReservation),
    ("POST", "/v1/reservations/{reservationId}/confirm", Operation::Confirm),
    ("POST", "/v1/reservations/{reservationId}/release", Operation::Release),
    ("POST", "/v1/reservations/{reservationId}/extend", Operation::Extend),
    ("GET", "/v1/orders/{orderId}/reservation", Operation::GetOrderReservation),
];

/// A request matched to one of [`ROUTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub operation: Operation,
    /// The route's path template, e.g. `/v1/stock/{sku}`.
    pub template: &'static str,
    pub params: HashMap<String, String>,
}

/// Matches a method and path against [`ROUTES`], as API Gateway would.
pub fn match_route(method: &Method, path: &str) -> Option<RouteMatch> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    ROUTES.iter().find_map(|(route_method, template, op)| {
        if method.as_str() != *route_method {
            return None;
        }
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut params = HashMap::new();
        for (part, segment) in parts.iter().zip(&segments) {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if segment.is_empty() {
                    return None;
                }
                params.insert(name.to_owned(), (*segment).to_owned());
            } else if part != segment {
                return None;
            }
        }
        Some(RouteMatch { operation: *op, template, params })
    })
}

/// Builds the API Gateway HTTP API (payload format 2.0) event for a request, as API Gateway would
/// for a matched route, and converts it to a `lambda_http::Request` with lambda_http's own
/// conversion, so a request served locally reaches the handler exactly as it would in Lambda.
pub fn api_gateway_request(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
    body: &[u8],
    route: Option<(&str, &HashMap<String, String>)>,
) -> Result<Request, Error> {
    use base64::Engine;
    let mut header_map = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map
            .entry(name.as_str().to_owned())
            .and_modify(|v| *v = json!(format!("{},{}", v.as_str().unwrap_or_default(), value)))
            .or_insert(json!(value));
    }
    let (body_text, base64_encoded) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = chrono::Utc::now();
    let route_key = route.map_or("$default".to_owned(), |(template, _)| format!("{method} {template}"));
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query.unwrap_or(""),
        "headers": header_map,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": { "method": method.as_str(), "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local" },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": base64_encoded,
    });
    if !body.is_empty() {
        event["body"] = json!(body_text);
    }
    if let Some((_, params)) = route {
        if !params.is_empty() {
            event["pathParameters"] = json!(params);
        }
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let mut params = serde_json::Map::new();
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(k.to_owned(), json!(v));
        }
        event["queryStringParameters"] = Value::Object(params);
    }
    lambda_http::request::from_str(&event.to_string()).map_err(Error::internal)
}

/// A handler's successful answer.
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    fn ok(body: impl Serialize) -> Result<Reply, Error> {
        Self::with_status(StatusCode::OK, body)
    }

    fn with_status(status: StatusCode, body: impl Serialize) -> Result<Reply, Error> {
        Ok(Reply { status, body: serde_json::to_value(body).map_err(Error::internal)? })
    }
}

/// Runs one operation for a request and always returns a response (never an `Err`, never a
/// panic on input).
pub async fn handle(op: Operation, store: &Store, request: Request) -> Response<Body> {
    let correlation_id = correlation_id(&request);
    let span = tracing::info_span!("request", correlation_id = %correlation_id, operation = ?op);
    async {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let result = dispatch(op, store, &request, &correlation_id).await;
        let response = respond(result, &correlation_id);
        let status = response.status().as_u16();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::error!(%method, %path, status, elapsed_ms, "request failed");
        } else {
            tracing::info!(%method, %path, status, elapsed_ms, "request");
        }
        response
    }
    .instrument(span)
    .await
}

/// Serves one raw HTTP request the way API Gateway's HTTP API and Lambda would: match the route,
/// build the payload 2.0 event, convert it with lambda_http, run the operation's handler. This is
/// all the local server does per request; the HTTP tests call it too. `body` is `None` when it
/// was larger than [`MAX_BODY_BYTES`] and not read in full.
pub async fn serve_raw(
    store: &Store,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
    body: Option<&[u8]>,
) -> Response<Body> {
    let route = match_route(method, path);
    let event = api_gateway_request(
        method,
        path,
        query,
        headers,
        body.unwrap_or_default(),
        route.as_ref().map(|r| (r.template, &r.params)),
    );
    match (event, body, route) {
        (Err(e), _, _) => respond(Err(e), &uuid::Uuid::new_v4().to_string()),
        (Ok(request), None, _) => payload_too_large(&request),
        (Ok(request), Some(_), None) => not_found_route(&request),
        (Ok(request), Some(_), Some(route)) => handle(route.operation, store, request).await,
    }
}

/// The response for a request that matched no route (used by the local server; API Gateway
/// answers those itself in AWS).
pub fn not_found_route(request: &Request) -> Response<Body> {
    let correlation_id = correlation_id(request);
    respond(Err(Error::NotFound { what: "route", id: request.uri().path().to_owned() }), &correlation_id)
}

/// The response for a body the local server refused to read in full.
pub fn payload_too_large(request: &Request) -> Response<Body> {
    respond(Err(Error::PayloadTooLarge { limit: MAX_BODY_BYTES }), &correlation_id(request))
}

fn dispatch<'a>(
    op: Operation,
    store: &'a Store,
    req: &'a Request,
    correlation_id: &'a str,
) -> impl Future<Output = Result<Reply, Error>> + 'a {
    let corr = Some(correlation_id);
    async move {
        match op {
            Operation::Health => Reply::ok(json!({ "status": "ok" })),
            Operation::PutStock => {
                let (sku, loc) = stock_path(req)?;
                let body: PutStockBody = json_body(req)?;
                domain::validate_on_hand(body.on_hand)?;
                domain::validate_reason(body.reason.as_deref())?;
                let expected = domain::validate_expected_version(body.expected_version)?;
                let change = StockChange::Set { on_hand: body.on_hand };
                let written =
                    store.write_stock(sku, loc, change, expected, body.reason.as_deref(), corr).await?;
                let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
                Reply::with_status(status, written.item)
            }
            Operation::AdjustStock => {
                let (sku, loc) = stock_path(req)?;
                let body: AdjustBody = json_body(req)?;
                domain::validate_delta(body.delta)?;
                domain::validate_reason(body.reason.as_deref())?;
                let expected = domain::validate_expected_version(body.expected_version)?;
                let change = StockChange::Adjust { delta: body.delta };
                let written =
                    store.write_stock(sku, loc, change, expected, body.reason.as_deref(), corr).await?;
                Reply::ok(written.item)
            }
            Operation::GetStock => {
                let sku = param(req, "sku")?;
                domain::validate_sku(sku)?;
                no_body(req)?;
                match req.path_parameters_ref().and_then(|p| p.first("locationId")) {
                    Some(loc) => {
                        domain::validate_location_id(loc)?;
                        Reply::ok(store.get_stock(sku, loc).await?)
                    }
                    None => Reply::ok(store.get_sku_stock(sku).await?),
                }
            }
            Operation::Reserve => {
                let body: ReserveBody = json_body(req)?;
                domain::validate_order_id(&body.order_id)?;
                let lines = domain::merge_lines(&body.lines)?;
                let ttl = body.ttl_seconds.unwrap_or(domain::DEFAULT_TTL_SECONDS);
                domain::validate_ttl_seconds(ttl)?;
                let reserved = store.reserve(&body.order_id, lines, ttl, corr).await?;
                let status = if reserved.created { StatusCode::CREATED } else { StatusCode::OK };
                Reply::with_status(status, reserved.reservation)
            }
            Operation::GetReservation => {
                let id = reservation_id(req)?;
                no_body(req)?;
                Reply::ok(store.get_reservation(id).await?)
            }
            Operation::GetOrderReservation => {
                let order_id = param(req, "orderId")?;
                domain::validate_order_id(order_id)?;
                no_body(req)?;
                Reply::ok(store.get_order_reservation(order_id).await?)
            }
            Operation::Confirm => {
                let id = reservation_id(req)?;
                empty_object_body(req)?;
                Reply::ok(store.confirm(id, corr).await?.reservation)
            }
            Operation::Release => {
                let id = reservation_id(req)?;
                empty_object_body(req)?;
                Reply::ok(store.release(id, corr).await?.reservation)
            }
            Operation::Extend => {
                let id = reservation_id(req)?;
                let body: ExtendBody = json_body(req)?;
                domain::validate_ttl_seconds(body.ttl_seconds)?;
                Reply::ok(store.extend(id, body.ttl_seconds, corr).await?.reservation)
            }
        }
    }
}

fn respond(result: Result<Reply, Error>, correlation_id: &str) -> Response<Body> {
    let (status, body, retry_after) = match result {
        Ok(reply) => (reply.status, reply.body, None),
        Err(error) => {
            if let Error::Internal(detail) = &error {
                tracing::error!(detail = %detail, "internal error");
            }
            let retry_after = match &error {
                Error::Unavailable { retry_after_secs } => Some(*retry_after_secs),
                _ => None,
            };
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, error.body(), retry_after)
        }
    };
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        headers.insert(CORRELATION_HEADER, value);
    }
    if let Some(secs) = retry_after {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The caller's `x-correlation-id` when it is a sane token, else a fresh UUID.
pub fn correlation_id(request: &Request) -> String {
    request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/+=".contains(c))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn param<'a>(req: &'a Request, name: &str) -> Result<&'a str, Error> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .ok_or_else(|| Error::invalid_field(name, format!("missing path parameter {name}")))
}

/// The validated `{sku}/{locationId}` of a stock item route.
fn stock_path(req: &Request) -> Result<(&str, &str), Error> {
    let (sku, location_id) = (param(req, "sku")?, param(req, "locationId")?);
    domain::validate_sku(sku)?;
    domain::validate_location_id(location_id)?;
    Ok((sku, location_id))
}

fn reservation_id(req: &Request) -> Result<&str, Error> {
    let id = param(req, "reservationId")?;
    domain::parse_reservation_id(id)?;
    Ok(id)
}

fn body_bytes(req: &Request) -> Result<&[u8], Error> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    Ok(bytes)
}

/// Parses a JSON body into a type that rejects unknown fields.
fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, Error> {
    let bytes = body_bytes(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::validation("a JSON request body is required"));
    }
    serde_json::from_slice(bytes).map_err(|e| Error::validation(format!("invalid request body: {e}")))
}

/// For actions without parameters: no body, or `{}`.
fn empty_object_body(req: &Request) -> Result<(), Error> {
    let bytes = body_bytes(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<EmptyBody>(bytes)
        .map(|_| ())
        .map_err(|e| Error::validation(format!("invalid request body: {e}")))
}

fn no_body(req: &Request) -> Result<(), Error> {
    body_bytes(req).map(|_| ())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutStockBody {
    on_hand: i64,
    expected_version: Option<i64>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdjustBody {
    delta: i64,
    expected_version: Option<i64>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReserveBody {
    order_id: String,
    lines: Vec<LineRequest>,
    ttl_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExtendBody {
    ttl_seconds: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_like_api_gateway() {
        let m = match_route(&Method::PUT, "/v1/stock/A-1/wh.1").unwrap();
        let params = m.params;
        assert_eq!(m.operation, Operation::PutStock);
        assert_eq!(m.template, "/v1/stock/{sku}/{locationId}");
        assert_eq!(params["sku"], "A-1");
        assert_eq!(params["locationId"], "wh.1");
        let sku = match_route(&Method::GET, "/v1/stock/A-1").unwrap();
        assert_eq!((sku.operation, sku.template), (Operation::GetStock, "/v1/stock/{sku}"));
        let m = match_route(&Method::GET, "/v1/orders/o:1/reservation").unwrap();
        assert_eq!(m.operation, Operation::GetOrderReservation);
        assert_eq!(m.params["orderId"], "o:1");
        assert!(match_route(&Method::DELETE, "/v1/stock/A-1/wh.1").is_none());
        assert!(match_route(&Method::GET, "/v1/stock//x").is_none());
        assert!(match_route(&Method::GET, "/nope").is_none());
    }
}
