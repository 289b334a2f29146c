//! The IAM gate's evaluator: pure functions of a policy's statements and one call, as IAM
//! evaluates them (explicit Deny first, then Allow; wildcards; conditions; a resource's own
//! policy beside the caller's).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

/// One statement of a function's policy (or of a resource's: then `principals` names whom it
/// binds): its actions and resources as the template writes them (`written`, for reports) and
/// resolved to local ARNs (`resources`, what calls are matched to), and its conditions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub written_resources: Vec<String>,
    /// All must hold for the statement to apply.
    pub conditions: Vec<Condition>,
    /// A resource policy's `Principal` (`*`, role ARNs, service names); empty in a role's policy.
    pub principals: Vec<String>,
}

/// A condition operator the gate evaluates (`infra/topology.py` refuses any other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
}

impl std::str::FromStr for Operator {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            "ArnEquals" => Operator::ArnEquals,
            "ArnNotEquals" => Operator::ArnNotEquals,
            "ArnLike" => Operator::ArnLike,
            "ArnNotLike" => Operator::ArnNotLike,
            other => {
                return Err(format!("a condition operator {other:?}, which the IAM gate does not evaluate"))
            }
        })
    }
}

/// One key of a statement's `Condition`: `operator: { key: [values] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: Operator,
    pub key: String,
    pub values: Vec<String>,
}

impl Condition {
    /// As IAM evaluates it on a request's context: a positive operator holds if the key is there
    /// and matches one of the values; a negated one if it matches none (a key the request lacks
    /// matches nothing, so a negated operator holds then). Keys ignore case; values do not.
    pub fn holds(&self, context: &BTreeMap<String, String>) -> bool {
        let value = context.iter().find(|(k, _)| k.eq_ignore_ascii_case(&self.key)).map(|(_, v)| v);
        let matches = |pattern: &String, value: &String| match self.operator {
            Operator::StringEquals | Operator::StringNotEquals => pattern == value,
            Operator::StringLike | Operator::StringNotLike => wildcard_match(pattern, value, Case::Sensitive),
            _ => resource_match(pattern, value),
        };
        let any = value.is_some_and(|v| self.values.iter().any(|p| matches(p, v)));
        match self.operator {
            Operator::StringNotEquals
            | Operator::StringNotLike
            | Operator::ArnNotEquals
            | Operator::ArnNotLike => !any,
            _ => any,
        }
    }
}

/// A resource's own policy (the event bus's): the gate applies it to every call on `resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePolicy {
    pub resource: String,
    pub statements: Vec<Statement>,
}

/// What a function's policy says of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by these (statement, action, resource) grants (indexes into the policy).
    Allow(Vec<(usize, usize, usize)>),
    /// Denied by this statement's explicit Deny.
    ExplicitDeny(usize),
    /// Denied by an explicit Deny of the resource's own policy (its statement's index).
    ResourceDeny(usize),
    /// Allowed by the resource's own policy (its statement's index), though no statement of the
    /// caller's does: within one account, either policy's Allow grants.
    ResourceAllow(usize),
    /// No statement allows it.
    NotAllowed,
}

/// One call in IAM terms: an action on a resource, with the request's condition keys
/// (`events:source`, `aws:PrincipalArn`...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, String>,
}

impl Call {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Call { action: action.into(), resource: resource.into(), context: BTreeMap::new() }
    }

    /// The same call with condition key `key` set to `value`.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context.insert(key.to_owned(), value.into());
        self
    }
}

/// Whether letters' case counts in a match (IAM's actions: no; resources: yes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Sensitive,
    Insensitive,
}

/// `*` any run of characters, `?` any one (actions: `dynamodb:Get*`).
pub fn wildcard_match(pattern: &str, text: &str, case: Case) -> bool {
    let ignore_case = case == Case::Insensitive;
    glob(pattern.as_bytes(), 0, text.as_bytes(), 0, Glob { segments: false, ignore_case })
}

/// A resource ARN against a pattern, as IAM matches them: case-sensitive, `*` and `?` within an
/// ARN segment (between colons), except that a `*` ending a segment may run past its colons.
pub fn resource_match(pattern: &str, arn: &str) -> bool {
    glob(pattern.as_bytes(), 0, arn.as_bytes(), 0, Glob { segments: true, ignore_case: false })
}

#[derive(Clone, Copy)]
struct Glob {
    /// `?` never matches a `:`, and a `*` does only when it ends its segment (the pattern's next
    /// character is a `:`, or there is none).
    segments: bool,
    ignore_case: bool,
}

/// Wildcard matching by backtracking, on bytes (wildcards are ASCII; so are IAM actions and the
/// ARNs here).
fn glob(p: &[u8], pi: usize, t: &[u8], ti: usize, how: Glob) -> bool {
    if pi == p.len() {
        return ti == t.len();
    }
    let same = |a: u8, b: u8| if how.ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
    match p[pi] {
        b'*' => {
            let crosses = !how.segments || p.get(pi + 1).is_none_or(|next| *next == b':');
            let mut end = ti;
            loop {
                if glob(p, pi + 1, t, end, how) {
                    return true;
                }
                if end == t.len() || (t[end] == b':' && !crosses) {
                    return false;
                }
                end += 1;
            }
        }
        b'?' => ti < t.len() && !(how.segments && t[ti] == b':') && glob(p, pi + 1, t, ti + 1, how),
        c => ti < t.len() && same(t[ti], c) && glob(p, pi + 1, t, ti + 1, how),
    }
}

/// Whether a resource policy's statement names the caller (`aws:PrincipalArn` of the call).
fn binds(statement: &Statement, call: &Call) -> bool {
    let caller = call.context.get(PRINCIPAL_ARN);
    statement.principals.iter().any(|p| p == "*" || Some(p) == caller)
}

/// The condition key of the caller's principal (a role's ARN for a function's calls).
pub const PRINCIPAL_ARN: &str = "aws:PrincipalArn";

/// IAM's evaluation of a call within one account: an explicit Deny in the caller's policy or in
/// the resource's wins; then an Allow in either grants; else the call is not allowed.
pub fn evaluate_with(identity: &[Statement], resource: &[Statement], call: &Call) -> Decision {
    let own = evaluate(identity, call);
    if matches!(own, Decision::ExplicitDeny(_)) {
        return own;
    }
    let applies = |s: &Statement| binds(s, call) && applies_to(s, call).is_some();
    if let Some(s) = resource.iter().position(|s| s.effect == Effect::Deny && applies(s)) {
        return Decision::ResourceDeny(s);
    }
    match (own, resource.iter().position(|s| s.effect == Effect::Allow && applies(s))) {
        (Decision::NotAllowed, Some(s)) => Decision::ResourceAllow(s),
        (own, _) => own,
    }
}

/// The (actions, resources) of `statement` that match `call`, if its conditions hold.
fn applies_to(statement: &Statement, call: &Call) -> Option<(Vec<usize>, Vec<usize>)> {
    let actions: Vec<usize> = (0..statement.actions.len())
        .filter(|&a| wildcard_match(&statement.actions[a], &call.action, Case::Insensitive))
        .collect();
    let resources: Vec<usize> = (0..statement.resources.len())
        .filter(|&r| resource_match(&statement.resources[r], &call.resource))
        .collect();
    let holds = statement.conditions.iter().all(|c| c.holds(&call.context));
    (!actions.is_empty() && !resources.is_empty() && holds).then_some((actions, resources))
}

/// IAM's evaluation within one identity-based policy: an explicit Deny wins, then an Allow.
pub fn evaluate(statements: &[Statement], call: &Call) -> Decision {
    let mut allowed = Vec::new();
    for (s, statement) in statements.iter().enumerate() {
        let Some((actions, resources)) = applies_to(statement, call) else { continue };
        match statement.effect {
            Effect::Deny => return Decision::ExplicitDeny(s),
            Effect::Allow => {
                allowed.extend(actions.iter().flat_map(|&a| resources.iter().map(move |&r| (s, a, r))))
            }
        }
    }
    if allowed.is_empty() {
        Decision::NotAllowed
    } else {
        Decision::Allow(allowed)
    }
}
