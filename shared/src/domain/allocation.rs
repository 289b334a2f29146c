//! Allocation across locations (API.md, "Lines that let the service pick the location"): a pure
//! planner that turns request lines naming a location, a list of allowed locations in order of
//! preference, or none (any location of the sku), into concrete `(sku, locationId, quantity)`
//! lines against the stock items as read. The store then reserves them with the usual conditional
//! transaction, and plans again from a fresh read if a condition fails.
//!
//! - Without a location, the allowed locations are taken in `locations` order, or, without a list,
//!   by most available units, ties by locationId.
//! - Without `split`, a line goes to the first allowed location that covers all of it; with
//!   `split`, it is filled from the allowed locations in that order.
//! - Lines naming a location are placed first; the others, in request order, see what the lines
//!   before them took.
//! - A line that cannot be covered is a shortfall with `locationId: null` and `available` = the
//!   most one allowed location has (with `split`: their sum), after the lines before it.

use std::collections::BTreeMap;

use super::stock::StockItem;
use super::validate::Line;
use crate::error::Shortfall;

/// Where a request line may be held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// This location.
    At(String),
    /// These locations, in order of preference (1-20 of them).
    Preferred(Vec<String>),
    /// Any location of the sku.
    Anywhere,
}

/// A request line before allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlexibleLine {
    pub sku: String,
    pub placement: Placement,
    pub quantity: i64,
    /// The line may be covered by several locations.
    pub split: bool,
}

/// Units available per `(sku, locationId)`, as the planner hands them out.
struct Available(BTreeMap<(String, String), i64>);

impl Available {
    fn of(&self, sku: &str, location_id: &str) -> i64 {
        self.0.get(&(sku.to_owned(), location_id.to_owned())).copied().unwrap_or(0).max(0)
    }

    fn take(&mut self, sku: &str, location_id: &str, quantity: i64) {
        *self.0.entry((sku.to_owned(), location_id.to_owned())).or_insert(0) -= quantity;
    }

    /// The allowed locations of a flexible line, in the order they are tried.
    fn candidates(&self, sku: &str, placement: &Placement) -> Vec<String> {
        match placement {
            Placement::At(location_id) => vec![location_id.clone()],
            Placement::Preferred(locations) => locations.clone(),
            Placement::Anywhere => {
                let mut all: Vec<(i64, String)> = self
                    .0
                    .iter()
                    .filter(|((s, _), _)| s == sku)
                    .map(|((_, location_id), available)| (*available, location_id.clone()))
                    .collect();
                // Most available first, ties by locationId.
                all.sort_by(|(a, la), (b, lb)| b.cmp(a).then_with(|| la.cmp(lb)));
                all.into_iter().map(|(_, location_id)| location_id).collect()
            }
        }
    }
}

/// Resolves `lines` against `stock` (every stock item of the skus named, as read): the concrete
/// lines, merged by `(sku, locationId)` and sorted, or every line that cannot be covered.
pub fn plan_allocation(lines: &[FlexibleLine], stock: &[StockItem]) -> Result<Vec<Line>, Vec<Shortfall>> {
    let mut available =
        Available(stock.iter().map(|s| ((s.sku.clone(), s.location_id.clone()), s.available)).collect());
    let mut placed: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut shortfalls = Vec::new();
    let fixed = lines.iter().filter(|l| matches!(l.placement, Placement::At(_)));
    let flexible = lines.iter().filter(|l| !matches!(l.placement, Placement::At(_)));
    for line in fixed.chain(flexible) {
        let candidates = available.candidates(&line.sku, &line.placement);
        let takes = if line.split {
            fill_in_order(&available, &line.sku, &candidates, line.quantity)
        } else {
            candidates
                .iter()
                .find(|l| available.of(&line.sku, l) >= line.quantity)
                .map(|l| vec![(l.clone(), line.quantity)])
        };
        match takes {
            Some(takes) => {
                for (location_id, quantity) in takes {
                    available.take(&line.sku, &location_id, quantity);
                    *placed.entry((line.sku.clone(), location_id)).or_insert(0) += quantity;
                }
            }
            None => {
                let each = candidates.iter().map(|l| available.of(&line.sku, l));
                let (location_id, usable) = match &line.placement {
                    Placement::At(location_id) => (Some(location_id.clone()), each.sum()),
                    _ if line.split => (None, each.sum()),
                    _ => (None, each.max().unwrap_or(0)),
                };
                shortfalls.push(Shortfall {
                    sku: line.sku.clone(),
                    location_id,
                    requested: line.quantity,
                    available: usable,
                });
            }
        }
    }
    if !shortfalls.is_empty() {
        return Err(shortfalls);
    }
    Ok(placed.into_iter().map(|((sku, location_id), quantity)| Line { sku, location_id, quantity }).collect())
}

/// `quantity` of `sku` taken from `candidates` in order, or `None` if they do not have it all.
fn fill_in_order(
    available: &Available,
    sku: &str,
    candidates: &[String],
    quantity: i64,
) -> Option<Vec<(String, i64)>> {
    let mut left = quantity;
    let mut takes = Vec::new();
    for location_id in candidates {
        let take = available.of(sku, location_id).min(left);
        if take > 0 {
            takes.push((location_id.clone(), take));
            left -= take;
        }
        if left == 0 {
            return Some(takes);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn item(sku: &str, location_id: &str, available: i64) -> StockItem {
        StockItem {
            sku: sku.into(),
            location_id: location_id.into(),
            on_hand: available + 1,
            reserved: 1,
            available,
            version: 1,
            updated_at: Utc::now(),
        }
    }

    fn line(sku: &str, placement: Placement, quantity: i64, split: bool) -> FlexibleLine {
        FlexibleLine { sku: sku.into(), placement, quantity, split }
    }

    fn preferred(locations: &[&str]) -> Placement {
        Placement::Preferred(locations.iter().map(|l| (*l).to_owned()).collect())
    }

    fn resolved(spec: &[(&str, &str, i64)]) -> Vec<Line> {
        spec.iter()
            .map(|(s, l, q)| Line { sku: (*s).into(), location_id: (*l).into(), quantity: *q })
            .collect()
    }

    fn short(sku: &str, location_id: Option<&str>, requested: i64, available: i64) -> Shortfall {
        Shortfall { sku: sku.into(), location_id: location_id.map(str::to_owned), requested, available }
    }

    #[test]
    fn a_preference_list_is_tried_in_order_for_a_location_that_covers_the_whole_line() {
        let stock = [item("A", "w1", 2), item("A", "w2", 5), item("A", "w3", 9)];
        let plan = plan_allocation(&[line("A", preferred(&["w1", "w2", "w3"]), 3, false)], &stock);
        assert_eq!(plan.unwrap(), resolved(&[("A", "w2", 3)]), "w1 cannot cover 3, w2 can");
    }

    #[test]
    fn without_a_list_the_location_with_most_available_wins_ties_by_location_id() {
        let stock = [item("A", "w3", 4), item("A", "w1", 7), item("A", "w2", 7)];
        let plan = plan_allocation(&[line("A", Placement::Anywhere, 1, false)], &stock);
        assert_eq!(plan.unwrap(), resolved(&[("A", "w1", 1)]));
    }

    #[test]
    fn split_fills_from_the_allowed_locations_in_order() {
        let stock = [item("A", "w1", 2), item("A", "w2", 5), item("A", "w3", 9)];
        let plan = plan_allocation(&[line("A", preferred(&["w2", "w1", "w3"]), 8, true)], &stock);
        assert_eq!(plan.unwrap(), resolved(&[("A", "w1", 2), ("A", "w2", 5), ("A", "w3", 1)]));
        let anywhere = plan_allocation(&[line("A", Placement::Anywhere, 12, true)], &stock);
        assert_eq!(anywhere.unwrap(), resolved(&[("A", "w2", 3), ("A", "w3", 9)]));
    }

    #[test]
    fn shortfalls_report_the_best_single_location_or_with_split_the_sum() {
        let stock = [item("A", "w1", 2), item("A", "w2", 5)];
        let whole = plan_allocation(&[line("A", preferred(&["w1", "w2"]), 6, false)], &stock);
        assert_eq!(whole.unwrap_err(), [short("A", None, 6, 5)]);
        let split = plan_allocation(&[line("A", preferred(&["w1", "w2"]), 8, true)], &stock);
        assert_eq!(split.unwrap_err(), [short("A", None, 8, 7)]);
        // A listed location with no stock item has nothing; so does a sku with none anywhere.
        let unknown = plan_allocation(&[line("A", preferred(&["w9"]), 1, false)], &stock);
        assert_eq!(unknown.unwrap_err(), [short("A", None, 1, 0)]);
        let none = plan_allocation(&[line("B", Placement::Anywhere, 1, true)], &stock);
        assert_eq!(none.unwrap_err(), [short("B", None, 1, 0)]);
    }

    #[test]
    fn fixed_lines_go_first_and_later_lines_see_what_earlier_ones_took() {
        let stock = [item("A", "w1", 5), item("A", "w2", 3)];
        let lines = [
            line("A", Placement::Anywhere, 4, false),
            line("A", Placement::At("w1".into()), 2, false),
            line("A", Placement::Anywhere, 3, false),
        ];
        // w1 2 (fixed), then 4 from w1 (3 left there: no; w2 has 3: no) -> short of the best, 3.
        let plan = plan_allocation(&lines, &stock);
        assert_eq!(plan.unwrap_err(), [short("A", None, 4, 3)]);
        let fits = [
            line("A", Placement::At("w1".into()), 2, false),
            line("A", Placement::Anywhere, 3, false),
            line("A", Placement::Anywhere, 3, false),
        ];
        assert_eq!(plan_allocation(&fits, &stock).unwrap(), resolved(&[("A", "w1", 5), ("A", "w2", 3)]));
    }

    #[test]
    fn a_fixed_line_that_cannot_be_met_names_its_location() {
        let stock = [item("A", "w1", 1)];
        let plan = plan_allocation(&[line("A", Placement::At("w1".into()), 2, false)], &stock);
        assert_eq!(plan.unwrap_err(), [short("A", Some("w1"), 2, 1)]);
    }
}
