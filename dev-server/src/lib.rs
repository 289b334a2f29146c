//! The local runtime of `make dev`, as a library so the integration tests run the very same
//! event source mappings: a DynamoDB-stream poller feeding `publish-events` and an SQS poller
//! feeding `order-events`. They call the handlers of the `inventory` crate; no business logic
//! lives here.

pub mod http_server;
pub mod queue_poller;
pub mod stream_poller;

use std::sync::Arc;

use inventory::publish::Publisher;
use inventory::Store;
use tokio::task::JoinHandle;

pub use http_server::serve_http;
pub use queue_poller::{poll_queue, QueuePollerOptions};
pub use stream_poller::{poll_stream, StreamPollerOptions};

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

/// The two event pipelines, running until dropped.
pub struct EventPipelines {
    tasks: Vec<JoinHandle<()>>,
}

impl EventPipelines {
    /// Starts the stream -> `publish-events` and queue -> `order-events` pollers.
    pub fn start(
        store: Arc<Store>,
        streams: aws_sdk_dynamodbstreams::Client,
        publisher: Arc<Publisher>,
        sqs: aws_sdk_sqs::Client,
        order_queue_url: String,
        stream_options: StreamPollerOptions,
        queue_options: QueuePollerOptions,
    ) -> Self {
        let publish = tokio::spawn(poll_stream(
            store.client().clone(),
            streams,
            store.table().to_owned(),
            stream_options,
            move |event| {
                let publisher = publisher.clone();
                async move { publisher.handle(event).await }
            },
        ));
        let orders = tokio::spawn(poll_queue(sqs, order_queue_url, queue_options, move |event| {
            let store = store.clone();
            async move { inventory::order_events::handle_batch(store.as_ref(), event).await }
        }));
        EventPipelines { tasks: vec![publish, orders] }
    }
}

impl Drop for EventPipelines {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
