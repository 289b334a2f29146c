//! The on-hand ledger (docs/api.md, `GET /v1/stock/{sku}/{locationId}/movements`): one movement per
//! change of an item's onHand, written in the same transaction as the change and kept for good, so
//! "why is on-hand 47?" is answered by replaying an item's movements from the first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::timestamp;

/// What changed onHand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MovementKind {
    /// `PUT /v1/stock/...` (or a batch item with `onHand`): an absolute count.
    Set,
    /// An adjustment (or a batch item with `delta`).
    Adjust,
    /// A confirmed reservation took the units; `reference` is its reservationId.
    Sold,
}

/// Who and why, as a write was asked for; carried into its movement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub reason: Option<String>,
    pub reference: Option<String>,
    /// The JWT `sub` of the caller, when there is one.
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
}

/// One entry of an item's ledger: onHand went by `delta` to `on_hand` at `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    /// The stock item's version after the change.
    pub version: u64,
    #[serde(with = "timestamp")]
    pub at: DateTime<Utc>,
    pub kind: MovementKind,
    /// onHand after - before.
    pub delta: i64,
    /// onHand after the change.
    pub on_hand: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// On a sharded item: the shard whose onHand changed (`version` and `onHand` are that
    /// shard's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
}

impl Movement {
    pub fn new(
        kind: MovementKind,
        version: u64,
        delta: i64,
        on_hand: i64,
        at: DateTime<Utc>,
        provenance: &Provenance,
    ) -> Self {
        Movement {
            version,
            at,
            kind,
            delta,
            on_hand,
            reason: provenance.reason.clone(),
            reference: provenance.reference.clone(),
            actor: provenance.actor.clone(),
            correlation_id: provenance.correlation_id.clone(),
            shard: None,
        }
    }

    /// This movement as one of shard `shard`'s, on an item of `shards` shards (unsharded: as is).
    pub fn on_shard(mut self, shard: u32, shards: usize) -> Self {
        if shards > 1 || shard > 0 {
            self.shard = Some(shard);
        }
        self
    }
}

/// Where a replay of movements (oldest first) breaks the chain: each entry's onHand must be the
/// previous one's plus its delta (from 0), and versions must grow, per shard (an unsharded item
/// is one chain). `None` when it holds; the last onHands then sum to what the item has.
pub fn replay_break(movements: &[Movement]) -> Option<String> {
    let mut chains: std::collections::BTreeMap<u32, (i64, u64)> = std::collections::BTreeMap::new();
    for m in movements {
        let (on_hand, version) = chains.entry(m.shard.unwrap_or(0)).or_default();
        if m.on_hand != *on_hand + m.delta {
            return Some(format!("v{}: onHand {} != {on_hand} + {}", m.version, m.on_hand, m.delta));
        }
        if m.version <= *version {
            return Some(format!("v{} after v{version}", m.version));
        }
        (*on_hand, *version) = (m.on_hand, m.version);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(version: u64, delta: i64, on_hand: i64) -> Movement {
        Movement::new(MovementKind::Adjust, version, delta, on_hand, Utc::now(), &Provenance::default())
    }

    #[test]
    fn a_chain_of_movements_replays_to_the_last_on_hand() {
        assert_eq!(replay_break(&[m(1, 5, 5), m(3, -2, 3), m(4, 10, 13)]), None);
        assert!(replay_break(&[m(1, 5, 5), m(3, -2, 4)]).is_some(), "a lost or doubled change");
        assert!(replay_break(&[m(1, 5, 5), m(1, 0, 5)]).is_some(), "a version twice");
        let json = serde_json::to_value(m(2, -1, 4)).unwrap();
        assert_eq!(json["kind"], "ADJUST");
        assert!(json.get("reason").is_none(), "absent, not null");
    }
}
