//! SQS batch entries, built in one place for the publisher's dead letters, the redrive and the
//! local queue poller. Each entry's id is its position in what was given, so the per-entry
//! results of a batch call (`Successful`, `Failed`) name the message they are about
//! ([`entry_position`]).

use std::collections::HashMap;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    SendMessageBatchRequestEntry,
};

/// A message to send: its body and message attributes.
pub type Outgoing = (String, Option<HashMap<String, MessageAttributeValue>>);

/// `SendMessageBatch` entries for the messages, in order.
pub fn send_entries(messages: impl IntoIterator<Item = Outgoing>) -> Vec<SendMessageBatchRequestEntry> {
    messages
        .into_iter()
        .enumerate()
        .filter_map(|(i, (body, attributes))| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .set_message_attributes(attributes)
                .build()
                .ok()
        })
        .collect()
}

/// `DeleteMessageBatch` entries for the receipt handles, in order.
pub fn delete_entries<'a>(
    receipts: impl IntoIterator<Item = &'a str>,
) -> Vec<DeleteMessageBatchRequestEntry> {
    receipts
        .into_iter()
        .enumerate()
        .filter_map(|(i, receipt)| {
            DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build().ok()
        })
        .collect()
}

/// `ChangeMessageVisibilityBatch` entries making the messages visible after `seconds`.
pub fn visibility_entries<'a>(
    receipts: impl IntoIterator<Item = &'a str>,
    seconds: i32,
) -> Vec<ChangeMessageVisibilityBatchRequestEntry> {
    receipts
        .into_iter()
        .enumerate()
        .filter_map(|(i, receipt)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(receipt)
                .visibility_timeout(seconds)
                .build()
                .ok()
        })
        .collect()
}

/// The position a batch result's entry id names.
pub fn entry_position(id: &str) -> Option<usize> {
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_positions() {
        let sent = send_entries([("a".to_owned(), None), ("b".to_owned(), None)]);
        assert_eq!(sent.iter().map(|e| e.id().to_owned()).collect::<Vec<_>>(), ["0", "1"]);
        assert_eq!(sent[1].message_body(), "b");
        let deleted = delete_entries(["r0", "r1", "r2"]);
        assert_eq!(entry_position(deleted[2].id()), Some(2));
        assert_eq!(deleted[2].receipt_handle(), "r2");
        let unhidden = visibility_entries(["r"], 0);
        assert_eq!((unhidden[0].receipt_handle(), unhidden[0].visibility_timeout()), ("r", Some(0)));
    }
}
