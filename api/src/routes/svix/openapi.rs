//! The Svix-compatible API's own OpenAPI 3.1 document, served at
//! `GET /api/v1/openapi.json` (committed as docs/svix-openapi.json).
//!
//! It is a document of its own rather than a tag of Hookline's
//! (`/openapi.json`): this API keeps Svix's conventions, not Hookline's —
//! camelCase, Svix's error bodies (`{code, detail}` and 422
//! `{detail: [{loc, msg, type}]}`) instead of Hookline's `Error`, the
//! organisation's bearer token instead of a tenant's key, Svix's iterators
//! — and the Svix SDKs are generated from Svix's own document, which this
//! one follows operation by operation (same paths and operation ids). Like
//! Hookline's, it is generated from the routes: every route is registered
//! through `routes!()` from its `#[utoipa::path]`.

use crate::routes::openapi::to_json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response as Answer};
use utoipa::{Modify, PartialSchema, ToSchema};

/// The security scheme of every operation but health, this document and
/// logout.
pub const SCHEME: &str = "organisation_token";
/// Logout's: the token of an app portal access.
pub const PORTAL_SCHEME: &str = "app_portal_token";

const DESCRIPTION: &str = "\
Svix's API, served by Hookline, so that the official Svix SDKs work against \
Hookline with only the server URL changed. An application is a Hookline \
tenant, an endpoint a subscription, a message a published event, an attempt \
an attempt and an event type a catalogue entry: everything made here is an \
ordinary Hookline object (history, audit, console, metrics and `/v1` see it). \
See docs/svix-compatibility.md for the mapping, every route of Svix's \
document and what differs.

**Authentication.** `Authorization: Bearer <token>` with the organisation's \
token: `HOOKLINE_ADMIN_TOKEN`, or an operator key (`hlo_…`) issued with \
`POST /admin/operator-keys`. The health routes and this document are public.

**Errors.** As Svix: `{\"code\", \"detail\"}` (`HttpErrorOut`; Hookline adds \
`request_id`), and 422 `{\"detail\": [{\"loc\", \"msg\", \"type\"}]}` \
(`HTTPValidationError`) for invalid input.

**Paths.** Every `{app_id}`, `{endpoint_id}` and `{msg_id}` takes the \
prefixed id (`app_…`, `ep_…`, `msg_…`) or the object's `uid` (`eventId` for \
messages). Every path is also served with a trailing slash.

**Pagination.** `limit` (1–250, default 50) and `iterator`; a page is \
`{data, iterator, prevIterator, done}`.

**Idempotency.** Every POST honours `idempotency-key`: the first answer is \
replayed for 12 hours; the same key with another body is a 409.";

/// A list's order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    Ascending,
    Descending,
}

/// `StatusCodeClass`: a class of HTTP status codes, `0` for attempts that
/// got no response.
#[derive(Debug)]
pub struct StatusCodeClass;

impl PartialSchema for StatusCodeClass {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some([0, 100, 200, 300, 400, 500]))
            .description(Some(
                "`0` (no response), `100`, `200`, `300`, `400` or `500`.",
            ))
            .into()
    }
}

impl ToSchema for StatusCodeClass {}

/// `HttpErrorOut`: every error but 422.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HttpErrorOut)]
pub struct HttpErrorOutSchema {
    /// A stable, machine-readable code (`not_found`, `conflict`, …).
    pub code: String,
    pub detail: String,
    /// Hookline's request id (the SDKs ignore it).
    #[schema(nullable = false)]
    pub request_id: Option<String>,
}

/// One invalid input.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ValidationError)]
pub struct ValidationErrorSchema {
    /// Where: `["body", "url"]`, `["query", "limit"]`.
    pub loc: Vec<String>,
    pub msg: String,
    /// `value_error`, `value_error.jsondecode`, …
    #[serde(rename = "type")]
    pub kind: String,
}

/// 422: the request's input is invalid.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HTTPValidationError)]
pub struct HttpValidationErrorSchema {
    pub detail: Vec<ValidationErrorSchema>,
}

#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "Hookline: Svix-compatible API",
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        HttpErrorOutSchema,
        HttpValidationErrorSchema,
        ValidationErrorSchema,
        Ordering,
        StatusCodeClass,
    )),
    modifiers(&Security),
    tags(
        (name = "Application", description = "Applications: Hookline tenants."),
        (name = "Endpoint", description = "Endpoints: subscriptions that receive the raw payload, signed as Svix signs."),
        (name = "Message", description = "Messages: published events."),
        (name = "Message Attempt", description = "Attempts to deliver messages, and resends."),
        (name = "Event Type", description = "The organisation's event types: Hookline's catalogue."),
        (name = "Health", description = "Health and this document (public)."),
        (name = "Authentication", description = "Links to Hookline's console for an application (Svix's app portal), and their logout."),
    )
)]
pub struct SvixDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut OpenApi) {
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                SCHEME,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "The organisation's token: HOOKLINE_ADMIN_TOKEN or an operator key \
                             (`hlo_…`, from `POST /admin/operator-keys`).",
                        ))
                        .build(),
                ),
            );
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                PORTAL_SCHEME,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "The token (`hlp_…`) of an app portal access \
                             (`POST /api/v1/auth/app-portal-access/{app_id}`).",
                        ))
                        .build(),
                ),
            );
    }
}

fn each_operation(api: &mut OpenApi, mut f: impl FnMut(&str, &mut Operation)) {
    for item in api.paths.paths.values_mut() {
        for (method, op) in [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
            ("head", &mut item.head),
        ] {
            if let Some(op) = op.as_mut() {
                f(method, op);
            }
        }
    }
}

/// Marks the operations of `api` (routes about to get the organisation
/// guard) as requiring the token, with their 401.
pub fn guard(api: &mut OpenApi) {
    each_operation(api, |_, op| {
        op.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
        answer(
            op,
            401,
            "- `authentication_failed`: the bearer token is missing, or neither the admin token nor a working operator key",
        );
        answer(
            op,
            429,
            "- `rate_limit`: over 100 wrong tokens came from this client's address in ten minutes (with those \
             sent to `/admin`); every request with a token waits until `Retry-After` has passed",
        );
    });
}

/// Adds `status` with `description` unless the operation lists it.
fn answer(op: &mut Operation, status: u16, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(Answer::new(description)));
}

/// What every operation shares: the 422 of its input, the 413 of a body,
/// the 409 of a reused idempotency key, and Svix's error bodies on every
/// error response.
pub fn finish(api: &mut OpenApi) {
    constrain_inputs(api);
    each_operation(api, |method, op| {
        // Rotating takes an empty body as `{}`.
        if op.operation_id.as_deref() == Some("v1.endpoint.rotate-secret") {
            if let Some(body) = op.request_body.as_mut() {
                body.required = Some(utoipa::openapi::Required::False);
            }
        }
        let has_input = op.request_body.is_some() || op.parameters.is_some();
        let has_query = op
            .parameters
            .iter()
            .flatten()
            .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query);
        if has_query {
            answer(
                op,
                400,
                "- `generic_error`: a query parameter is not of its type (`limit=ten`, `with_content=maybe`)",
            );
        }
        if has_input {
            answer(
                op,
                422,
                "The input is invalid (each problem located in `loc`).",
            );
        }
        if op.request_body.is_some() {
            answer(
                op,
                415,
                "- `unsupported_media_type`: the body has a `Content-Encoding` other than `identity` \
                 (bodies are read as sent, never decompressed)",
            );
            answer(
                op,
                413,
                "- `payload_too_large`: the body is over the limit (HOOKLINE_SVIX_MAX_BODY_BYTES, \
                 and 1 MiB for a message's payload)",
            );
        }
        let organisation = op.security.as_ref().is_some_and(|s| {
            s.iter()
                .any(|r| serde_json::to_value(r).is_ok_and(|v| v.get(SCHEME).is_some()))
        });
        if method == "post" && organisation {
            answer(
                op,
                409,
                "- `conflict`: the `idempotency-key` was used before with another request",
            );
        }
        for (status, response) in op.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if !status.starts_with('4') && !status.starts_with('5') {
                continue;
            }
            if response.content.is_empty() {
                let schema = if status == "422" {
                    "HTTPValidationError"
                } else {
                    "HttpErrorOut"
                };
                response.content.insert(
                    "application/json".to_string(),
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(schema)))
                        .build(),
                );
            }
        }
    });
}

/// No control characters (`char::is_control`).
const NO_CONTROLS: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
/// An event type name (`hookline_domain`'s rule).
const EVENT_NAME: &str = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$";
/// `whsec_` (optional) and canonical, padded base64 of 24–75 bytes.
const SECRET: &str = "^(whsec_)?(?:[A-Za-z0-9+/]{4}){8,24}\
    (?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

fn string(min: Option<usize>, max: usize, pattern: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(min)
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

/// The rules the server checks in the input schemas (`…In`, `…Patch`)
/// that their Rust types cannot say: metadata keys and values, channel
/// and event type names in lists, event type groups, secrets.
fn constrain_inputs(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for (name, schema) in &mut components.schemas {
        if !name.ends_with("In") && !name.ends_with("Patch") {
            continue;
        }
        // A headers patch removes a header given as `null`.
        let nullable_values = name == "EndpointHeadersPatchIn";
        let RefOr::T(Schema::Object(object)) = schema else {
            continue;
        };
        for (field, property) in &mut object.properties {
            match (field.as_str(), property) {
                ("metadata", RefOr::T(Schema::Object(map))) => {
                    map.max_properties = Some(hookline_domain::metadata::MAX_METADATA_ENTRIES);
                    map.property_names = Some(Box::new(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .max_length(Some(hookline_domain::metadata::MAX_METADATA_KEY_CHARS))
                            .pattern(Some(NO_CONTROLS))
                            .build()
                            .into(),
                    ));
                    map.additional_properties =
                        Some(Box::new(AdditionalProperties::RefOr(string(
                            None,
                            hookline_domain::metadata::MAX_METADATA_VALUE_CHARS,
                            NO_CONTROLS,
                        ))));
                }
                ("channels", RefOr::T(Schema::Array(list))) => {
                    list.items = ArrayItems::RefOrSchema(Box::new(string(
                        Some(1),
                        hookline_domain::channel::MAX_CHANNEL_LEN,
                        r"^[a-zA-Z0-9\-_.:+]+$",
                    )));
                }
                ("eventTypes" | "filterTypes", RefOr::T(Schema::Array(list))) => {
                    list.min_items = Some(1);
                    list.items =
                        ArrayItems::RefOrSchema(Box::new(string(Some(3), 100, EVENT_NAME)));
                }
                ("groupName", RefOr::T(Schema::Object(text))) => {
                    text.max_length = Some(100);
                    text.pattern = Some(
                        r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
                            .to_string(),
                    );
                }
                ("headers", RefOr::T(Schema::Object(map))) => {
                    // As Hookline's `headers` (CustomHeaders).
                    map.max_properties = Some(20);
                    map.property_names = Some(Box::new(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$"))
                            .build()
                            .into(),
                    ));
                    let value = ObjectBuilder::new()
                        .schema_type(if nullable_values {
                            SchemaType::from_iter([Type::String, Type::Null])
                        } else {
                            SchemaType::Type(Type::String)
                        })
                        .max_length(Some(4096))
                        .pattern(Some("^([!-~]([ -~]*[!-~])?)?$"))
                        .into();
                    map.additional_properties = Some(Box::new(AdditionalProperties::RefOr(value)));
                }
                ("secret" | "key", RefOr::T(Schema::Object(text))) => {
                    text.pattern = Some(SECRET.to_string());
                }
                _ => {}
            }
        }
    }
}

/// The serialised document, shared by the routes.
#[derive(Debug, Clone)]
pub struct SvixDocument(pub Bytes);

/// This document
///
/// The OpenAPI 3.1 description of the Svix-compatible API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "svix.openapi",
    tag = "Health",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", body = Object,
            content_type = "application/json"),
    )
)]
pub async fn serve(Extension(SvixDocument(body)): Extension<SvixDocument>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The document as JSON (as `to_json` writes Hookline's).
///
/// # Errors
/// When serialising fails.
pub fn json(api: &OpenApi) -> Result<Bytes, serde_json::Error> {
    to_json(api)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::routes::openapi::operations;
    use crate::routes::svix::document;
    use serde_json::Value;
    use std::path::PathBuf;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/svix-openapi.json")
    }

    /// `docs/svix-openapi.json` is what the server serves at
    /// `/api/v1/openapi.json`.
    #[test]
    fn the_committed_svix_copy_is_current() {
        let served = json(&document()).unwrap();
        let path = committed_path();
        if std::env::var_os("HOOKLINE_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &served).unwrap();
            return;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == served,
            "docs/svix-openapi.json is not the document the server serves; regenerate it with\n\
             HOOKLINE_WRITE_OPENAPI=1 cargo test -p hookline-api the_committed_\n\
             and commit the result"
        );
    }

    /// The issue's routes, with Svix's operation ids (the SDKs' names).
    #[test]
    fn svix_routes_are_documented_under_svix_operation_ids() {
        let ops: Vec<(String, String, String)> = operations(&document())
            .into_iter()
            .map(|(m, p, op)| (m, p, op.operation_id.unwrap_or_default()))
            .collect();
        for (method, path, id) in [
            ("POST", "/api/v1/app", "v1.application.create"),
            ("GET", "/api/v1/app", "v1.application.list"),
            ("GET", "/api/v1/app/{app_id}", "v1.application.get"),
            ("PUT", "/api/v1/app/{app_id}", "v1.application.update"),
            ("PATCH", "/api/v1/app/{app_id}", "v1.application.patch"),
            ("DELETE", "/api/v1/app/{app_id}", "v1.application.delete"),
            (
                "POST",
                "/api/v1/app/{app_id}/endpoint",
                "v1.endpoint.create",
            ),
            ("GET", "/api/v1/app/{app_id}/endpoint", "v1.endpoint.list"),
            (
                "GET",
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret",
                "v1.endpoint.get-secret",
            ),
            (
                "POST",
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
                "v1.endpoint.rotate-secret",
            ),
            (
                "POST",
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
                "v1.endpoint.recover",
            ),
            ("POST", "/api/v1/app/{app_id}/msg", "v1.message.create"),
            ("GET", "/api/v1/app/{app_id}/msg", "v1.message.list"),
            ("GET", "/api/v1/app/{app_id}/msg/{msg_id}", "v1.message.get"),
            (
                "GET",
                "/api/v1/app/{app_id}/attempt/msg/{msg_id}",
                "v1.message-attempt.list-by-msg",
            ),
            (
                "GET",
                "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}",
                "v1.message-attempt.list-by-endpoint",
            ),
            (
                "POST",
                "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
                "v1.message-attempt.resend",
            ),
            (
                "GET",
                "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
                "v1.message-attempt.get",
            ),
            (
                "GET",
                "/api/v1/app/{app_id}/msg/{msg_id}/endpoint",
                "v1.message-attempt.list-attempted-destinations",
            ),
            (
                "GET",
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
                "v1.endpoint.get-headers",
            ),
            (
                "PUT",
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
                "v1.endpoint.update-headers",
            ),
            (
                "PATCH",
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
                "v1.endpoint.patch-headers",
            ),
            (
                "GET",
                "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats",
                "v1.endpoint.get-stats",
            ),
            ("GET", "/api/v1/event-type", "v1.event-type.list"),
            ("POST", "/api/v1/event-type", "v1.event-type.create"),
            ("GET", "/api/v1/health", "v1.health.get"),
        ] {
            assert!(
                ops.iter()
                    .any(|(m, p, i)| m == method && p == path && i == id),
                "{method} {path} ({id})"
            );
        }
        assert_eq!(
            ops.len(),
            40,
            "{:?}",
            ops.iter().map(|o| &o.2).collect::<Vec<_>>()
        );
    }

    /// Guarded operations name the scheme and answer 401; every error
    /// response has Svix's body; no operation is in Hookline's document.
    #[test]
    fn errors_and_security_are_svix_shaped() {
        let doc: Value = serde_json::from_slice(&json(&document()).unwrap()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (path, item) in doc["paths"].as_object().unwrap() {
            assert!(path.starts_with("/api/v1/"), "{path}");
            for (method, op) in item.as_object().unwrap() {
                let public = path.starts_with("/api/v1/health") || path == "/api/v1/openapi.json";
                assert_eq!(op.get("security").is_none(), public, "{method} {path}");
                if !public {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}");
                }
                for (status, response) in op["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        let want = if status == "422" {
                            "#/components/schemas/HTTPValidationError"
                        } else {
                            "#/components/schemas/HttpErrorOut"
                        };
                        assert_eq!(schema, want, "{method} {path} {status}");
                    }
                }
            }
        }
        let hookline = operations(&crate::routes::document());
        assert!(hookline.iter().all(|(_, p, _)| !p.starts_with("/api/v1")));
    }
}
