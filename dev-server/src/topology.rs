//! What template.yaml deploys, as the local runtime runs it: `.local/topology.json`, written by
//! `infra/topology.py` from the template after the SAM transform (`make dev`, `make test` and
//! `make bench` write it first). Its values keep the template's references as placeholders
//! (`${InventoryTable}`, `${InventoryTable.Arn}`, `${AWS::Region}`...), resolved here against
//! [`Names`]: the local table, bus and queues (`make dev`'s, or a test's own).
//!
//! The file records the SHA-256 of the template it was made from; a file older than the
//! template is refused (run `make topology`), so nothing runs from a stale copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::iam::{Condition, Effect, ResourcePolicy, Statement, LOCAL_ACCOUNT, LOCAL_REGION};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    pub template_sha256: String,
    /// By binary name (the crate under functions/).
    pub functions: BTreeMap<String, FunctionSpec>,
    /// The table, the bus and the queues, by logical id.
    pub resources: BTreeMap<String, ResourceSpec>,
    pub rules: Vec<RuleSpec>,
    /// The bus's own policy statements (AWS::Events::EventBusPolicy).
    pub resource_policies: Vec<ResourcePolicySpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePolicySpec {
    pub name: String,
    /// The bus it is the policy of, by logical id.
    pub bus: String,
    pub statement: StatementSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    pub logical_id: String,
    /// Its execution role, by logical id.
    pub role: String,
    pub timeout_seconds: u64,
    pub environment: BTreeMap<String, String>,
    /// `METHOD /path` route keys of the HTTP API that invoke it.
    pub routes: Vec<String>,
    pub schedules: Vec<ScheduleSpec>,
    pub mappings: Vec<MappingSpec>,
    pub statements: Vec<StatementSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    pub name: String,
    pub rate_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MappingKind {
    Stream,
    Queue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingSpec {
    pub name: String,
    /// The table (a stream mapping) or queue (a queue mapping), by logical id.
    pub source: String,
    pub kind: MappingKind,
    pub batch_size: i32,
    pub maximum_batching_window_in_seconds: u64,
    pub report_batch_item_failures: bool,
    pub maximum_retry_attempts: i64,
    pub maximum_record_age_in_seconds: i64,
    pub bisect_batch_on_function_error: bool,
    pub on_failure: Option<String>,
    /// Lambda event filter patterns (any one must match), as the template writes them.
    pub filters: Vec<Value>,
    pub maximum_concurrency: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementSpec {
    pub effect: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub conditions: Vec<ConditionSpec>,
    /// A resource policy's principals (none in a role's).
    #[serde(default)]
    pub principals: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionSpec {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpec {
    #[serde(rename = "type")]
    pub kind: String,
    /// The name it has on the local stack (the deployed name without its stage suffix).
    pub local_name: String,
    /// A queue's dead-letter queue (by logical id) and after how many receives.
    #[serde(default)]
    pub dead_letter_queue: Option<String>,
    #[serde(default)]
    pub max_receive_count: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSpec {
    pub name: String,
    pub pattern: Value,
    pub targets: Vec<Option<String>>,
}

/// The repository root (this crate's parent).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

impl Topology {
    /// `TOPOLOGY_FILE`, else `.local/topology.json` of the repository, checked against the
    /// repository's template.yaml.
    pub fn load() -> Result<Topology, String> {
        let path = std::env::var_os("TOPOLOGY_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| repository_root().join(".local/topology.json"));
        Self::load_from(&path)
    }

    /// The topology at `path` (a variant `infra/topology.py --parameter` wrote, say), checked
    /// against the repository's template.yaml.
    pub fn load_from(path: &Path) -> Result<Topology, String> {
        let root = repository_root();
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read {} ({e}): run `make topology` (infra/topology.py) first", path.display())
        })?;
        let topology: Topology =
            serde_json::from_str(&text).map_err(|e| format!("{} is not a topology: {e}", path.display()))?;
        let template = std::fs::read(root.join("template.yaml"))
            .map_err(|e| format!("cannot read template.yaml to check {}: {e}", path.display()))?;
        let digest: String = Sha256::digest(&template).iter().map(|b| format!("{b:02x}")).collect();
        if digest != topology.template_sha256 {
            return Err(format!(
                "{} was made from another template.yaml: run `make topology` (infra/topology.py)",
                path.display()
            ));
        }
        Ok(topology)
    }

    pub fn function(&self, name: &str) -> Result<&FunctionSpec, String> {
        self.functions.get(name).ok_or_else(|| format!("template.yaml has no function {name}"))
    }

    /// The logical id of the one resource of `kind` (the table, the bus).
    pub fn only(&self, kind: &str) -> Result<&str, String> {
        let mut of_kind = self.resources.iter().filter(|(_, r)| r.kind == kind);
        match (of_kind.next(), of_kind.next()) {
            (Some((id, _)), None) => Ok(id),
            _ => Err(format!("the local runtime needs exactly one {kind} in template.yaml")),
        }
    }
}

/// A local queue: its name and URL.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    pub name: String,
    pub url: String,
}

/// The local names the template's references resolve to.
#[derive(Debug, Clone)]
pub struct Names {
    pub table: String,
    pub bus: String,
    /// By logical id.
    pub queues: BTreeMap<String, LocalQueue>,
    /// The stack's stage, for the names of functions.
    pub stage: String,
}

impl Names {
    /// `${...}` placeholders of `text` resolved.
    pub fn resolve(&self, topology: &Topology, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end =
                rest[start..].find('}').ok_or_else(|| format!("unterminated placeholder in {text:?}"))?;
            out.push_str(&self.value(topology, &rest[start + 2..start + end])?);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn value(&self, topology: &Topology, reference: &str) -> Result<String, String> {
        let (id, attribute) = match reference.split_once('.') {
            Some((id, attribute)) => (id, Some(attribute)),
            None => (reference, None),
        };
        let account = LOCAL_ACCOUNT;
        let region = LOCAL_REGION;
        let unknown = || format!("the local runtime cannot resolve ${{{reference}}}");
        match (id, attribute) {
            ("AWS::Region", None) => return Ok(region.into()),
            ("AWS::AccountId", None) => return Ok(account.into()),
            ("AWS::Partition", None) => return Ok("aws".into()),
            ("AWS::URLSuffix", None) => return Ok("amazonaws.com".into()),
            _ => {}
        }
        if let Some((name, _)) = topology.functions.iter().find(|(_, f)| f.logical_id == id) {
            let function = format!("inventory-{name}-{}", self.stage);
            return match attribute {
                None => Ok(function),
                Some("Arn") => Ok(format!("arn:aws:lambda:{region}:{account}:function:{function}")),
                _ => Err(unknown()),
            };
        }
        let resource = topology.resources.get(id).ok_or_else(unknown)?;
        match (resource.kind.as_str(), attribute) {
            ("AWS::DynamoDB::Table", None) => Ok(self.table.clone()),
            ("AWS::DynamoDB::Table", Some("Arn")) => {
                Ok(format!("arn:aws:dynamodb:{region}:{account}:table/{}", self.table))
            }
            // A table's stream has a label the stack picks when it makes it; any is the table's.
            ("AWS::DynamoDB::Table", Some("StreamArn")) => {
                Ok(format!("arn:aws:dynamodb:{region}:{account}:table/{}/stream/*", self.table))
            }
            ("AWS::Events::EventBus", None | Some("Name")) => Ok(self.bus.clone()),
            ("AWS::Events::EventBus", Some("Arn")) => {
                Ok(format!("arn:aws:events:{region}:{account}:event-bus/{}", self.bus))
            }
            ("AWS::SQS::Queue", attribute) => {
                let queue = self.queues.get(id).ok_or_else(|| {
                    format!("no local queue for {id} (its local name: {})", resource.local_name)
                })?;
                match attribute {
                    None | Some("QueueUrl") => Ok(queue.url.clone()),
                    Some("QueueName") => Ok(queue.name.clone()),
                    Some("Arn") => Ok(format!("arn:aws:sqs:{region}:{account}:{}", queue.name)),
                    _ => Err(unknown()),
                }
            }
            _ => Err(unknown()),
        }
    }

    /// A function's policy statements with their resources resolved.
    pub fn statements(&self, topology: &Topology, function: &FunctionSpec) -> Result<Vec<Statement>, String> {
        function.statements.iter().map(|s| self.statement(topology, s)).collect()
    }

    /// The resources' own policies (the bus's), resolved: one per resource, its statements
    /// gathered from every policy resource of the template that names it.
    pub fn resource_policies(&self, topology: &Topology) -> Result<Vec<ResourcePolicy>, String> {
        let mut policies: Vec<ResourcePolicy> = Vec::new();
        for p in &topology.resource_policies {
            let resource = self.resolve(topology, &format!("${{{}.Arn}}", p.bus))?;
            let statement = self.statement(topology, &p.statement).map_err(|e| format!("{}: {e}", p.name))?;
            match policies.iter_mut().find(|known| known.resource == resource) {
                Some(known) => known.statements.push(statement),
                None => policies.push(ResourcePolicy { resource, statements: vec![statement] }),
            }
        }
        Ok(policies)
    }

    /// The ARN of a function's execution role: the principal its calls are made as.
    pub fn principal(&self, function: &FunctionSpec) -> String {
        format!("arn:aws:iam::{LOCAL_ACCOUNT}:role/{}", function.role)
    }

    fn statement(&self, topology: &Topology, s: &StatementSpec) -> Result<Statement, String> {
        let effect = match s.effect.as_str() {
            "Allow" => Effect::Allow,
            "Deny" => Effect::Deny,
            other => return Err(format!("a statement with Effect {other:?}")),
        };
        let resolve = |values: &[String]| {
            values.iter().map(|v| self.resolve(topology, v)).collect::<Result<Vec<_>, _>>()
        };
        let conditions = s
            .conditions
            .iter()
            .map(|c| {
                Ok(Condition {
                    operator: c.operator.parse()?,
                    key: c.key.clone(),
                    values: resolve(&c.values)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Statement {
            effect,
            actions: s.actions.clone(),
            resources: resolve(&s.resources)?,
            written_resources: s.resources.clone(),
            conditions,
            principals: resolve(&s.principals)?,
        })
    }

    /// A function's environment: exactly the variables its template entry sets, resolved.
    pub fn environment(
        &self,
        topology: &Topology,
        function: &FunctionSpec,
    ) -> Result<BTreeMap<String, String>, String> {
        function.environment.iter().map(|(k, v)| Ok((k.clone(), self.resolve(topology, v)?))).collect()
    }
}

/// Whether a record (as Lambda's event JSON) matches a Lambda event filter pattern: every field
/// of the pattern is in the record, and a list of values matches if the record's value is one
/// of them (the only pattern form the template uses; `infra/topology.py` reads any).
pub fn matches_filter(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => {
            fields.iter().all(|(k, p)| record.get(k).is_some_and(|r| matches_filter(p, r)))
        }
        Value::Array(values) => values.iter().any(|v| match v {
            Value::Object(_) => false,
            scalar => scalar == record,
        }),
        other => other == record,
    }
}
