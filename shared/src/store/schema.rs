//! The table definition, for the local stack and the tests. `template.yaml` describes the same
//! table for AWS.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_types::error::display::DisplayErrorContext;

use super::items::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};
use crate::error::Error;

fn attr(name: &str) -> Result<AttributeDefinition, Error> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(Error::internal)
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, Error> {
    KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(Error::internal)
}

/// Creates the table (on-demand, stream with old and new images, sparse due-holds index,
/// KEYS_ONLY by-location index, TTL).
/// Returns `false` when it already existed.
pub async fn create_table(client: &Client, table: &str) -> Result<bool, Error> {
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1_PK, KeyType::Hash)?)
        .key_schema(key(GSI1_SK, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(Error::internal)?;
    let by_location = GlobalSecondaryIndex::builder()
        .index_name(GSI2)
        .key_schema(key(GSI2_PK, KeyType::Hash)?)
        .key_schema(key(GSI2_SK, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
        .build()
        .map_err(Error::internal)?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .attribute_definitions(attr(GSI1_PK)?)
        .attribute_definitions(attr(GSI1_SK)?)
        .attribute_definitions(attr(GSI2_PK)?)
        .attribute_definitions(attr(GSI2_SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .global_secondary_indexes(by_location)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(Error::internal)?,
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if matches!(e.err(), CreateTableError::ResourceInUseException(_)) => {
            return Ok(false)
        }
        Err(e) => return Err(Error::internal(DisplayErrorContext(&e))),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL)
                .build()
                .map_err(Error::internal)?,
        )
        .send()
        .await
        .map_err(|e| Error::internal(DisplayErrorContext(&e)))?;
    Ok(true)
}

pub async fn delete_table(client: &Client, table: &str) -> Result<(), Error> {
    client
        .delete_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| Error::internal(DisplayErrorContext(&e)))?;
    Ok(())
}

impl super::Store {
    /// That DynamoDB answers and the table is ACTIVE (`GET /health?deep=true`); else 503.
    pub async fn check_table(&self) -> crate::error::Result<()> {
        let described = self.client.describe_table().table_name(&self.table).send().await;
        self.count_request(None);
        let status = described.ok().and_then(|d| d.table).and_then(|t| t.table_status);
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            Ok(())
        } else {
            tracing::warn!(table = %self.table, ?status, "deep health check failed");
            Err(Error::Unavailable { retry_after_secs: 5 })
        }
    }
}
