//! What a write is made for and under, passed from where the work starts (an HTTP request, an
//! order event, the sweep) to the transaction that records it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::idempotency::Claim;
use crate::domain::Provenance;
use crate::events::{DetailType, OutboxEvent};

/// A write's context: its event carries the correlation id and the trace header; with a claim
/// on an `Idempotency-Key`, the answer is kept with the change; the actor is named in the
/// ledger. `WriteContext::default()` is a write nobody asked for by name (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct WriteContext {
    /// Carried by the event the write announces (`correlationId`).
    pub correlation_id: Option<String>,
    /// The `Idempotency-Key` claim of the request: its answer is kept with the change.
    pub claim: Option<Arc<Claim>>,
    /// The X-Ray trace header, carried by the outbox record onto the event.
    pub trace_header: Option<String>,
    /// Who asked (a JWT's `sub`), named in the ledger's movements.
    pub actor: Option<String>,
}

impl WriteContext {
    /// A write for work with this correlation id.
    pub fn correlated(correlation_id: impl Into<String>) -> Self {
        WriteContext { correlation_id: Some(correlation_id.into()), ..WriteContext::default() }
    }

    /// The same, under an X-Ray trace header (kept only when it has a trace header's form).
    pub fn traced(mut self, header: Option<String>) -> Self {
        self.trace_header = header.filter(|h| crate::xray::is_trace_header(h));
        self
    }

    /// The same, with a claim on an idempotency key (or none).
    pub fn claiming(mut self, claim: Option<Arc<Claim>>) -> Self {
        self.claim = claim;
        self
    }

    /// The event a write in this context announces.
    pub fn event(&self, detail_type: DetailType, data: Value, at: DateTime<Utc>) -> OutboxEvent {
        let mut event = OutboxEvent::new(detail_type, data, at, self.correlation_id.as_deref());
        event.trace_header = self.trace_header.clone();
        event
    }

    /// `provenance` (why: reason, reference) with who asked and in which work.
    pub fn provenance(&self, provenance: &Provenance) -> Provenance {
        Provenance {
            correlation_id: self.correlation_id.clone(),
            actor: self.actor.clone(),
            ..provenance.clone()
        }
    }
}
