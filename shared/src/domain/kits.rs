//! Kits (docs/api.md, "Kits"): a sku made of other skus, with no stock of its own. A reservation
//! line on a kit holds, at its location, `quantity x component quantity` units of each component,
//! and keeps them as `components` (what it holds, whatever the kit becomes later). The stock a
//! reservation moves is its [`stock_lines`]: kit lines as their components, merged with the other
//! lines on the same stock items.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validate::{validate_sku, Line};
use crate::error::{Error, Result};

/// At most this many components per kit.
pub const MAX_COMPONENTS: usize = 10;
/// The most units of one component in one kit.
pub const MAX_COMPONENT_QUANTITY: i64 = 1_000;

/// A component of a kit (units per kit), or of a kit line (units held).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kit {
    pub sku: String,
    /// Sorted by sku.
    pub components: Vec<Component>,
    pub version: u64,
    #[serde(with = "crate::timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// A kit's components: 1-10, each a valid sku other than the kit's, distinct, quantity 1-1000.
/// Returned sorted by sku.
pub fn validate_kit(sku: &str, components: &[Component]) -> Result<Vec<Component>> {
    if components.is_empty() || components.len() > MAX_COMPONENTS {
        return Err(Error::invalid_field(
            "components",
            format!("components must have 1-{MAX_COMPONENTS} entries"),
        ));
    }
    for (i, component) in components.iter().enumerate() {
        let field = format!("components[{i}]");
        validate_sku(&component.sku)
            .map_err(|_| Error::invalid_field(&field, "sku must be 1-64 characters of [A-Za-z0-9._-]"))?;
        if !(1..=MAX_COMPONENT_QUANTITY).contains(&component.quantity) {
            return Err(Error::invalid_field(&field, format!("quantity must be 1-{MAX_COMPONENT_QUANTITY}")));
        }
        if component.sku == sku {
            return Err(Error::invalid_field(&field, "a kit cannot be a component of itself"));
        }
        if components[..i].iter().any(|c| c.sku == component.sku) {
            return Err(Error::invalid_field(&field, format!("{} is listed twice", component.sku)));
        }
    }
    let mut sorted = components.to_vec();
    sorted.sort();
    Ok(sorted)
}

/// What a PUT of a kit does, given the kit as read (`None`: absent) and the request's
/// `expected_version` (0: must not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KitWrite {
    /// Write this kit (created: version 1).
    Write { kit: Kit, created: bool },
    /// The same components: nothing to write.
    Unchanged(Kit),
}

/// `components` validated and sorted ([`validate_kit`]).
pub fn decide_kit_write(
    sku: &str,
    current: Option<&Kit>,
    components: Vec<Component>,
    expected_version: Option<u64>,
    now: DateTime<Utc>,
) -> Result<KitWrite> {
    let current_version = current.map_or(0, |k| k.version);
    if expected_version.is_some_and(|expected| expected != current_version) {
        return Err(Error::VersionConflict { current_version });
    }
    if let Some(current) = current.filter(|k| k.components == components) {
        return Ok(KitWrite::Unchanged(current.clone()));
    }
    let kit = Kit {
        sku: sku.to_owned(),
        components,
        version: current_version + 1,
        updated_at: crate::timestamp::truncate_to_millis(now),
    };
    Ok(KitWrite::Write { kit, created: current.is_none() })
}

impl Line {
    /// A line of `quantity` kits of `sku` at `location_id`, holding `quantity x` each of the
    /// kit's `components` (units per kit).
    pub fn kit(sku: String, location_id: String, quantity: i64, components: &[Component]) -> Line {
        let mut line = Line::new(sku, location_id, quantity);
        line.components = components
            .iter()
            .map(|c| Component { sku: c.sku.clone(), quantity: c.quantity * quantity })
            .collect();
        line
    }

    /// Whether it is a kit line (it holds its components, not units of its own sku).
    pub fn is_kit(&self) -> bool {
        !self.components.is_empty()
    }
}

/// The stock `lines` move: each kit line as its components at its location, merged with the
/// other lines on the same stock item (quantities summed); sorted by `(sku, locationId)`.
pub fn stock_lines(lines: &[Line]) -> Vec<Line> {
    if !lines.iter().any(Line::is_kit) {
        return lines.to_vec();
    }
    let mut units: BTreeMap<(String, String), i64> = BTreeMap::new();
    for line in lines {
        if line.is_kit() {
            for c in &line.components {
                *units.entry((c.sku.clone(), line.location_id.clone())).or_default() += c.quantity;
            }
        } else {
            *units.entry((line.sku.clone(), line.location_id.clone())).or_default() += line.quantity;
        }
    }
    units.into_iter().map(|((sku, location_id), quantity)| Line::new(sku, location_id, quantity)).collect()
}

/// How many whole kits of `components` (units per kit) `available(sku)` units make.
pub fn whole_kits(components: &[Component], available: impl Fn(&str) -> i64) -> i64 {
    components.iter().map(|c| available(&c.sku).max(0) / c.quantity).min().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sku: &str, quantity: i64) -> Component {
        Component { sku: sku.into(), quantity }
    }

    #[test]
    fn components_follow_the_contract() {
        assert_eq!(validate_kit("BOX", &[c("B", 1), c("A", 2)]).unwrap(), [c("A", 2), c("B", 1)]);
        let code = |components: &[Component]| validate_kit("BOX", components).unwrap_err().code();
        assert_eq!(code(&[]), "VALIDATION_ERROR");
        assert_eq!(code(&(0..11).map(|i| c(&format!("S{i}"), 1)).collect::<Vec<_>>()), "VALIDATION_ERROR");
        assert_eq!(code(&[c("A", 0)]), "VALIDATION_ERROR");
        assert_eq!(code(&[c("A", 1001)]), "VALIDATION_ERROR");
        assert_eq!(code(&[c("BOX", 1)]), "VALIDATION_ERROR");
        assert_eq!(code(&[c("A", 1), c("A", 2)]), "VALIDATION_ERROR");
        assert_eq!(code(&[c("A b", 1)]), "VALIDATION_ERROR");
        assert!(validate_kit("BOX", &[c("A", 1000)]).is_ok());
    }

    #[test]
    fn a_kit_is_written_when_new_or_changed_and_keyed_on_its_version() {
        let now = Utc::now();
        let KitWrite::Write { kit, created: true } =
            decide_kit_write("BOX", None, vec![c("A", 1)], None, now).unwrap()
        else {
            panic!("a new kit is written")
        };
        assert_eq!(kit.version, 1);
        let same = decide_kit_write("BOX", Some(&kit), vec![c("A", 1)], None, now).unwrap();
        assert_eq!(same, KitWrite::Unchanged(kit.clone()));
        let changed = decide_kit_write("BOX", Some(&kit), vec![c("A", 2)], Some(1), now).unwrap();
        assert!(matches!(changed, KitWrite::Write { kit: ref k, created: false } if k.version == 2));
        let stale = decide_kit_write("BOX", Some(&kit), vec![c("A", 2)], Some(0), now).unwrap_err();
        assert_eq!(stale.code(), "VERSION_CONFLICT");
    }

    #[test]
    fn stock_lines_merge_a_kit_with_its_parts_bought_alone() {
        let lines = [
            Line::kit("BOX".into(), "w1".into(), 2, &[c("A", 1), c("B", 3)]),
            Line::new("A".into(), "w1".into(), 4),
            Line::new("A".into(), "w2".into(), 1),
        ];
        assert_eq!(
            stock_lines(&lines),
            [
                Line::new("A".into(), "w1".into(), 6),
                Line::new("A".into(), "w2".into(), 1),
                Line::new("B".into(), "w1".into(), 6)
            ]
        );
        assert_eq!(whole_kits(&[c("A", 1), c("B", 3)], |sku| if sku == "A" { 10 } else { 8 }), 2);
        assert_eq!(whole_kits(&[c("A", 2)], |_| -1), 0);
    }
}
