//! Allocation across locations (docs/api.md, "Lines that let the service pick the location"): a pure
//! planner that turns request lines naming a location, a list of allowed locations in order of
//! preference, or none (any location of the sku), into concrete `(sku, locationId, quantity)`
//! lines against the stock items as read. The store then reserves them with the usual conditional
//! transaction, and plans again from a fresh read if a condition fails.
//!
//! - Without a location, the allowed locations are taken in `locations` order, or, without a list,
//!   by most available units, ties by locationId.
//! - Without `split`, a line goes to the first allowed location that covers all of it; with
//!   `split`, it is filled from the allowed locations in that order.
//! - Lines naming a location are placed first; the others, in the order given (a `Cart`'s
//!   canonical order: by sku, placement and split), see what the lines before them took.
//! - A line that cannot be covered is a shortfall with `locationId: null` and `available` = the
//!   most one allowed location has (with `split`: their sum), after the lines before it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{json, Value};

use super::channels::Channel;
use super::kits::{stock_lines, whole_kits, Component};
use super::stock::StockItem;
use super::validate::{not_null, validate_location_id, validate_sku, Line, MAX_LINES, MAX_QUANTITY};
use crate::error::{Error, Shortfall};

/// The most allowed locations one line may list.
pub const MAX_LOCATIONS: usize = 20;
/// The most stock items a request's lines may resolve to: a confirm takes three actions per item
/// (the stock update, its ledger movement, the hold item) in one transaction of at most 100.
pub const MAX_RESOLVED_LINES: usize = 32;

/// A reservation line as a client sends it: `locationId` (that location), `locations` (allowed
/// ones, in order of preference) or neither (any location of the sku); `split` lets several
/// locations cover it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CartLine {
    pub sku: String,
    #[serde(default, deserialize_with = "not_null")]
    pub location_id: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub locations: Option<Vec<String>>,
    pub quantity: i64,
    #[serde(default, deserialize_with = "not_null")]
    pub split: Option<bool>,
}

/// Who chose where a cart's units are held ([`Cart::chosen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// Every line names its location: its shortfall is final once read on a snapshot.
    ByCaller,
    /// The service resolved the lines on a read: a shortfall found later means the stock moved
    /// since, and the lines are resolved again.
    ByService,
}

/// What an order asks to hold: its request lines validated, merged (same sku, placement and
/// `split`: quantities summed) and sorted, so two requests asking the same compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    lines: Vec<FlexibleLine>,
    /// The channel the cart is held through ([`Cart::through`]) and the units it leaves at each
    /// of its locations.
    channel: Option<(String, i64)>,
}

impl Cart {
    /// Validates and merges request lines: 1-25 lines after merging, quantity 1-100000 per line
    /// and per merged line, `locationId` or 1-20 distinct `locations` or neither.
    pub fn parse(lines: &[CartLine]) -> Result<Cart, Error> {
        if lines.is_empty() {
            return Err(Error::invalid_field("lines", "lines must not be empty"));
        }
        let mut merged: BTreeMap<(String, Placement, bool), i64> = BTreeMap::new();
        for line in lines {
            validate_sku(&line.sku)?;
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                return Err(Error::invalid_field("quantity", format!("quantity must be 1-{MAX_QUANTITY}")));
            }
            let placement = match (&line.location_id, &line.locations) {
                (Some(_), Some(_)) => {
                    return Err(Error::invalid_field(
                        "locations",
                        "a line names either locationId or locations, not both",
                    ))
                }
                (Some(location_id), None) => {
                    validate_location_id(location_id)?;
                    Placement::At(location_id.clone())
                }
                (None, Some(locations)) => {
                    if locations.is_empty() || locations.len() > MAX_LOCATIONS {
                        return Err(Error::invalid_field(
                            "locations",
                            format!("locations must list 1-{MAX_LOCATIONS} locationIds"),
                        ));
                    }
                    for location_id in locations {
                        validate_location_id(location_id)?;
                    }
                    if locations.iter().collect::<BTreeSet<_>>().len() != locations.len() {
                        return Err(Error::invalid_field(
                            "locations",
                            "locations must not repeat a locationId",
                        ));
                    }
                    Placement::Preferred(locations.clone())
                }
                (None, None) => Placement::Anywhere,
            };
            // One location cannot be split.
            let split = line.split.unwrap_or(false) && !matches!(placement, Placement::At(_));
            *merged.entry((line.sku.clone(), placement, split)).or_insert(0) += line.quantity;
        }
        if merged.len() > MAX_LINES {
            return Err(Error::invalid_field(
                "lines",
                format!("at most {MAX_LINES} distinct lines are allowed"),
            ));
        }
        let lines = merged
            .into_iter()
            .map(|((sku, placement, split), quantity)| {
                if quantity > MAX_QUANTITY {
                    let at = match &placement {
                        Placement::At(location_id) => format!("{sku}/{location_id}"),
                        _ => sku.clone(),
                    };
                    return Err(Error::invalid_field(
                        "quantity",
                        format!("merged quantity for {at} exceeds {MAX_QUANTITY}"),
                    ));
                }
                Ok(FlexibleLine { sku, placement, quantity, split, components: Vec::new() })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Cart { lines, channel: None })
    }

    /// The cart with the lines on the kits of `kits` (kit sku -> components per kit) made kit
    /// lines, and every other line a line of its own sku.
    pub fn with_kits(&self, kits: &BTreeMap<String, Vec<Component>>) -> Cart {
        let mut cart = self.clone();
        for line in &mut cart.lines {
            line.components = kits.get(&line.sku).cloned().unwrap_or_default();
        }
        cart
    }

    /// Whether a line is on a kit ([`Cart::with_kits`]).
    pub fn has_kits(&self) -> bool {
        self.lines.iter().any(|l| !l.components.is_empty())
    }

    /// The skus of the stock items the lines may hold: each line's own, or a kit line's
    /// components'.
    pub fn stock_skus(&self) -> BTreeSet<&str> {
        self.lines
            .iter()
            .flat_map(|l| match l.components.as_slice() {
                [] => vec![l.sku.as_str()],
                components => components.iter().map(|c| c.sku.as_str()).collect(),
            })
            .collect()
    }

    /// The cart held through `channel`: a line naming a location (or listing one) outside the
    /// channel is 400; a line naming none may go to the channel's locations, in the channel's
    /// order; every location keeps the channel's safety stock (the store puts it in each write's
    /// condition, and counts it off what the resolution reads).
    pub fn through(self, channel: &Channel) -> Result<Cart, Error> {
        let outside = |location_id: &String| !channel.locations.contains(location_id);
        let lines = self
            .lines
            .into_iter()
            .map(|mut line| {
                let named: Vec<&String> = match &line.placement {
                    Placement::At(location_id) => vec![location_id],
                    Placement::Preferred(locations) => locations.iter().collect(),
                    Placement::Anywhere => vec![],
                };
                if let Some(location_id) = named.into_iter().find(|l| outside(l)) {
                    return Err(Error::invalid_field(
                        "lines",
                        format!("{location_id} is not a location of channel {}", channel.channel_id),
                    ));
                }
                if line.placement == Placement::Anywhere {
                    line.placement = Placement::Preferred(channel.locations.clone());
                }
                Ok(line)
            })
            .collect::<Result<_, Error>>()?;
        Ok(Cart { lines, channel: Some((channel.channel_id.clone(), channel.safety_stock)) })
    }

    /// The channel it is held through, if any.
    pub fn channel_id(&self) -> Option<&str> {
        self.channel.as_ref().map(|(id, _)| id.as_str())
    }

    /// The units every write must leave at a location (the channel's safety stock; 0 without).
    pub fn safety_stock(&self) -> i64 {
        self.channel.as_ref().map_or(0, |(_, safety)| *safety)
    }

    pub fn lines(&self) -> &[FlexibleLine] {
        &self.lines
    }

    /// When every line names its location: the lines to hold, as they are (no read needed).
    pub fn fixed(&self) -> Option<Vec<Line>> {
        self.lines
            .iter()
            .map(|l| match &l.placement {
                Placement::At(location_id) => {
                    Some(Line::kit(l.sku.clone(), location_id.clone(), l.quantity, &l.components))
                }
                _ => None,
            })
            .collect()
    }

    /// Who chose the locations of the lines: the caller (every line names its location) or the
    /// service (resolved on a read of the stock).
    pub fn chosen(&self) -> Chosen {
        if self.lines.iter().all(|l| matches!(l.placement, Placement::At(_))) {
            Chosen::ByCaller
        } else {
            Chosen::ByService
        }
    }

    /// The skus the lines name.
    pub fn skus(&self) -> BTreeSet<&str> {
        self.lines.iter().map(|l| l.sku.as_str()).collect()
    }

    /// The cart in one canonical text: equal for two requests asking the same, whatever their
    /// line order or how they split quantities over lines.
    pub fn key(&self) -> String {
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                let mut line = json!({"sku": l.sku, "quantity": l.quantity});
                match &l.placement {
                    Placement::At(location_id) => line["locationId"] = json!(location_id),
                    Placement::Preferred(locations) => line["locations"] = json!(locations),
                    Placement::Anywhere => {}
                }
                if l.split {
                    line["split"] = json!(true);
                }
                line
            })
            .collect();
        match &self.channel {
            // Through a channel: another request than the same lines without it.
            Some((channel_id, _)) => json!({"channelId": channel_id, "lines": lines}).to_string(),
            None => Value::Array(lines).to_string(),
        }
    }

    /// The concrete lines for `stock` (every stock item of the cart's skus, as read, each as the
    /// cart's channel can sell it: `domain::sellable`), counting the units of `held` (the hold
    /// being changed) as available where they are. 404 when a line's
    /// location, or for a line without one its sku, has no stock item; 409 INSUFFICIENT_STOCK
    /// with the planner's shortfalls; 400 when the lines resolve to too many stock items.
    pub fn resolve(&self, stock: &[StockItem], held: &[Line]) -> Result<Vec<Line>, Error> {
        // A kit has no stock items: where its components are short, it is short.
        for line in self.lines.iter().filter(|l| l.components.is_empty()) {
            match &line.placement {
                Placement::At(location_id)
                    if !stock.iter().any(|s| s.sku == line.sku && s.location_id == *location_id) =>
                {
                    return Err(Error::NotFound {
                        what: "stock item",
                        id: format!("{}/{location_id}", line.sku),
                    })
                }
                _ if !stock.iter().any(|s| s.sku == line.sku) => {
                    return Err(Error::NotFound { what: "sku", id: line.sku.clone() })
                }
                _ => {}
            }
        }
        let with_held: Vec<StockItem> = stock
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.available += held
                    .iter()
                    .filter(|h| h.sku == s.sku && h.location_id == s.location_id)
                    .map(|h| h.quantity)
                    .sum::<i64>();
                s
            })
            .collect();
        let lines = allocate(&self.lines, &with_held).map_err(|lines| Error::InsufficientStock { lines })?;
        check_resolved(lines)
    }
}

/// Lines that hold units on at most [`MAX_RESOLVED_LINES`] stock items (a kit line's components
/// counted), else 400.
pub fn check_resolved(lines: Vec<Line>) -> Result<Vec<Line>, Error> {
    if stock_lines(&lines).len() > MAX_RESOLVED_LINES {
        return Err(Error::invalid_field(
            "lines",
            format!("the lines resolve to more than {MAX_RESOLVED_LINES} stock items"),
        ));
    }
    Ok(lines)
}

impl From<Vec<Line>> for Cart {
    /// Lines that each name their location, already merged (`merge_lines`).
    fn from(lines: Vec<Line>) -> Self {
        let lines = lines
            .into_iter()
            .map(|l| FlexibleLine {
                // A kit line's components per kit.
                components: l
                    .components
                    .iter()
                    .map(|c| Component { sku: c.sku.clone(), quantity: c.quantity / l.quantity.max(1) })
                    .collect(),
                sku: l.sku,
                placement: Placement::At(l.location_id),
                quantity: l.quantity,
                split: false,
            })
            .collect();
        Cart { lines, channel: None }
    }
}

/// Where a request line may be held.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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
    /// On a kit: its components, per kit (empty for a line of a sku with stock of its own).
    pub components: Vec<Component>,
}

/// Units available per `(sku, locationId)`, as the planner hands them out.
struct Available(BTreeMap<(String, String), i64>);

impl Available {
    fn of(&self, sku: &str, location_id: &str) -> i64 {
        self.0.get(&(sku.to_owned(), location_id.to_owned())).copied().unwrap_or(0).max(0)
    }

    /// How many of `line` (units, or whole kits) `location_id` can cover.
    fn for_line(&self, line: &FlexibleLine, location_id: &str) -> i64 {
        match line.components.as_slice() {
            [] => self.of(&line.sku, location_id),
            components => whole_kits(components, |sku| self.of(sku, location_id)),
        }
    }

    /// `quantity` of `line` taken at `location_id` (a kit's: its components').
    fn take(&mut self, line: &FlexibleLine, location_id: &str, quantity: i64) {
        let mut take = |sku: &str, units: i64| {
            *self.0.entry((sku.to_owned(), location_id.to_owned())).or_insert(0) -= units;
        };
        match line.components.as_slice() {
            [] => take(&line.sku, quantity),
            components => components.iter().for_each(|c| take(&c.sku, c.quantity * quantity)),
        }
    }

    /// Whether `line`'s stock items exist at `location_id` (a kit's: every component's).
    fn has(&self, line: &FlexibleLine, location_id: &str) -> bool {
        let has = |sku: &str| self.0.contains_key(&(sku.to_owned(), location_id.to_owned()));
        match line.components.as_slice() {
            [] => has(&line.sku),
            components => components.iter().all(|c| has(&c.sku)),
        }
    }

    /// The allowed locations of a flexible line, in the order they are tried.
    fn candidates(&self, line: &FlexibleLine) -> Vec<String> {
        match &line.placement {
            Placement::At(location_id) => vec![location_id.clone()],
            Placement::Preferred(locations) => locations.clone(),
            Placement::Anywhere => {
                let first = line.components.first().map_or(line.sku.as_str(), |c| c.sku.as_str());
                let mut all: Vec<(i64, String)> = self
                    .0
                    .keys()
                    .filter(|(s, location_id)| s == first && self.has(line, location_id))
                    .map(|(_, location_id)| (self.for_line(line, location_id), location_id.clone()))
                    .collect();
                // Most available first, ties by locationId.
                all.sort_by(|(a, la), (b, lb)| b.cmp(a).then_with(|| la.cmp(lb)));
                all.into_iter().map(|(_, location_id)| location_id).collect()
            }
        }
    }
}

/// Resolves `lines` against `stock` (every stock item of the skus named, and of the components of
/// the kits named, as read): the concrete lines, merged by `(sku, locationId)` and sorted, or
/// every line that cannot be covered. A kit line is covered in whole kits per location, and sees
/// (as every line does) what the lines before it took of the same stock items.
pub fn allocate(lines: &[FlexibleLine], stock: &[StockItem]) -> Result<Vec<Line>, Vec<Shortfall>> {
    let mut available =
        Available(stock.iter().map(|s| ((s.sku.clone(), s.location_id.clone()), s.available)).collect());
    let mut placed: BTreeMap<(String, String), (i64, &[Component])> = BTreeMap::new();
    let mut shortfalls = Vec::new();
    let fixed = lines.iter().filter(|l| matches!(l.placement, Placement::At(_)));
    let flexible = lines.iter().filter(|l| !matches!(l.placement, Placement::At(_)));
    for line in fixed.chain(flexible) {
        let candidates = available.candidates(line);
        let takes = if line.split {
            fill_in_order(&available, line, &candidates)
        } else {
            candidates
                .iter()
                .find(|l| available.for_line(line, l) >= line.quantity)
                .map(|l| vec![(l.clone(), line.quantity)])
        };
        match takes {
            Some(takes) => {
                for (location_id, quantity) in takes {
                    available.take(line, &location_id, quantity);
                    let entry =
                        placed.entry((line.sku.clone(), location_id)).or_insert((0, &line.components));
                    entry.0 += quantity;
                }
            }
            None => {
                let each = candidates.iter().map(|l| available.for_line(line, l));
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
    Ok(placed
        .into_iter()
        .map(|((sku, location_id), (quantity, components))| Line::kit(sku, location_id, quantity, components))
        .collect())
}

/// All of `line` taken from `candidates` in order (a kit's in whole kits per location), or
/// `None` if they do not have it all.
fn fill_in_order(
    available: &Available,
    line: &FlexibleLine,
    candidates: &[String],
) -> Option<Vec<(String, i64)>> {
    let mut left = line.quantity;
    let mut takes = Vec::new();
    for location_id in candidates {
        let take = available.for_line(line, location_id).min(left);
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
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;

    /// An unsharded item of `sku` at `location_id` with `available` units (and one reserved).
    pub(crate) fn item(sku: &str, location_id: &str, available: i64) -> StockItem {
        StockItem {
            sku: sku.into(),
            location_id: location_id.into(),
            on_hand: available + 1,
            reserved: 1,
            available,
            version: 1,
            updated_at: Utc::now(),
            low_stock_threshold: None,
            shards: 1,
        }
    }

    fn line(sku: &str, placement: Placement, quantity: i64, split: bool) -> FlexibleLine {
        FlexibleLine { sku: sku.into(), placement, quantity, split, components: vec![] }
    }

    /// A line of `quantity` kits of BOX = 2 A + 1 B.
    fn box_line(placement: Placement, quantity: i64, split: bool) -> FlexibleLine {
        let components =
            vec![Component { sku: "A".into(), quantity: 2 }, Component { sku: "B".into(), quantity: 1 }];
        FlexibleLine { components, ..line("BOX", placement, quantity, split) }
    }

    #[test]
    fn a_kit_and_a_part_bought_alone_are_checked_against_their_sum() {
        let stock = [item("A", "w1", 5), item("B", "w1", 9)];
        let at = || Placement::At("w1".into());
        // 2 boxes (4 A) and 1 A: 5 A, all there is.
        let plan = allocate(&[line("A", at(), 1, false), box_line(at(), 2, false)], &stock).unwrap();
        assert_eq!(stock_lines(&plan), resolved(&[("A", "w1", 5), ("B", "w1", 2)]));
        let kit = plan.iter().find(|l| l.sku == "BOX").unwrap();
        assert_eq!((kit.quantity, kit.components.len(), kit.components[0].quantity), (2, 2, 4));
        // 2 more A: each line alone fits, together they do not. The box sees what A took.
        let refused = allocate(&[line("A", at(), 3, false), box_line(at(), 2, false)], &stock).unwrap_err();
        assert_eq!(refused, [short("BOX", Some("w1"), 2, 1)]);
    }

    #[test]
    fn a_kit_goes_where_whole_kits_are_and_splits_in_whole_kits() {
        // w1 makes 1 box (A is short), w2 makes 2 (B is short), w3 has no B at all.
        let stock = [
            item("A", "w1", 3),
            item("B", "w1", 9),
            item("A", "w2", 8),
            item("B", "w2", 2),
            item("A", "w3", 50),
        ];
        let plan = allocate(&[box_line(Placement::Anywhere, 2, false)], &stock).unwrap();
        assert_eq!(stock_lines(&plan), resolved(&[("A", "w2", 4), ("B", "w2", 2)]));
        let refused = allocate(&[box_line(Placement::Anywhere, 3, false)], &stock).unwrap_err();
        assert_eq!(refused, [short("BOX", None, 3, 2)]);
        let plan = allocate(&[box_line(preferred(&["w1", "w2"]), 3, true)], &stock).unwrap();
        assert_eq!(
            stock_lines(&plan),
            resolved(&[("A", "w1", 2), ("A", "w2", 4), ("B", "w1", 1), ("B", "w2", 2)])
        );
        assert_eq!(
            plan.iter().map(|l| (l.location_id.as_str(), l.quantity)).collect::<Vec<_>>(),
            [("w1", 1), ("w2", 2)]
        );
    }

    fn preferred(locations: &[&str]) -> Placement {
        Placement::Preferred(locations.iter().map(|l| (*l).to_owned()).collect())
    }

    fn resolved(spec: &[(&str, &str, i64)]) -> Vec<Line> {
        spec.iter().map(|(s, l, q)| Line::new((*s).into(), (*l).into(), *q)).collect()
    }

    fn short(sku: &str, location_id: Option<&str>, requested: i64, available: i64) -> Shortfall {
        Shortfall { sku: sku.into(), location_id: location_id.map(str::to_owned), requested, available }
    }

    #[test]
    fn a_preference_list_is_tried_in_order_for_a_location_that_covers_the_whole_line() {
        let stock = [item("A", "w1", 2), item("A", "w2", 5), item("A", "w3", 9)];
        let plan = allocate(&[line("A", preferred(&["w1", "w2", "w3"]), 3, false)], &stock);
        assert_eq!(plan.unwrap(), resolved(&[("A", "w2", 3)]), "w1 cannot cover 3, w2 can");
    }

    #[test]
    fn without_a_list_the_location_with_most_available_wins_ties_by_location_id() {
        let stock = [item("A", "w3", 4), item("A", "w1", 7), item("A", "w2", 7)];
        let plan = allocate(&[line("A", Placement::Anywhere, 1, false)], &stock);
        assert_eq!(plan.unwrap(), resolved(&[("A", "w1", 1)]));
    }

    #[test]
    fn split_fills_from_the_allowed_locations_in_order() {
        let stock = [item("A", "w1", 2), item("A", "w2", 5), item("A", "w3", 9)];
        let plan = allocate(&[line("A", preferred(&["w2", "w1", "w3"]), 8, true)], &stock);
        assert_eq!(plan.unwrap(), resolved(&[("A", "w1", 2), ("A", "w2", 5), ("A", "w3", 1)]));
        let anywhere = allocate(&[line("A", Placement::Anywhere, 12, true)], &stock);
        assert_eq!(anywhere.unwrap(), resolved(&[("A", "w2", 3), ("A", "w3", 9)]));
    }

    #[test]
    fn shortfalls_report_the_best_single_location_or_with_split_the_sum() {
        let stock = [item("A", "w1", 2), item("A", "w2", 5)];
        let whole = allocate(&[line("A", preferred(&["w1", "w2"]), 6, false)], &stock);
        assert_eq!(whole.unwrap_err(), [short("A", None, 6, 5)]);
        let split = allocate(&[line("A", preferred(&["w1", "w2"]), 8, true)], &stock);
        assert_eq!(split.unwrap_err(), [short("A", None, 8, 7)]);
        // A listed location with no stock item has nothing; so does a sku with none anywhere.
        let unknown = allocate(&[line("A", preferred(&["w9"]), 1, false)], &stock);
        assert_eq!(unknown.unwrap_err(), [short("A", None, 1, 0)]);
        let none = allocate(&[line("B", Placement::Anywhere, 1, true)], &stock);
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
        let plan = allocate(&lines, &stock);
        assert_eq!(plan.unwrap_err(), [short("A", None, 4, 3)]);
        let fits = [
            line("A", Placement::At("w1".into()), 2, false),
            line("A", Placement::Anywhere, 3, false),
            line("A", Placement::Anywhere, 3, false),
        ];
        assert_eq!(allocate(&fits, &stock).unwrap(), resolved(&[("A", "w1", 5), ("A", "w2", 3)]));
    }

    #[test]
    fn a_fixed_line_that_cannot_be_met_names_its_location() {
        let stock = [item("A", "w1", 1)];
        let plan = allocate(&[line("A", Placement::At("w1".into()), 2, false)], &stock);
        assert_eq!(plan.unwrap_err(), [short("A", Some("w1"), 2, 1)]);
    }

    fn cart_line(
        sku: &str,
        location_id: Option<&str>,
        locations: Option<&[&str]>,
        q: i64,
        split: Option<bool>,
    ) -> CartLine {
        CartLine {
            sku: sku.into(),
            location_id: location_id.map(str::to_owned),
            locations: locations.map(|ls| ls.iter().map(|l| (*l).to_owned()).collect()),
            quantity: q,
            split,
        }
    }

    #[test]
    fn carts_merge_lines_of_the_same_sku_placement_and_split_and_compare_by_content() {
        let a = Cart::parse(&[
            cart_line("A", None, Some(&["w2", "w1"]), 2, None),
            cart_line("B", Some("w1"), None, 1, Some(true)),
            cart_line("A", None, Some(&["w2", "w1"]), 3, Some(false)),
            cart_line("A", None, None, 1, Some(true)),
        ])
        .unwrap();
        assert_eq!(a.lines().len(), 3, "{a:?}");
        assert!(a.lines().iter().any(|l| l.placement == preferred(&["w2", "w1"]) && l.quantity == 5));
        assert!(a.lines().iter().any(|l| l.placement == Placement::At("w1".into()) && !l.split));
        let b = Cart::parse(&[
            cart_line("A", None, None, 1, Some(true)),
            cart_line("A", None, Some(&["w2", "w1"]), 5, None),
            cart_line("B", Some("w1"), None, 1, None),
        ])
        .unwrap();
        assert_eq!((a.key(), &a), (b.key(), &b));
        assert!(a.fixed().is_none());
        // Another preference order is another request.
        let c = Cart::parse(&[
            cart_line("A", None, None, 1, Some(true)),
            cart_line("A", None, Some(&["w1", "w2"]), 5, None),
            cart_line("B", Some("w1"), None, 1, None),
        ])
        .unwrap();
        assert_ne!(a.key(), c.key());
        let fixed = Cart::parse(&[cart_line("B", Some("w1"), None, 1, None)]).unwrap();
        assert_eq!(fixed.fixed().unwrap(), resolved(&[("B", "w1", 1)]));
        assert_eq!(Cart::from(resolved(&[("B", "w1", 1)])), fixed);
    }

    #[test]
    fn carts_refuse_what_the_contract_refuses() {
        let bad = |lines: &[CartLine]| Cart::parse(lines).unwrap_err().code();
        assert_eq!(bad(&[]), "VALIDATION_ERROR");
        assert_eq!(bad(&[cart_line("A", Some("w1"), Some(&["w1"]), 1, None)]), "VALIDATION_ERROR");
        assert_eq!(bad(&[cart_line("A", None, Some(&[]), 1, None)]), "VALIDATION_ERROR");
        assert_eq!(bad(&[cart_line("A", None, Some(&["w1", "w1"]), 1, None)]), "VALIDATION_ERROR");
        assert_eq!(bad(&[cart_line("A", None, Some(&["w/1"]), 1, None)]), "VALIDATION_ERROR");
        let many: Vec<String> = (0..21).map(|i| format!("w{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(bad(&[cart_line("A", None, Some(&many), 1, None)]), "VALIDATION_ERROR");
        assert!(Cart::parse(&[cart_line("A", None, Some(&many[..20]), 1, None)]).is_ok());
        assert_eq!(bad(&[cart_line("A", None, None, 0, None)]), "VALIDATION_ERROR");
        let over = [cart_line("A", None, None, MAX_QUANTITY, None), cart_line("A", None, None, 1, None)];
        assert_eq!(bad(&over), "VALIDATION_ERROR");
        let lines: Vec<CartLine> =
            (0..26).map(|i| cart_line(&format!("S{i}"), None, None, 1, None)).collect();
        assert_eq!(bad(&lines), "VALIDATION_ERROR");
    }

    #[test]
    fn a_plan_counts_the_changed_hold_as_available_and_names_what_does_not_exist() {
        let stock = [item("A", "w1", 0), item("A", "w2", 1)];
        let cart = Cart::parse(&[cart_line("A", None, Some(&["w1", "w2"]), 3, None)]).unwrap();
        assert_eq!(cart.resolve(&stock, &[]).unwrap_err().code(), "INSUFFICIENT_STOCK");
        let held = resolved(&[("A", "w1", 3)]);
        assert_eq!(cart.resolve(&stock, &held).unwrap(), held, "the hold keeps its own units");
        let unknown = Cart::parse(&[cart_line("B", None, None, 1, None)]).unwrap();
        assert_eq!(unknown.resolve(&stock, &[]).unwrap_err().code(), "NOT_FOUND");
        let missing = Cart::parse(&[cart_line("A", Some("w9"), None, 1, None)]).unwrap();
        assert_eq!(missing.resolve(&stock, &[]).unwrap_err().code(), "NOT_FOUND");
    }

    #[test]
    fn a_plan_may_resolve_to_at_most_32_stock_items() {
        let stock: Vec<StockItem> =
            (0..33).map(|i| item(&format!("S{}", i / 20), &format!("w{}", i % 20), 1)).collect();
        let lines: Vec<CartLine> =
            [("S0", 20), ("S1", 13)].iter().map(|(s, q)| cart_line(s, None, None, *q, Some(true))).collect();
        let cart = Cart::parse(&lines).unwrap();
        assert_eq!(cart.resolve(&stock, &[]).unwrap_err().code(), "VALIDATION_ERROR");
        let fits = Cart::parse(&[
            cart_line("S0", None, None, 20, Some(true)),
            cart_line("S1", None, None, 12, Some(true)),
        ])
        .unwrap();
        assert_eq!(fits.resolve(&stock, &[]).unwrap().len(), 32);
    }
}
