//! What an audit found: the drifting items, the other problems, and the report as `make audit`
//! prints it.

use serde::Serialize;

use super::Problem;

/// One stock item whose numbers disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub sku: String,
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub version: u64,
    /// The sum of the PENDING reservations' lines on the item.
    pub held_by_reservations: i64,
    /// The sum of the item's hold items.
    pub hold_items: i64,
    pub problems: Vec<Problem>,
}

/// What one audit found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub items_checked: u64,
    pub holds_checked: u64,
    pub pending_reservations: u64,
    pub order_keys: u64,
    /// Stock items whose numbers disagree, confirmed on a settled view.
    pub drift: Vec<Drift>,
    /// Reservations and order keys that disagree with each other (or holds of no stock item).
    pub other_problems: Vec<Problem>,
    /// Suspects that kept changing while they were re-read: neither cleared nor reported.
    pub unsettled: Vec<String>,
    pub duration_ms: u64,
}

impl AuditReport {
    /// Drifting items and other problems: what `audit_drift` counts.
    pub fn drift_count(&self) -> u64 {
        (self.drift.len() + self.other_problems.len()) as u64
    }

    /// The report as text, one line per finding (what `make audit` prints).
    pub fn render(&self) -> String {
        let mut out = format!(
            "audited {} stock items, {} holds, {} PENDING reservations, {} order keys in {} ms\n",
            self.items_checked,
            self.holds_checked,
            self.pending_reservations,
            self.order_keys,
            self.duration_ms
        );
        for d in &self.drift {
            out += &format!(
                "DRIFT {}/{} v{}: onHand {} reserved {} available {} heldByReservations {} holdItems {}: {}\n",
                d.sku,
                d.location_id,
                d.version,
                d.on_hand,
                d.reserved,
                d.available,
                d.held_by_reservations,
                d.hold_items,
                d.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            );
        }
        for p in &self.other_problems {
            out += &format!("PROBLEM {p}\n");
        }
        for u in &self.unsettled {
            out += &format!("UNSETTLED {u} (kept changing while re-read; see the next run)\n");
        }
        out += &format!("{} drifting\n", self.drift_count());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_one_line_per_finding() {
        let report = AuditReport {
            items_checked: 3,
            holds_checked: 2,
            pending_reservations: 1,
            order_keys: 1,
            drift: vec![Drift {
                sku: "B".into(),
                location_id: "w1".into(),
                on_hand: 4,
                reserved: 2,
                available: 3,
                version: 7,
                held_by_reservations: 1,
                hold_items: 1,
                problems: vec![
                    Problem::AvailableNotOnHandMinusReserved { expected: 2 },
                    Problem::ReservedNotPendingLines { held_by_reservations: 1 },
                ],
            }],
            other_problems: vec![Problem::NoOrderKey { reservation_id: "r1".into(), order_id: "o1".into() }],
            unsettled: vec!["C/w1".into()],
            duration_ms: 12,
        };
        assert_eq!(report.drift_count(), 2);
        assert_eq!(
            report.render(),
            "audited 3 stock items, 2 holds, 1 PENDING reservations, 1 order keys in 12 ms\n\
             DRIFT B/w1 v7: onHand 4 reserved 2 available 3 heldByReservations 1 holdItems 1: \
             available is not onHand - reserved (2); reserved is not the PENDING reservations' 1\n\
             PROBLEM PENDING reservation r1 of order o1: no order key\n\
             UNSETTLED C/w1 (kept changing while re-read; see the next run)\n\
             2 drifting\n"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["drift"][0]["problems"][1], "reserved is not the PENDING reservations' 1");
        assert_eq!(json["otherProblems"][0], "PENDING reservation r1 of order o1: no order key");
    }
}
