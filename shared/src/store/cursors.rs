//! The cursors of the paged lists, as a page's `nextCursor` gives them and as a request sends
//! them back: each turns into the sort key its page starts after, and back. A cursor the list did
//! not give is a 400 naming `cursor`.
//!
//! - an item's ledger: the last entry's ledger position (`items::LEDGER_SEQ`), and `s{shard}`
//!   after it for a shard > 0;
//! - an item's holds, an order's reservations: the sort key after the list's prefix
//!   (`{createdAt}#{id}`), in hex so that it goes into a URL as it is; `top` for an order's
//!   second page when the first held only its latest reservation;
//! - a location's stock: the last sku.

use crate::domain::{timestamp, validate_sku, MAX_SHARDS};
use crate::error::Error;

fn not_ours() -> Error {
    Error::invalid_field("cursor", "cursor is not one this list gave")
}

/// The ledger's cursors; `prefix` is the item's movements prefix.
pub(crate) struct MovementsCursor<'a> {
    pub prefix: &'a str,
}

impl MovementsCursor<'_> {
    /// The sort key a page after `cursor` starts after.
    pub fn after(&self, cursor: &str) -> Result<String, Error> {
        let (version, shard) = cursor.split_once('s').map_or((cursor, None), |(v, k)| (v, Some(k)));
        let version = version.parse::<u64>().ok().filter(|_| !version.starts_with('+'));
        let shard = shard.map(|k| k.parse::<u32>().ok().filter(|k| (1..=MAX_SHARDS).contains(k)));
        match (version, shard) {
            (Some(v), None) => Ok(format!("{}{v:012}", self.prefix)),
            (Some(v), Some(Some(k))) => Ok(format!("{}{v:012}#{k:02}", self.prefix)),
            _ => Err(not_ours()),
        }
    }

    /// The cursor of a page that ended at the sort key `sk`.
    pub fn of(&self, sk: &str) -> Option<String> {
        let rest = sk.strip_prefix(self.prefix)?;
        let (version, shard) = rest.split_once('#').map_or((rest, None), |(v, k)| (v, Some(k)));
        let version = version.parse::<u64>().ok()?;
        Some(match shard.and_then(|k| k.parse::<u32>().ok()) {
            Some(k) => format!("{version}s{k}"),
            None => version.to_string(),
        })
    }
}

/// Cursors of lists sorted by `{prefix}{createdAt}#{id}`: an item's holds (its holds prefix), an
/// order's reservations (`RES#`).
pub(crate) struct CreatedCursor<'a> {
    pub prefix: &'a str,
}

impl CreatedCursor<'_> {
    pub fn after(&self, cursor: &str) -> Result<String, Error> {
        let key = from_hex(cursor).ok_or_else(not_ours)?;
        let (created_at, id) = key.split_once('#').ok_or_else(not_ours)?;
        if timestamp::parse(created_at).is_none() || uuid::Uuid::try_parse(id).is_err() {
            return Err(not_ours());
        }
        Ok(format!("{}{key}", self.prefix))
    }

    pub fn of(&self, sk: &str) -> Option<String> {
        sk.strip_prefix(self.prefix).map(to_hex)
    }
}

/// A location's stock: the cursor is the last sku of the page.
pub(crate) struct LocationCursor;

impl LocationCursor {
    /// The sku a page after `cursor` starts after.
    pub fn after(cursor: &str) -> Result<&str, Error> {
        validate_sku(cursor).map_err(|_| not_ours())?;
        Ok(cursor)
    }
}

fn to_hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_cursors_round_trip_and_refuse_what_is_not_hex() {
        let sk = "2026-11-25T09:00:00.000Z#6f1c2d9e-1111-4a2b-8c3d-123456789abc";
        assert_eq!(from_hex(&to_hex(sk)).as_deref(), Some(sk));
        assert!(to_hex(sk).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        let holds = CreatedCursor { prefix: "HOLD#w1#" };
        let cursor = holds.of(&format!("HOLD#w1#{sk}")).unwrap();
        assert_eq!(holds.after(&cursor).unwrap(), format!("HOLD#w1#{sk}"));
        assert_eq!(holds.after(&to_hex("not#a-key")).unwrap_err().code(), "VALIDATION_ERROR");
    }

    #[test]
    fn ledger_cursors_name_a_version_and_a_shard_past_the_first() {
        let ledger = MovementsCursor { prefix: "MOVE#w1#" };
        assert_eq!(ledger.of("MOVE#w1#000000000042").as_deref(), Some("42"));
        assert_eq!(ledger.of("MOVE#w1#000000000042#03").as_deref(), Some("42s3"));
        assert_eq!(ledger.after("42").unwrap(), "MOVE#w1#000000000042");
        assert_eq!(ledger.after("42s3").unwrap(), "MOVE#w1#000000000042#03");
        for bad in ["+42", "42s0", "42s99", "x", "42s"] {
            assert!(ledger.after(bad).is_err(), "{bad}");
        }
    }
}
