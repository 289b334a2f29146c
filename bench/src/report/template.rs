//! Named-placeholder substitution for `report/benchmarks.md`; plain text, no template crate.
//!
//! The template is read line by line:
//! - `{{name}}` anywhere in a line is replaced by the value set for `name`, as it is (a value
//!   is never scanned again, so it may hold braces);
//! - a line that is only `{{name}}` whose value is empty is dropped, newline included (an
//!   empty table keeps its header and nothing else);
//! - a line that is only `{{#if flag}}` starts a block kept only when `flag` is set true, and
//!   a line that is only `{{/if}}` ends it; blocks nest. Placeholders in a dropped block need
//!   no value.
//!
//! A placeholder without a value, or a flag never set, is a bug in the renderer: `fill` panics
//! (the golden tests in `report/mod.rs` render every path). Single braces are plain text.

use std::collections::HashMap;

/// The values and flags a template is filled with.
#[derive(Default)]
pub struct Values {
    text: HashMap<&'static str, String>,
    flags: HashMap<&'static str, bool>,
}

impl Values {
    /// Sets the text of `{{name}}`.
    pub fn set(&mut self, name: &'static str, value: impl ToString) -> &mut Self {
        self.text.insert(name, value.to_string());
        self
    }

    /// Sets whether the lines between `{{#if name}}` and its `{{/if}}` are kept.
    pub fn flag(&mut self, name: &'static str, on: bool) -> &mut Self {
        self.flags.insert(name, on);
        self
    }

    fn text(&self, name: &str) -> &str {
        self.text.get(name).unwrap_or_else(|| panic!("no value for {{{{{name}}}}} in the report template"))
    }
}

/// Fills `template` with `values` (see the module docs for the rules).
pub fn fill(template: &str, values: &Values) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    // One entry per open block: whether it is kept.
    let mut blocks: Vec<bool> = Vec::new();
    let mut lines = template.split('\n').peekable();
    while let Some(line) = lines.next() {
        let newline = if lines.peek().is_some() { "\n" } else { "" };
        if let Some(flag) = line.strip_prefix("{{#if ").and_then(|r| r.strip_suffix("}}")) {
            // Inside a dropped block a nested block is dropped too, and its flag need not be set.
            let kept = !blocks.contains(&false)
                && *values.flags.get(flag).unwrap_or_else(|| panic!("no flag {flag} in the report template"));
            blocks.push(kept);
            continue;
        }
        if line == "{{/if}}" {
            blocks.pop().expect("an {{/if}} without its {{#if}} in the report template");
            continue;
        }
        if blocks.contains(&false) {
            continue;
        }
        if let Some(name) = line.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
            if values.text(name).is_empty() {
                continue;
            }
        }
        substitute(&mut out, line, values);
        out.push_str(newline);
    }
    assert!(blocks.is_empty(), "an {{{{#if}}}} without its {{{{/if}}}} in the report template");
    out
}

/// Appends `line` to `out` with each `{{name}}` replaced by its value.
fn substitute(out: &mut String, mut line: &str, values: &Values) {
    while let Some(start) = line.find("{{") {
        let end = line[start..].find("}}").map(|e| start + e).expect("an unclosed {{ in the report template");
        out.push_str(&line[..start]);
        out.push_str(values.text(&line[start + 2..end]));
        line = &line[end + 2..];
    }
    out.push_str(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_blocks_and_empty_lines() {
        let mut v = Values::default();
        v.set("a", "{x}").set("rows", "").flag("on", true).flag("off", false);
        let t = "a {{a}} {b}\n{{rows}}\n{{#if on}}\nkept\n{{#if off}}\n{{missing}}\n{{#if unset}}\n{{/if}}\n{{/if}}\n{{/if}}\nend\n";
        assert_eq!(fill(t, &v), "a {x} {b}\nkept\nend\n");
    }

    #[test]
    #[should_panic(expected = "no value for {{missing}}")]
    fn a_placeholder_without_a_value_panics() {
        fill("{{missing}}", &Values::default());
    }
}
