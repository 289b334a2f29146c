//! `/v1/kits/{sku}`: define and read a kit (a bundle sku reserved as its components).

use axum::extract::State;
use axum::Json;
use http::StatusCode;
use serde::Deserialize;

use super::extract::{not_null, JsonBody, Params, PathParams};
use super::AppState;
use crate::domain::{self, Component, Kit};
use crate::error::Result;
use crate::store::WriteContext;

/// `{sku}`.
#[derive(Deserialize)]
pub(super) struct KitPath {
    sku: String,
}

impl PathParams for KitPath {
    fn validate(&self) -> Result<()> {
        domain::validate_sku(&self.sku)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PutKitBody {
    components: Vec<Component>,
    #[serde(default, deserialize_with = "not_null")]
    expected_version: Option<i64>,
}

/// `PUT /v1/kits/{sku}`: 201 created, 200 changed or unchanged.
pub(super) async fn put_kit(
    State(store): State<AppState>,
    Params(path): Params<KitPath>,
    ctx: WriteContext,
    JsonBody(body): JsonBody<PutKitBody>,
) -> Result<(StatusCode, Json<Kit>)> {
    domain::validate_kit(&path.sku, &body.components)?;
    let expected = domain::validate_expected_version(body.expected_version)?;
    let put = store.put_kit(&path.sku, &body.components, expected, &ctx).await?;
    let status = if put.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(put.kit)))
}

/// `GET /v1/kits/{sku}`.
pub(super) async fn get_kit(
    State(store): State<AppState>,
    Params(path): Params<KitPath>,
) -> Result<Json<Kit>> {
    Ok(Json(store.get_kit(&path.sku).await?))
}
