//! The HTTP edge: one `axum::Router` of small handlers, one module per resource. A Lambda runs
//! `lambda_http::run` on a router holding only its own operation's route(s); the local server
//! serves the router of every operation with `axum::serve`; tests call it in-process. Routing,
//! percent-decoding of path segments, 405 with `Allow` and the body limit are axum's and
//! tower-http's; what is ours is the handlers, the extractors (`extract`) and one mapping of
//! errors, rejections and the framework's own 404/405/413 to the contract's error body (`error`).

mod channels;
mod error;
mod extract;
mod health;
mod idempotency;
mod kits;
mod orders;
mod reservations;
mod scopes;
mod stock;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use http::{HeaderValue, Method};
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

use crate::error::Error;
use crate::store::{remaining_before, with_deadline};
use crate::Store;
pub use error::{error_body, status_of, ErrorCode, REPLAYED_HEADER};
pub use extract::{CorrelationId, TraceHeader, CORRELATION_HEADER};
pub use idempotency::{fingerprint, IDEMPOTENCY_HEADER};

/// Request bodies over this many bytes get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What a request's deadline keeps back from its Lambda invocation's deadline: time to answer.
pub const LAMBDA_MARGIN: Duration = Duration::from_millis(500);

/// A request's time when no Lambda invocation gives one (the local server): what the HTTP
/// functions' 10 s timeout (template.yaml) leaves after a margin.
pub const LOCAL_REQUEST_BUDGET: Duration = Duration::from_secs(9);

/// What every handler shares: the store.
pub type AppState = Arc<Store>;

/// The HTTP operations; each is one Lambda function in AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Health,
    PutStock,
    AdjustStock,
    GetStock,
    ListMovements,
    ListHolds,
    BatchStock,
    ListLocationStock,
    Reserve,
    GetReservation,
    GetOrderReservation,
    PutOrderReservation,
    ListOrderReservations,
    Confirm,
    Release,
    Extend,
    PutChannel,
    GetChannel,
    Availability,
    PutKit,
    GetKit,
}

/// The routes of docs/api.md (`{name}` is a path parameter), as API Gateway routes them to functions.
pub const ROUTES: &[(&str, &str, Operation)] = &[
    ("GET", "/health", Operation::Health),
    ("PUT", "/v1/stock/{sku}/{locationId}", Operation::PutStock),
    ("POST", "/v1/stock/{sku}/{locationId}/adjustments", Operation::AdjustStock),
    ("GET", "/v1/stock/{sku}", Operation::GetStock),
    ("GET", "/v1/stock/{sku}/{locationId}", Operation::GetStock),
    ("GET", "/v1/stock/{sku}/{locationId}/movements", Operation::ListMovements),
    ("GET", "/v1/stock/{sku}/{locationId}/holds", Operation::ListHolds),
    ("POST", "/v1/stock/batch", Operation::BatchStock),
    ("GET", "/v1/locations/{locationId}/stock", Operation::ListLocationStock),
    ("POST", "/v1/reservations", Operation::Reserve),
    ("GET", "/v1/reservations/{reservationId}", Operation::GetReservation),
    ("POST", "/v1/reservations/{reservationId}/confirm", Operation::Confirm),
    ("POST", "/v1/reservations/{reservationId}/release", Operation::Release),
    ("POST", "/v1/reservations/{reservationId}/extend", Operation::Extend),
    ("GET", "/v1/orders/{orderId}/reservation", Operation::GetOrderReservation),
    ("PUT", "/v1/orders/{orderId}/reservation", Operation::PutOrderReservation),
    ("GET", "/v1/orders/{orderId}/reservations", Operation::ListOrderReservations),
    ("PUT", "/v1/channels/{channelId}", Operation::PutChannel),
    ("GET", "/v1/channels/{channelId}", Operation::GetChannel),
    ("POST", "/v1/availability", Operation::Availability),
    ("PUT", "/v1/kits/{sku}", Operation::PutKit),
    ("GET", "/v1/kits/{sku}", Operation::GetKit),
];

impl Operation {
    pub const ALL: [Operation; 21] = [
        Operation::Health,
        Operation::PutStock,
        Operation::AdjustStock,
        Operation::GetStock,
        Operation::ListMovements,
        Operation::ListHolds,
        Operation::BatchStock,
        Operation::ListLocationStock,
        Operation::Reserve,
        Operation::GetReservation,
        Operation::GetOrderReservation,
        Operation::PutOrderReservation,
        Operation::ListOrderReservations,
        Operation::Confirm,
        Operation::Release,
        Operation::Extend,
        Operation::PutChannel,
        Operation::GetChannel,
        Operation::Availability,
        Operation::PutKit,
        Operation::GetKit,
    ];

    /// The crate under `functions/` (and the template's function) that serves the operation.
    pub fn function(self) -> &'static str {
        match self {
            Operation::Health => "health",
            Operation::PutStock => "put-stock",
            Operation::AdjustStock => "adjust-stock",
            Operation::GetStock => "get-stock",
            Operation::ListMovements => "list-movements",
            Operation::ListHolds => "list-holds",
            Operation::BatchStock => "batch-stock",
            Operation::ListLocationStock => "list-location-stock",
            Operation::Reserve => "reserve",
            Operation::GetReservation => "get-reservation",
            Operation::GetOrderReservation => "get-order-reservation",
            Operation::PutOrderReservation => "put-order-reservation",
            Operation::ListOrderReservations => "list-order-reservations",
            Operation::Confirm => "confirm",
            Operation::Release => "release",
            Operation::Extend => "extend",
            Operation::PutChannel => "put-channel",
            Operation::GetChannel => "get-channel",
            Operation::Availability => "availability",
            Operation::PutKit => "put-kit",
            Operation::GetKit => "get-kit",
        }
    }

    /// Whether it may change anything: a POST or PUT but the availability read, whose
    /// `Idempotency-Key` is kept (a read keeps no answer: it has nothing to repeat).
    pub fn writes(self) -> bool {
        ROUTES.iter().any(|(method, _, op)| *op == self && matches!(*method, "POST" | "PUT"))
            && self != Operation::Availability
    }

    /// The scope a caller's token needs for the operation (docs/api.md, "Scopes"); `None`: none.
    pub fn scope(self) -> Option<&'static str> {
        match self {
            Operation::Health => None,
            Operation::PutStock
            | Operation::AdjustStock
            | Operation::BatchStock
            | Operation::PutChannel
            | Operation::PutKit => Some("inventory/stock.write"),
            Operation::Reserve
            | Operation::PutOrderReservation
            | Operation::Confirm
            | Operation::Release
            | Operation::Extend => Some("inventory/reservations.write"),
            Operation::GetStock
            | Operation::ListMovements
            | Operation::ListHolds
            | Operation::ListLocationStock
            | Operation::GetReservation
            | Operation::GetOrderReservation
            | Operation::ListOrderReservations
            | Operation::GetChannel
            | Operation::GetKit
            | Operation::Availability => Some("inventory/read"),
        }
    }

    /// The handler of the operation, for requests of `method`.
    fn endpoint(self, method: MethodFilter) -> MethodRouter<AppState> {
        match self {
            Operation::Health => on(method, health::health),
            Operation::PutStock => on(method, stock::put_stock),
            Operation::AdjustStock => on(method, stock::adjust_stock),
            Operation::GetStock => on(method, stock::get_stock),
            Operation::ListMovements => on(method, stock::list_movements),
            Operation::ListHolds => on(method, stock::list_holds),
            Operation::BatchStock => on(method, stock::batch),
            Operation::ListLocationStock => on(method, stock::list_location_stock),
            Operation::Reserve => on(method, reservations::reserve),
            Operation::GetReservation => on(method, reservations::get_reservation),
            Operation::GetOrderReservation => on(method, orders::get_order_reservation),
            Operation::PutOrderReservation => on(method, orders::put_order_reservation),
            Operation::ListOrderReservations => on(method, orders::list_order_reservations),
            Operation::Confirm => on(method, reservations::confirm),
            Operation::Release => on(method, reservations::release),
            Operation::Extend => on(method, reservations::extend),
            Operation::PutChannel => on(method, channels::put_channel),
            Operation::GetChannel => on(method, channels::get_channel),
            Operation::Availability => on(method, channels::availability),
            Operation::PutKit => on(method, kits::put_kit),
            Operation::GetKit => on(method, kits::get_kit),
        }
    }
}

/// How a router serves its requests.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// A request's time when no Lambda invocation gives one (the local server).
    pub local_budget: Duration,
    /// Check each route's scope in the caller's token (API Gateway's JWT authorizer's claims)
    /// besides API Gateway: 403 FORBIDDEN without it.
    pub require_scopes: bool,
    /// Serve `GET /metrics` (Prometheus text) from this handle: the local server.
    pub metrics: Option<crate::metrics::PrometheusHandle>,
}

impl RouterOptions {
    /// [`LOCAL_REQUEST_BUDGET`], and `REQUIRE_SCOPES=true` from a function's environment.
    pub fn from_env(env: &crate::config::FunctionEnv) -> Self {
        RouterOptions {
            local_budget: LOCAL_REQUEST_BUDGET,
            require_scopes: env.require_scopes(),
            metrics: None,
        }
    }
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions { local_budget: LOCAL_REQUEST_BUDGET, require_scopes: false, metrics: None }
    }
}

/// How one function serves its routes (the local runtime's, from template.yaml).
#[derive(Debug, Clone, Default)]
pub struct FunctionOptions {
    /// Check each route's scope in the caller's token (the function's `REQUIRE_SCOPES`).
    pub require_scopes: bool,
    /// A request's time when no Lambda invocation gives one: the function's timeout less
    /// [`LAMBDA_MARGIN`]. `None`: the router's local budget.
    pub budget: Option<Duration>,
}

/// The router of `operations`' routes over `store`: one operation for a Lambda, all of them
/// ([`Operation::ALL`]) for tests, with the default options. A request's deadline is its Lambda
/// invocation's less [`LAMBDA_MARGIN`], or the local budget from its start.
pub fn router(store: AppState, operations: &[Operation]) -> Router {
    router_with(store, operations, RouterOptions::default())
}

/// [`router`], with `local_budget` for the requests no Lambda invocation gives a deadline.
pub fn router_with_budget(store: AppState, operations: &[Operation], local_budget: Duration) -> Router {
    router_with(store, operations, RouterOptions { local_budget, ..RouterOptions::default() })
}

/// [`router`] with the options given.
pub fn router_with(store: AppState, operations: &[Operation], options: RouterOptions) -> Router {
    let function = FunctionOptions { require_scopes: options.require_scopes, budget: None };
    let routes = ROUTES.iter().filter(|(_, _, op)| operations.contains(op));
    let router = routes.fold(Router::new(), |router, (method, path, operation)| {
        with_route(router, store.clone(), (method, path, *operation), &function)
    });
    serve(router, options)
}

/// `router` with one more route, `(method, path, operation)` of [`ROUTES`], served by `store`
/// (the store of the function the route invokes). Routes on one path with other methods may be
/// other functions'.
pub fn with_route(
    router: Router,
    store: AppState,
    (method, path, operation): (&str, &str, Operation),
    options: &FunctionOptions,
) -> Router {
    let filter = Method::from_bytes(method.as_bytes()).ok().and_then(|m| MethodFilter::try_from(m).ok());
    let filter = filter.unwrap_or_else(|| unreachable!("ROUTES names only standard methods"));
    let endpoint = || {
        // On the method's handler only: a method the path does not have is 405 whatever its key.
        let mut endpoint = operation.endpoint(filter);
        if operation.writes() {
            let idempotent = middleware::from_fn_with_state(store.clone(), idempotency::idempotency);
            endpoint = endpoint.route_layer(idempotent);
        }
        if let (true, Some(scope)) = (options.require_scopes, operation.scope()) {
            // Outside the idempotency layer: a refused request touches no key.
            endpoint = endpoint.route_layer(middleware::from_fn_with_state(scope, scopes::require_scope));
        }
        if let Some(budget) = options.budget {
            endpoint = endpoint.route_layer(middleware::from_fn_with_state(budget, function_deadline));
        }
        endpoint.with_state(store.clone())
    };
    let mut router = router.route(path, endpoint());
    // API Gateway picks among the routes of the request's method: a literal path of another
    // method's route that this route's pattern matches (`POST /v1/stock/batch` for
    // `GET /v1/stock/{sku}`) is, for this method, this route. The router would answer 405 there.
    for literal in shadowed_by(method, path) {
        let this_route = Router::new().route(path, endpoint());
        router = router.route(literal, axum::routing::on_service(filter, this_route));
    }
    router
}

/// The literal paths of [`ROUTES`] that `pattern` matches and that have no route of `method`.
fn shadowed_by(method: &str, pattern: &str) -> std::collections::BTreeSet<&'static str> {
    ROUTES
        .iter()
        .map(|(_, literal, _)| *literal)
        .filter(|literal| *literal != pattern && matches_pattern(pattern, literal))
        .filter(|literal| !ROUTES.iter().any(|(m, l, _)| *m == method && l == literal))
        .collect()
}

/// Whether a route template matches a literal path (`{name}` matches any one segment that is not
/// a template's parameter).
fn matches_pattern(pattern: &str, literal: &str) -> bool {
    let (p, l): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), literal.split('/').collect());
    p.len() == l.len()
        && p.iter()
            .zip(&l)
            .all(|(p, l)| p == l || (p.starts_with('{') && !l.starts_with('{') && !l.is_empty()))
}

/// A router of routes ([`with_route`]) as the service serves it: 404 for any other path, the
/// contract's error bodies, the request deadline, metrics and logs (and `GET /metrics` when
/// `options.metrics` is set).
pub fn serve(mut router: Router, options: RouterOptions) -> Router {
    if let Some(handle) = options.metrics {
        router = router
            .route("/metrics", axum::routing::get(move || std::future::ready(prometheus_text(&handle))));
    }
    let routed = router
        .fallback(unknown_route)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(options.local_budget, observe));
    // Around the whole router: axum writes a 405's `Allow` inside it, after its layers.
    let with_allow =
        tower::ServiceBuilder::new().layer(middleware::from_fn(allow_of_the_path)).service(routed);
    Router::new().fallback_service(with_allow)
}

/// A 405's `Allow`: the methods of the path's own routes (the most specific route template of
/// [`ROUTES`] the path matches, as OpenAPI picks a path item), not those another template lends
/// it ([`with_route`]: `GET /v1/stock/batch` is the sku "batch", yet `/v1/stock/batch` is POST).
async fn allow_of_the_path(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if response.status() != http::StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let literal: Vec<&str> = ROUTES.iter().filter(|(_, p, _)| *p == path).map(|(m, _, _)| *m).collect();
    let methods = if literal.is_empty() {
        let template = ROUTES.iter().find(|(_, p, _)| matches_pattern(p, &path)).map(|(_, p, _)| *p);
        ROUTES.iter().filter(|(_, p, _)| Some(*p) == template).map(|(m, _, _)| *m).collect()
    } else {
        literal
    };
    let mut allow: Vec<&str> = methods;
    if allow.contains(&"GET") {
        allow.push("HEAD");
    }
    if let (false, Ok(value)) = (allow.is_empty(), HeaderValue::from_str(&allow.join(","))) {
        response.headers_mut().insert(http::header::ALLOW, value);
    }
    response
}

/// The deadline of a request no Lambda invocation gives one, from its function's timeout.
async fn function_deadline(State(budget): State<Duration>, request: Request, next: Next) -> Response {
    if request.extensions().get::<lambda_runtime::Context>().is_some() {
        return next.run(request).await;
    }
    with_deadline(Instant::now() + budget, next.run(request)).await
}

/// `GET /metrics` of the local server: the Prometheus text exposition format.
fn prometheus_text(handle: &crate::metrics::PrometheusHandle) -> Response {
    let content_type = [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    (content_type, handle.render()).into_response()
}

/// The operation a matched route template and method belong to; for a method the path does not
/// have (405), the path's first operation.
fn operation_of(method: &Method, route: Option<&MatchedPath>) -> Option<Operation> {
    let route = route?.as_str();
    let on_path = || ROUTES.iter().filter(move |(_, path, _)| *path == route);
    on_path()
        .find(|(m, _, _)| *m == method.as_str())
        // A literal path another method's route shadows ([`with_route`]).
        .or_else(|| ROUTES.iter().find(|(m, p, _)| *m == method.as_str() && matches_pattern(p, route)))
        .or_else(|| on_path().next())
        .map(|(_, _, op)| *op)
}

async fn unknown_route(request: Request) -> Error {
    Error::NotFound { what: "route", id: request.uri().path().to_owned() }
}

/// Around every request: its deadline (every store call inside honours it), the correlation id
/// (echoed in the response) and the X-Ray trace header (both kept in the request for the
/// handlers' `WriteContext`), a span, one log line and the metrics of its answer, and the
/// contract's error body on the framework's own 405 and 413 answers. The matched route template
/// is left in the response's extensions.
async fn observe(State(local_budget): State<Duration>, mut request: Request, next: Next) -> Response {
    let invocation = request.extensions().get::<lambda_runtime::Context>();
    let budget = invocation
        .and_then(|c| remaining_before(c.deadline, chrono::Utc::now().timestamp_millis(), LAMBDA_MARGIN))
        .unwrap_or(local_budget);
    let deadline = Instant::now() + budget;
    // In Lambda, the invocation's trace (the one X-Ray records for the function); without one
    // (the local server), the request's header.
    let trace_header = match invocation {
        Some(context) => context.xray_trace_id.clone(),
        None => {
            request.headers().get(crate::xray::TRACE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
        }
    };
    let correlation_id = CorrelationId::from_headers(request.headers());
    request.extensions_mut().insert(correlation_id.clone());
    request.extensions_mut().insert(TraceHeader(trace_header));
    let route = request.extensions().get::<MatchedPath>().cloned();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let operation = route.as_ref().map_or("-", MatchedPath::as_str).to_owned();
    let function = operation_of(&method, route.as_ref()).map_or("unknown", Operation::function);
    let span = tracing::info_span!("request", correlation_id = %correlation_id.as_str(), %operation);
    async move {
        let started = Instant::now();
        let work = with_deadline(deadline, next.run(request));
        let mut response = with_contract_body(work.await, &method);
        if let Ok(value) = HeaderValue::from_str(correlation_id.as_str()) {
            response.headers_mut().insert(CORRELATION_HEADER, value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
        let replayed = response.headers().contains_key(REPLAYED_HEADER);
        if operation != "/metrics" {
            let outcome = crate::metrics::http_outcome(status, code, replayed);
            crate::metrics::http_answer(function, status, outcome, elapsed);
        }
        if status >= 500 {
            tracing::error!(%method, %path, status, elapsed_ms, "request failed");
        } else {
            tracing::info!(%method, %path, status, elapsed_ms, "request");
        }
        if let Some(route) = route {
            response.extensions_mut().insert(route);
        }
        response
    }
    .instrument(span)
    .await
}

/// The framework answers 405 and 413 without a body of ours: give them the contract's error body.
/// (axum adds the 405's `Allow` header on its way out, after this layer.)
fn with_contract_body(response: Response, method: &Method) -> Response {
    let is_json = response.headers().get(http::header::CONTENT_TYPE).is_some_and(|v| v == "application/json");
    let error = match response.status() {
        _ if is_json => return response,
        http::StatusCode::METHOD_NOT_ALLOWED => Error::MethodNotAllowed { method: method.to_string() },
        http::StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge { limit: MAX_BODY_BYTES },
        _ => return response,
    };
    error.into_response()
}
