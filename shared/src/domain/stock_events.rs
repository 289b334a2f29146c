//! The stock events a change of one item's availability derives (docs/api.md, "Events"): each once
//! per crossing, decided from the item's level before and after the change.
//!
//! - `StockDepleted`: available went from > 0 to 0;
//! - `StockLow`: available went from `>= lowStockThreshold` to below it (only with a threshold);
//! - `StockReplenished`: available went from 0 to > 0 ("back in stock").

use crate::events::DetailType;

/// What the crossing rules look at in an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLevel {
    pub available: i64,
    /// The item's `lowStockThreshold` after the change (the one a StockLow names).
    pub low_stock_threshold: Option<i64>,
}

/// The events a change from `before` to `after` crosses into, in this order: StockDepleted,
/// StockLow, StockReplenished. Empty when no line was crossed.
pub fn stock_crossings(before: StockLevel, after: StockLevel) -> Vec<DetailType> {
    let mut events = Vec::new();
    if before.available > 0 && after.available == 0 {
        events.push(DetailType::StockDepleted);
    }
    if after.low_stock_threshold.is_some_and(|t| before.available >= t && after.available < t) {
        events.push(DetailType::StockLow);
    }
    if before.available <= 0 && after.available > 0 {
        events.push(DetailType::StockReplenished);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use DetailType::*;

    fn level(available: i64, threshold: Option<i64>) -> StockLevel {
        StockLevel { available, low_stock_threshold: threshold }
    }

    fn crossings(before: i64, after: i64, threshold: Option<i64>) -> Vec<DetailType> {
        stock_crossings(level(before, threshold), level(after, threshold))
    }

    #[test]
    fn depleted_only_on_reaching_zero_from_above() {
        assert_eq!(crossings(1, 0, None), [StockDepleted]);
        assert_eq!(crossings(40, 0, None), [StockDepleted]);
        assert!(crossings(0, 0, None).is_empty(), "already out");
        assert!(crossings(2, 1, None).is_empty());
    }

    #[test]
    fn low_when_crossing_the_threshold_downwards_and_the_boundary_is_not_low() {
        assert_eq!(crossings(5, 4, Some(5)), [StockLow], "5 is not low, 4 is");
        assert!(crossings(6, 5, Some(5)).is_empty(), "down to the threshold exactly: not low");
        assert!(crossings(4, 3, Some(5)).is_empty(), "already low");
        assert!(crossings(4, 6, Some(5)).is_empty(), "going up");
        assert!(crossings(9, 1, None).is_empty(), "no threshold, no StockLow");
        assert_eq!(crossings(6, 0, Some(5)), [StockDepleted, StockLow], "both at once");
        assert_eq!(crossings(2, 0, Some(5)), [StockDepleted], "low already: depleted only");
    }

    #[test]
    fn low_follows_the_threshold_the_item_has_after_the_change() {
        // Judged against the new threshold: 12 -> 9 crosses a line raised to 10; 8 -> 7 does
        // not (8 was below it already); without a threshold, nothing is low.
        assert_eq!(stock_crossings(level(12, Some(5)), level(9, Some(10))), [StockLow]);
        assert!(stock_crossings(level(8, Some(5)), level(7, Some(10))).is_empty());
        assert!(stock_crossings(level(8, Some(5)), level(4, None)).is_empty(), "threshold removed");
    }

    #[test]
    fn replenished_only_when_back_from_zero() {
        assert_eq!(crossings(0, 1, None), [StockReplenished]);
        assert_eq!(crossings(0, 7, Some(5)), [StockReplenished]);
        assert!(crossings(1, 2, None).is_empty());
        assert!(crossings(0, 0, None).is_empty());
    }

    #[test]
    fn no_change_no_event() {
        for available in [0, 1, 5, 6] {
            assert!(crossings(available, available, Some(5)).is_empty(), "{available}");
        }
    }
}
