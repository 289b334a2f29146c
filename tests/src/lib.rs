//! Shared helpers of the integration tests, by concern: every test's own table (`table`), a clock
//! it can move (`clock`), faults injected at the SDK's HTTP client (`faults`) and a model of real
//! DynamoDB's contention there (`contention`), the OpenAPI
//! checker (`openapi`), the local HTTP server and a client for it (`http_client`), the event
//! pipelines (`event_stack`), outages (`outage`), invariants and figures.

pub mod clock;
pub mod contention;
pub mod event_stack;
pub mod faults;
pub mod figures;
pub mod http_client;
pub mod invariants;
pub mod openapi;
pub mod outage;
pub mod runtime;
pub mod table;

pub use clock::TestClock;
pub use contention::{ContentionModel, ContentionParams, ModelCounts};
pub use faults::{Fault, FaultInjector};
pub use openapi::OpenApi;
pub use table::{dynamodb_endpoint, heavy_load_lock, hold, set_stock, stock_record, sweeper, TestTable};
