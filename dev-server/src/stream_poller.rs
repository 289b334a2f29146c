//! Stands in for Lambda's DynamoDB-stream event source mapping: reads the table's stream on
//! DynamoDB Local shard by shard, in order, and hands each batch to a handler (the
//! `publish-events` handler) as the `aws_lambda_events` DynamoDB event Lambda would send.
//!
//! Semantics kept from the mapping (`ReportBatchItemFailures`, `MaximumRetryAttempts: -1`):
//! a batch with failures is retried from the lowest failed sequence number (the records before
//! it are checkpointed), with a capped backoff, until it succeeds; a shard's children are read
//! after it closes. Checkpoints live in memory: the local stack is in memory too.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord, StreamViewType};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct StreamPollerOptions {
    /// Records per batch (the mapping's BatchSize).
    pub batch_size: i32,
    /// Pause between reads of an idle shard.
    pub idle_wait: Duration,
    /// Backoff bounds between retries of a failed batch or an unreachable stream.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The mapping's filter patterns (`FilterCriteria`): a record that matches none is dropped
    /// before batching, as Lambda drops it. None: every record.
    pub filters: Vec<serde_json::Value>,
}

impl Default for StreamPollerOptions {
    fn default() -> Self {
        StreamPollerOptions {
            batch_size: 100,
            idle_wait: Duration::from_millis(250),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            filters: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct Shard {
    parent: Option<String>,
    iterator: Option<String>,
    /// The last sequence number handled: where to resume when the iterator is lost.
    checkpoint: Option<String>,
    closed: bool,
}

/// Polls the stream of `table` until the task is dropped, calling `handler` with every batch.
/// Every call goes through `streams`: the function's own client, as Lambda's mapping reads the
/// stream with the function's role (ListStreams to find it, then DescribeStream,
/// GetShardIterator and GetRecords).
pub async fn poll_stream<H, Fut>(
    streams: StreamsClient,
    table: String,
    options: StreamPollerOptions,
    handler: H,
) where
    H: Fn(StreamEvent) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    let mut backoff = options.min_backoff;
    let stream_arn: String = loop {
        match streams.list_streams().table_name(&table).send().await {
            // The table's current stream: the one with the latest label (a table's stream may
            // have been replaced; ListStreams promises no order).
            Ok(out) => match out
                .streams
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| Some((s.stream_label?, s.stream_arn?)))
                .max()
                .map(|(_, arn)| arn)
            {
                Some(arn) => break arn,
                None => tracing::error!(%table, "table has no stream; the publisher cannot run"),
            },
            Err(e) => {
                tracing::warn!(%table, error = %DisplayErrorContext(&e), "cannot list the table's streams")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(options.max_backoff);
    };
    tracing::info!(%stream_arn, "polling the table's stream");
    let mut shards: HashMap<String, Shard> = HashMap::new();
    loop {
        if let Err(e) = discover_shards(&streams, &stream_arn, &mut shards).await {
            tracing::warn!(error = %e, "cannot describe the stream");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(options.max_backoff);
            continue;
        }
        let mut progressed = false;
        let mut failed = false;
        let ready: Vec<String> = shards
            .iter()
            .filter(|(_, s)| !s.closed)
            .filter(|(_, s)| s.parent.as_ref().is_none_or(|p| shards.get(p).is_none_or(|p| p.closed)))
            .map(|(id, _)| id.clone())
            .collect();
        for shard_id in ready {
            let shard = shards.get_mut(&shard_id).expect("shard listed");
            match read_shard(&streams, &stream_arn, &shard_id, shard, &options, &handler).await {
                Ok(n) => progressed |= n > 0,
                Err(e) => {
                    tracing::warn!(shard = %shard_id, error = %e, "stream batch not done; retrying");
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(options.max_backoff);
        } else {
            backoff = options.min_backoff;
            if !progressed {
                tokio::time::sleep(options.idle_wait).await;
            }
        }
    }
}

async fn discover_shards(
    streams: &StreamsClient,
    stream_arn: &str,
    shards: &mut HashMap<String, Shard>,
) -> Result<(), String> {
    let mut start = None;
    loop {
        let out = streams
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        let Some(description) = out.stream_description else { return Ok(()) };
        for shard in description.shards.unwrap_or_default() {
            let Some(id) = shard.shard_id else { continue };
            shards.entry(id).or_insert_with(|| Shard { parent: shard.parent_shard_id, ..Default::default() });
        }
        match description.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => return Ok(()),
        }
    }
}

/// Reads one batch of a shard and hands it over; `Ok(records handled)`, or `Err` when the
/// batch must be retried (from the lowest failure) or the stream could not be read.
async fn read_shard<H, Fut>(
    streams: &StreamsClient,
    stream_arn: &str,
    shard_id: &str,
    shard: &mut Shard,
    options: &StreamPollerOptions,
    handler: &H,
) -> Result<usize, String>
where
    H: Fn(StreamEvent) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    let iterator = match shard.iterator.take() {
        Some(it) => it,
        None => {
            let request = streams.get_shard_iterator().stream_arn(stream_arn).shard_id(shard_id);
            let request = match &shard.checkpoint {
                Some(seq) => {
                    request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(seq)
                }
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let out = request.send().await.map_err(|e| DisplayErrorContext(&e).to_string())?;
            match out.shard_iterator {
                Some(it) => it,
                None => {
                    shard.closed = true;
                    return Ok(0);
                }
            }
        }
    };
    let out = streams
        .get_records()
        .shard_iterator(&iterator)
        .limit(options.batch_size)
        .send()
        .await
        // The iterator is dropped: the next read starts again from the checkpoint.
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    let records = out.records.unwrap_or_default();
    let next = out.next_shard_iterator;
    if records.is_empty() {
        shard.closed = next.is_none();
        shard.iterator = next;
        return Ok(0);
    }
    let read = records.len();
    let last_read = records.last().and_then(|r| r.dynamodb.as_ref()?.sequence_number.clone());
    let batch: Vec<EventRecord> = records
        .into_iter()
        .map(|r| to_lambda_record(r, stream_arn))
        .filter(|r| passes_filters(&options.filters, r))
        .collect();
    if batch.is_empty() {
        shard.checkpoint = last_read.or(shard.checkpoint.take());
        shard.closed = next.is_none();
        shard.iterator = next;
        return Ok(read);
    }
    let sequence_numbers: Vec<Option<String>> =
        batch.iter().map(|r| r.change.sequence_number.clone()).collect();
    let mut event = StreamEvent::default();
    event.records = batch;
    let response = handler(event).await;
    let first_failure = sequence_numbers.iter().position(|seq| {
        response.batch_item_failures.iter().any(|f| f.item_identifier.is_some() && f.item_identifier == *seq)
    });
    match first_failure {
        None if !response.batch_item_failures.is_empty() => {
            // A failure naming no record of the batch: Lambda retries the whole batch.
            Err("the handler reported an unknown item; retrying the batch".into())
        }
        None => {
            shard.checkpoint = last_read.or(shard.checkpoint.take());
            shard.closed = next.is_none();
            shard.iterator = next;
            Ok(read)
        }
        Some(i) => {
            if i > 0 {
                shard.checkpoint = sequence_numbers[i - 1].clone();
            }
            // shard.iterator stays None: the retry reads again after the checkpoint.
            Err(format!(
                "{} of {} records failed",
                response.batch_item_failures.len(),
                sequence_numbers.len()
            ))
        }
    }
}

/// Whether a record passes the mapping's filters (any pattern matches its event JSON).
fn passes_filters(filters: &[serde_json::Value], record: &EventRecord) -> bool {
    if filters.is_empty() {
        return true;
    }
    let json = serde_json::to_value(record).unwrap_or_default();
    filters.iter().any(|pattern| crate::topology::matches_filter(pattern, &json))
}

/// The record as Lambda delivers it (the `aws_lambda_events` shape).
pub fn to_lambda_record(record: Record, stream_arn: &str) -> EventRecord {
    let mut out = EventRecord::default();
    out.event_id = record.event_id.unwrap_or_default();
    out.event_name = record.event_name.map(|n| n.as_str().to_owned()).unwrap_or_default();
    out.event_version = record.event_version;
    out.event_source = record.event_source.or(Some("aws:dynamodb".into()));
    out.aws_region = record.aws_region.unwrap_or_default();
    out.event_source_arn = Some(stream_arn.to_owned());
    if let Some(change) = record.dynamodb {
        out.change.keys = serde_dynamo::Item::from(change.keys.unwrap_or_default());
        out.change.new_image = serde_dynamo::Item::from(change.new_image.unwrap_or_default());
        out.change.old_image = serde_dynamo::Item::from(change.old_image.unwrap_or_default());
        out.change.sequence_number = change.sequence_number;
        out.change.size_bytes = change.size_bytes.unwrap_or_default();
        out.change.stream_view_type = Some(StreamViewType::NewAndOldImages);
        if let Some(at) = change.approximate_creation_date_time {
            out.change.approximate_creation_date_time =
                DateTime::<Utc>::from_timestamp_millis(at.to_millis().unwrap_or_default())
                    .unwrap_or_default();
        }
    }
    out
}
