//! The local runtime of `make dev`, as a library so the integration tests and the bench run the
//! very same thing: every function of template.yaml with its routes, environment, schedule, event
//! source mapping and IAM policy (`runtime`, `topology`, `iam`), the HTTP server, and the pollers
//! that stand in for Lambda's event source mappings (a DynamoDB-stream poller, an SQS poller).
//! They call the handlers of the `inventory` crate; no business logic lives here.

pub mod http_server;
pub mod iam;
pub mod queue_poller;
pub mod runtime;
pub mod stream_poller;
pub mod topology;

pub use http_server::serve_http;
pub use queue_poller::{poll_queue, QueuePollerOptions};
pub use runtime::{BaseClients, EventPipelines, LocalFunction, LocalRuntime};
pub use stream_poller::{poll_stream, StreamPollerOptions};
pub use topology::{LocalQueue, Names, Topology};

/// A DynamoDB Streams client for the DynamoDB endpoint (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS`, else
/// `AWS_ENDPOINT_URL_DYNAMODB`): the SDK would otherwise send it to `AWS_ENDPOINT_URL`
/// (LocalStack), and DynamoDB Local serves streams itself.
pub fn streams_client(config: &aws_config::SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    let mut builder = aws_sdk_dynamodbstreams::config::Builder::from(config);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
        .ok()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok())
        .filter(|e| !e.is_empty());
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(builder.build())
}
