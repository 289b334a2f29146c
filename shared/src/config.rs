//! Configuration from the environment. The defaults here are the single place the local names of
//! docs/api.md live in code.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

pub const DEFAULT_TABLE_NAME: &str = "inventory";
pub const DEFAULT_EVENT_BUS_NAME: &str = "inventory-events";
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ORDER_EVENTS_QUEUE: &str = "inventory-order-events";
pub const DEFAULT_PUBLISH_DLQ: &str = "inventory-publish-events-dlq";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    pub event_bus_name: String,
    /// The order-events queue (name or URL): polled by the local runtime, redrive's default target.
    pub order_events_queue: String,
    /// Where `publish-events` sends records it can never publish (name or URL).
    pub publish_dead_letter_queue: String,
}

impl Config {
    pub fn from_env() -> Self {
        Config {
            table_name: env_or("TABLE_NAME", DEFAULT_TABLE_NAME),
            event_bus_name: env_or("EVENT_BUS_NAME", DEFAULT_EVENT_BUS_NAME),
            order_events_queue: env_or("ORDER_EVENTS_QUEUE", DEFAULT_ORDER_EVENTS_QUEUE),
            publish_dead_letter_queue: env_or("PUBLISH_DLQ", DEFAULT_PUBLISH_DLQ),
        }
    }
}

/// A function's environment: in Lambda the process's, locally exactly the variables template.yaml
/// gives the function (`dev_server::runtime`), so a variable its template entry does not set is
/// missing locally as it is on AWS.
#[derive(Debug, Clone, Default)]
pub struct FunctionEnv {
    /// `None`: the process's environment (a Lambda function).
    vars: Option<std::collections::BTreeMap<String, String>>,
}

impl FunctionEnv {
    /// The process's environment: what Lambda gives a function.
    pub fn process() -> Self {
        FunctionEnv { vars: None }
    }

    /// Exactly these variables.
    pub fn from_vars(vars: std::collections::BTreeMap<String, String>) -> Self {
        FunctionEnv { vars: Some(vars) }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.vars {
            None => std::env::var(name).ok(),
            Some(vars) => vars.get(name).cloned(),
        };
        value.filter(|v| !v.is_empty())
    }

    /// A variable the function cannot run without (its table, its bus): no default, so a template
    /// that does not set it fails at once, locally and on AWS alike, and never reaches for a
    /// resource of another stack.
    pub fn require(&self, name: &str) -> Result<String, String> {
        self.get(name).ok_or_else(|| {
            format!("{name} is not set in this function's environment (template.yaml sets it, Globals or its own)")
        })
    }

    /// The table (`TABLE_NAME`).
    pub fn table_name(&self) -> Result<String, String> {
        self.require("TABLE_NAME")
    }

    /// The event bus (`EVENT_BUS_NAME`).
    pub fn event_bus_name(&self) -> Result<String, String> {
        self.require("EVENT_BUS_NAME")
    }

    /// Where `publish-events` dead-letters what it can never publish (`PUBLISH_DLQ`, a URL).
    pub fn publish_dead_letter_queue(&self) -> Result<String, String> {
        self.require("PUBLISH_DLQ")
    }

    /// The longest a hold may live, in seconds (`MAX_HOLD_SECONDS`; docs/api.md's default when unset).
    pub fn max_hold_seconds(&self) -> Result<i64, String> {
        match self.get("MAX_HOLD_SECONDS") {
            None => Ok(crate::domain::DEFAULT_MAX_HOLD_SECONDS),
            Some(v) => {
                let ceiling = crate::domain::MAX_HOLD_CEILING_SECONDS;
                v.parse::<i64>().ok().filter(|s| (1..=ceiling).contains(s)).ok_or_else(|| {
                    format!(
                        "MAX_HOLD_SECONDS must be a whole number of seconds from 1 to {ceiling}, not {v:?}"
                    )
                })
            }
        }
    }

    /// How many days finished reservations are kept (`RETENTION_DAYS`; 90 when unset).
    pub fn retention_days(&self) -> Result<i64, String> {
        match self.get("RETENTION_DAYS") {
            None => Ok(crate::domain::DEFAULT_RETENTION_DAYS),
            Some(v) => v.parse::<i64>().ok().filter(|d| (1..=36_500).contains(d)).ok_or_else(|| {
                format!("RETENTION_DAYS must be a whole number of days from 1 to 36500, not {v:?}")
            }),
        }
    }

    /// `REQUIRE_SCOPES=true`: the handlers check each route's scope (docs/api.md, "Scopes").
    pub fn require_scopes(&self) -> bool {
        self.get("REQUIRE_SCOPES").is_some_and(|v| v == "true")
    }
}

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Shared AWS configuration: the standard chain (env vars, profile, Lambda role), with
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_DYNAMODB` honoured for the local stack, us-east-1 when no
/// region is set, tight timeouts, and the SDK's own retries off: the store retries itself, with
/// a deadline, and tells conditions apart from conflicts and throttling.
pub async fn aws_config() -> aws_config::SdkConfig {
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(Region::new(DEFAULT_REGION));
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}

pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&aws_config().await)
}

/// A queue's URL from its name or URL (the deployed functions get URLs; the local defaults are
/// names, resolved with one GetQueueUrl).
pub async fn queue_url(sqs: &aws_sdk_sqs::Client, name_or_url: &str) -> Result<String, String> {
    if name_or_url.starts_with("https://") || name_or_url.starts_with("http://") {
        return Ok(name_or_url.to_owned());
    }
    let out = sqs.get_queue_url().queue_name(name_or_url).send().await.map_err(|e| {
        format!(
            "cannot find queue {name_or_url}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&e)
        )
    })?;
    out.queue_url.ok_or_else(|| format!("no URL for queue {name_or_url}"))
}
