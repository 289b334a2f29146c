//! The integration tests against the local stack (DynamoDB Local and LocalStack, started by
//! `make test`), as one test binary with a module per area, so the AWS SDK is linked once.
//! Every test has its own table (or stack), so they run in parallel.

mod contention;
mod events;
mod events_outage;
mod expiry;
mod expiry_scale_due;
mod expiry_scale_not_due;
mod http;
mod iam;
mod lost_replies;
mod observability;
mod orders;
mod publish_failures;
mod reliability_faults;
mod reliability_fuzz;
mod reliability_model;
mod retention;
mod sharded_events;
mod shards;
mod store;
mod warehouse;
