//! The JSON API and its two SSE streams: one module per resource, each a router of
//! thin handlers over `app`. Every route is registered together with its OpenAPI
//! description (`utoipa`), so the document at `/api/openapi.json` lists exactly the
//! routes that are served.

mod cart;
mod catalog;
mod drills;
mod health;
mod orders;
mod payment;
mod returns;
mod session;
mod streams;
mod webhooks;

use std::sync::OnceLock;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ErrorBody, ErrorDetail};

pub fn router() -> Router<AppState> {
    documented().split_for_parts().0
}

/// Every route of the API with its description.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi))
        .merge(health::router())
        .merge(session::router())
        .merge(catalog::router())
        .merge(cart::router())
        .merge(orders::router())
        .merge(payment::router())
        .merge(returns::router())
        .merge(streams::router())
        .merge(drills::router())
        .merge(webhooks::router())
        .merge(super::metrics::router())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ShopFlow",
        description = "Durable order fulfillment on Restate: the JSON API and its live \
            streams. Every refusal is `{\"error\": {\"code\", \"message\"}}` with a 4xx or \
            5xx status; a 503 carries `Retry-After`. The page's own routes (`/`, `/ui/…`, \
            `/static/…`) are not part of the API."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Conventions)
)]
struct ApiDoc;

/// The bearer scheme, and the error answer every operation may give.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let refusal = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        components.responses.insert(
            "Refused".into(),
            RefOr::T(refusal(
                "Bad input or not allowed: the error's code says why",
            )),
        );
        components.responses.insert(
            "Unavailable".into(),
            RefOr::T(refusal("Restate or SQLite did not answer; try again")),
        );
    }
}

/// `Idempotency-Key`: tries of one request with the same key take effect once.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
struct IdempotencyKeyHeader {
    /// 1-128 printable ASCII characters; tries with the same key take effect once.
    #[param(rename = "Idempotency-Key")]
    _key: Option<String>,
}

/// A product by id (`3`) or SKU (`"P003"`).
fn product_ref() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .description(Some("A product's id (3) or SKU (\"P003\")"))
            .build(),
    )
}

/// The whole document, with the refusals every operation may answer added to each.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = documented().into_openapi();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_refusals(operation);
        }
    }
    doc
}

fn add_refusals(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    for (status, name) in [("4XX", "Refused"), ("5XX", "Unavailable")] {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi() -> impl IntoResponse {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        serde_json::to_vec(&document())
            .expect("the document serializes")
            .into()
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.clone())
}
