//! Stands in for Lambda's SQS event source mapping (`ReportBatchItemFailures`): long-polls the
//! queue on LocalStack, hands each batch to a handler (the `order-events` handler) as the
//! `aws_lambda_events` SQS event Lambda would send, deletes the messages that succeeded and
//! leaves the failed ones alone. Those reappear after the queue's visibility timeout, and SQS
//! itself moves a message to the dead-letter queue once it was received maxReceiveCount times.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client as SqsClient;
use aws_smithy_types::error::display::DisplayErrorContext;

#[derive(Debug, Clone)]
pub struct QueuePollerOptions {
    /// Messages per batch (the mapping's BatchSize; SQS gives at most 10 per receive).
    pub batch_size: i32,
    /// Long-poll wait of each receive.
    pub wait_time: Duration,
    /// Pause after an unreachable queue.
    pub error_backoff: Duration,
    /// The mapping's `FunctionResponseTypes: [ReportBatchItemFailures]`: only the messages the
    /// handler names stay on the queue. Without it, Lambda deletes the whole batch of an
    /// invocation that returned, whatever it answered.
    pub report_batch_item_failures: bool,
}

impl Default for QueuePollerOptions {
    fn default() -> Self {
        QueuePollerOptions {
            batch_size: 10,
            wait_time: Duration::from_secs(1),
            error_backoff: Duration::from_secs(1),
            report_batch_item_failures: true,
        }
    }
}

/// Polls `queue_url` until the task is dropped, calling `handler` with every batch.
pub async fn poll_queue<H, Fut>(sqs: SqsClient, queue_url: String, options: QueuePollerOptions, handler: H)
where
    H: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let mut queue = Queue { sqs, url: queue_url, arn: None, options };
    loop {
        if queue.arn.is_none() {
            queue.arn = queue
                .sqs
                .get_queue_attributes()
                .queue_url(&queue.url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .ok()
                .and_then(|out| out.attributes?.remove(&QueueAttributeName::QueueArn));
        }
        if let Err(e) = queue.poll_once(&handler).await {
            tracing::warn!(queue = %queue.url, error = %e, "cannot poll the queue");
            tokio::time::sleep(queue.options.error_backoff).await;
        }
    }
}

/// The queue being polled.
struct Queue {
    sqs: SqsClient,
    url: String,
    /// Its ARN, for the events' `eventSourceArn` (looked up once it can be).
    arn: Option<String>,
    options: QueuePollerOptions,
}

impl Queue {
    /// One receive and its batch: `Ok(messages received)`.
    async fn poll_once<H, Fut>(&self, handler: &H) -> Result<usize, String>
    where
        H: Fn(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        let (sqs, queue_url, queue_arn, options) =
            (&self.sqs, self.url.as_str(), self.arn.as_deref(), &self.options);
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(options.batch_size.clamp(1, 10))
            .wait_time_seconds(options.wait_time.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let count = messages.len();
        let mut receipts = Vec::with_capacity(count);
        let mut event = SqsEvent::default();
        for m in messages {
            receipts.push((
                m.message_id.clone().unwrap_or_default(),
                m.receipt_handle.clone().unwrap_or_default(),
            ));
            let mut message = SqsMessage::default();
            message.message_id = m.message_id;
            message.receipt_handle = m.receipt_handle;
            message.body = m.body;
            message.md5_of_body = m.md5_of_body;
            message.attributes = m
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect();
            message.event_source = Some("aws:sqs".into());
            message.event_source_arn = queue_arn.map(str::to_owned);
            event.records.push(message);
        }
        let response = handler(event).await;
        let failed: HashSet<&str> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        // Without ReportBatchItemFailures Lambda does not read the answer: an invocation that
        // returns deletes its whole batch (the handler's failures are lost, as on AWS).
        let kept = |id: &str| options.report_batch_item_failures && failed.contains(id);
        let entries = inventory::sqs::delete_entries(
            receipts.iter().filter(|(id, _)| !kept(id)).map(|(_, receipt)| receipt.as_str()),
        );
        if !entries.is_empty() {
            let out = sqs
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| DisplayErrorContext(&e).to_string())?;
            for failure in out.failed {
                // Not deleted: it will be delivered again; the handler is idempotent.
                tracing::warn!(entry = %failure.id, code = %failure.code, "could not delete a handled message");
            }
        }
        Ok(count)
    }
}
