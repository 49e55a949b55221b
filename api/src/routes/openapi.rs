//! The OpenAPI 3.1 document, generated from the routes themselves: every
//! route is registered through `utoipa_axum::routes!` from its
//! `#[utoipa::path]` (so the documented path is the routed one), and what
//! every operation shares — the guards' security and 401s, the
//! `X-Request-Id` header, the extractors' and layers' errors, the
//! consistency header of writes — is added here from the same facts the
//! router uses. The document is serialised once, at startup, and served at
//! `GET /openapi.json`; `docs/openapi.json` is a copy that tests keep equal.

pub mod examples;
pub mod schemas;

use crate::error::ErrorBody;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, OneOfBuilder, Schema, SchemaType,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Required, Response as Answer, Type,
};
use utoipa::Modify;

/// The request and response header naming the request.
pub const REQUEST_ID: &str = "X-Request-Id";

const DESCRIPTION: &str = "\
Hookline sends the events business systems publish to the HTTPS endpoints \
their tenants subscribed, signs every request, retries with backoff and keeps \
the full history in an append-only event log.

**Authentication.** Every `/v1` operation takes a tenant's API key \
(`Authorization: Bearer hlk_…`, security scheme `tenant_api_key`); every \
`/admin` operation takes the operator's token (`HOOKLINE_ADMIN_TOKEN`, scheme \
`admin_token`; without it configured those routes answer 404). The health \
routes and this document are public. `GET /metrics` takes \
HOOKLINE_METRICS_TOKEN (scheme `metrics_token`) when it is set, and answers \
loopback clients only when it is not.

**Errors.** Every 4xx and 5xx answer has the body `Error`: \
`{\"code\", \"detail\", \"request_id\"}`. Each operation's error responses \
list the codes it can answer. A request whose declared `Content-Length` is \
over the body limit (HOOKLINE_MAX_BODY_BYTES) is refused with 413 \
`payload_too_large` before routing, whatever the route.

**Request ids.** Send `X-Request-Id` (1–128 characters from letters, digits \
and `-_.:/+=@`) to name a request; any other value is ignored and replaced by \
a generated UUIDv7. Every answer carries the id in `X-Request-Id`, every event \
the request causes records it, and `GET /v1/requests/{request_id}` traces it.

**Consistency.** A write answers once the read models have caught up with it \
(bounded wait); when they had not, the write is still durable and the answer \
carries `x-hookline-consistency: pending`. A write that times out before \
storing anything answers 408 `request_timeout`; one that timed out while \
committing answers with its real result, or 503 `outcome_unknown` (look the \
request id up, and repeat only with the same `Idempotency-Key`).

**Pagination.** Lists are newest first; pass `next_cursor` back as `cursor` \
(absent on the last page), with `limit` 1–100 (default 100). The audit log \
pages by position (`after`, `next_after`).";

#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "Hookline",
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "subscriptions", description = "Where each tenant's events go: endpoints, their event filters, signing secrets and custom headers."),
        (name = "publishing", description = "Publishing business events: one delivery per matching subscription."),
        (name = "deliveries", description = "Deliveries and their attempts: reads, manual retries, recovery and test sends."),
        (name = "event-types", description = "The tenant's event-type catalogue: the built-in types and its own, with JSON Schemas that published data must satisfy."),
        (name = "settings", description = "The tenant's settings."),
        (name = "audit", description = "The tenant's event log in commit order, and everything one request id caused."),
        (name = "api-keys", description = "The calling tenant's own API keys."),
        (name = "portal-sessions", description = "Signed, short-lived links to the console that a tenant hands to its own customers."),
        (name = "sources", description = "Inbound sources: providers (InFlow, Siigo, Standard Webhooks senders, the seeds' `X-Signature` senders) whose webhooks Hookline verifies, records and fans out to the tenant's subscriptions."),
        (name = "inbound", description = "Where providers deliver to a source (no API key: the signature is the authentication)."),
        (name = "connectors", description = "Webhook subscriptions Hookline provisions at a provider (Siigo) for the tenant."),
        (name = "inflow", description = "InFlow's webhook subscription API, mounted for tools written for InFlow: `companyId` is the tenant id, authentication the tenant's API key; the subscriptions are ordinary Hookline subscriptions signed `hmac-sha256-base64`."),
        (name = "admin", description = "Operators: tenants and their API keys (admin token)."),
        (name = "service", description = "Liveness, readiness, metrics and this document."),
    )
)]
pub struct ApiDoc;

/// The two bearer schemes; no global requirement (each operation names
/// its own).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            Guard::TenantKey.scheme(),
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A tenant's API key (`hlk_…`), from `POST /admin/tenants`, \
                         `POST /admin/tenants/{id}/keys`, `POST /v1/api-keys/rotate` \
                         or `hookline tenants create`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "HOOKLINE_METRICS_TOKEN, for `GET /metrics`. While it is not set, \
                         `/metrics` answers loopback clients without credentials.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            Guard::AdminToken.scheme(),
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator's token, HOOKLINE_ADMIN_TOKEN (the admin routes \
                         answer 404 while it is not set).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Which guard a group of routes sits behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// `middleware::authenticate`: a tenant's API key.
    TenantKey,
    /// `tenants::admin_only`: the operator's token.
    AdminToken,
}

impl Guard {
    pub fn scheme(self) -> &'static str {
        match self {
            Self::TenantKey => "tenant_api_key",
            Self::AdminToken => "admin_token",
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
}

/// Marks every operation of `api` (a group of routes about to get
/// `guard`'s route layer) with the guard's security requirement and its
/// answers.
pub fn guard(api: &mut OpenApi, guard: Guard) {
    for item in api.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            op.security = Some(vec![SecurityRequirement::new(
                guard.scheme(),
                Vec::<String>::new(),
            )]);
            match guard {
                Guard::TenantKey => add_codes(
                    op,
                    401,
                    &[(
                        "unauthorized",
                        "the `Authorization: Bearer <api key>` header is missing or malformed, \
                         or the key is not valid (unknown, revoked, expired after a rotation, \
                         or its tenant deleted)",
                    )],
                ),
                Guard::AdminToken => {
                    add_codes(
                        op,
                        401,
                        &[(
                            "unauthorized",
                            "the `Authorization: Bearer <HOOKLINE_ADMIN_TOKEN>` header is \
                             missing, malformed or wrong",
                        )],
                    );
                    add_codes(
                        op,
                        404,
                        &[(
                            "not_found",
                            "the admin API is disabled: HOOKLINE_ADMIN_TOKEN is not set",
                        )],
                    );
                }
            }
        }
    }
}

/// What a status means, as the first line of its description.
fn title(status: &str) -> &'static str {
    match status {
        "400" => "The request is malformed or breaks a rule",
        "401" => "Not authenticated",
        "403" => "Not allowed from this client",
        "404" => "Not found",
        "408" => "The request was not received and answered in time; nothing was stored",
        "409" => "The request conflicts with the current state",
        "410" => "Gone",
        "413" => "The body is too large",
        "415" => "The body is not JSON, or is encoded",
        "429" => "Too many requests from this client",
        "422" => "The request was understood but cannot be carried out",
        "500" => "An internal error",
        "502" => "A provider Hookline called failed",
        "503" => "The service cannot answer right now",
        _ => "An error",
    }
}

/// `(code, explanation)` pairs of an error response description written
/// as `- \`code\`: explanation` lines.
fn codes_of(description: &str) -> Vec<(String, String)> {
    description
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("- `")?;
            let (code, text) = rest.split_once("`: ")?;
            Some((code.to_string(), text.to_string()))
        })
        .collect()
}

/// Adds error codes to the `status` response of `op` (creating it).
fn add_codes(op: &mut Operation, status: u16, codes: &[(&str, &str)]) {
    let response = op
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(Answer::new("")));
    if let RefOr::T(response) = response {
        for (code, text) in codes {
            if !response.description.is_empty() {
                response.description.push('\n');
            }
            response
                .description
                .push_str(&format!("- `{code}`: {text}"));
        }
    }
}

fn string_schema(pattern: Option<&str>) -> RefOr<utoipa::openapi::Schema> {
    let mut schema = ObjectBuilder::new().schema_type(Type::String);
    if let Some(p) = pattern {
        schema = schema.pattern(Some(p));
    }
    RefOr::T(schema.build().into())
}

/// The errors and headers every operation shares, from the facts the
/// router acts on: a path with parameters is checked by the request
/// layer (`invalid_path`), a query string by `ApiQuery`
/// (`invalid_query`), a body by `ApiJson`/`OptionalJson` (400/413/415);
/// guarded operations reach the database (503); writes (every
/// non-`GET`) may answer with the consistency header and, when a commit
/// outlives the timeout, `outcome_unknown`.
pub fn finish(api: &mut OpenApi) {
    // `CustomHeaders::parse`, as far as a schema can say it (the names
    // Hookline sets itself are refused too).
    for component in ["CreateSubscriptionRequest", "UpdateSubscriptionRequest"] {
        custom_headers(api, component);
    }
    // A PATCH that changes nothing is refused (`bad_request`).
    for component in ["UpdateSubscriptionRequest", "UpdateEventTypeRequest"] {
        if let Some(RefOr::T(Schema::Object(object))) = api
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut(component))
        {
            object.min_properties = Some(1);
        }
    }
    // `CreateSubscriptionRequest::into_command`: the filter as `events` or
    // as `event`, exactly one of the two (a `null` counts as absent).
    exactly_one_of(
        api,
        "CreateSubscriptionRequest",
        &[("events", Type::Array), ("event", Type::String)],
    );
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, op) in operations_mut(item) {
            let write = method != "get";
            // Behind a guard that always asks for credentials (an
            // operation that also accepts none, like `/metrics`, is not).
            let guarded = op.security.as_ref().is_some_and(|alternatives| {
                !alternatives.iter().any(|r| {
                    serde_json::to_value(r)
                        .is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
                })
            });
            let has_query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| p.parameter_in == ParameterIn::Query);
            let has_body = op.request_body.is_some();
            // `POST /in/{source_id}` reads the provider's raw bytes (no
            // JSON extractor, any content type): its body errors are its own.
            let raw_body = path.starts_with("/in/");
            // Neither a parameter nor a body is ever JSON `null` (an
            // optional body is an empty one; `null` is refused).
            for p in op.parameters.iter_mut().flatten() {
                if let Some(schema) = p.schema.as_mut() {
                    not_null(schema);
                }
            }
            if let Some(body) = op.request_body.as_mut() {
                for media in body.content.values_mut() {
                    if let Some(schema) = media.schema.as_mut() {
                        not_null(schema);
                    }
                }
            }
            let mut bad = vec![];
            if path.contains('{') {
                bad.push((
                    "invalid_path",
                    "the path does not decode to UTF-8 text (check its %-escapes)",
                ));
            }
            // `shapes::refuse_unexpected`.
            let refusing = super::shapes::refuses(path);
            if has_query {
                bad.push((
                    "invalid_query",
                    "an unknown query parameter, or one of the wrong type (`limit=ten`)",
                ));
            } else if refusing {
                bad.push((
                    "invalid_query",
                    "a query string: this operation takes no query parameters",
                ));
            }
            if has_body && !raw_body {
                bad.push(("malformed_json", "the body is not valid JSON"));
                bad.push((
                    "invalid_body",
                    "the body is not a JSON object of the expected fields (an unknown field, or one of the wrong type)",
                ));
            } else if !has_body && refusing && write {
                bad.push((
                    "invalid_body",
                    "a body other than none or `{}`: this operation takes no body",
                ));
            }
            if !bad.is_empty() {
                add_codes(op, 400, &bad);
            }
            add_codes(
                op,
                408,
                &[(
                    "request_timeout",
                    "reading the request and answering took longer than HOOKLINE_REQUEST_TIMEOUT; nothing was stored",
                )],
            );
            if has_body && !raw_body {
                add_codes(
                    op,
                    413,
                    &[(
                        "payload_too_large",
                        "the body is larger than HOOKLINE_MAX_BODY_BYTES allows",
                    )],
                );
                add_codes(
                    op,
                    415,
                    &[(
                        "unsupported_media_type",
                        "a body was sent without `Content-Type: application/json` (or another `application/*+json`), \
                         or with a `Content-Encoding` other than `identity` (bodies are never decompressed)",
                    )],
                );
            }
            add_codes(
                op,
                500,
                &[(
                    "internal_error",
                    "a bug or an unexpected state; quote the request id when reporting it",
                )],
            );
            if guarded && path.starts_with("/admin") {
                add_codes(
                    op,
                    429,
                    &[(
                        "too_many_requests",
                        "over 100 wrong tokens came from this client's address in ten minutes (with those sent to `/api/v1`); \
                         every request with a token waits until `Retry-After` has passed, the right token included",
                    )],
                );
            }
            // `application::deliveries::PublishService::admit`.
            let pushes_back = (method == "post"
                && (crate::routes::idempotent::PUBLISHING.contains(&path.as_str())
                    || path.ends_with("/test")))
                || path.starts_with("/in/");
            if pushes_back {
                add_codes(
                    op,
                    503,
                    &[(
                        "backlog_full",
                        "the delivery backlog stayed at its bound for 2 s (and this tenant holds a large share of it, \
                         or it is at twice its bound); nothing was stored, retry shortly",
                    )],
                );
            }
            if guarded {
                let mut unavailable = vec![(
                    "unavailable",
                    "the database is unreachable right now; retry later",
                )];
                if write {
                    unavailable.push((
                        "outcome_unknown",
                        "the changes were being committed when the request took over twice HOOKLINE_REQUEST_TIMEOUT; \
                         look the request id up with GET /v1/requests/{request_id}, and repeat it only with the same Idempotency-Key",
                    ));
                }
                add_codes(op, 503, &unavailable);
            }
            if method == "post"
                && path.starts_with("/v1/")
                && !crate::routes::idempotent::PUBLISHING.contains(&path.as_str())
            {
                idempotent(op);
            }
            op.parameters.get_or_insert_with(Vec::new).push(
                ParameterBuilder::new()
                    .name(REQUEST_ID)
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "Names the request (1–128 characters from letters, digits and `-_.:/+=@`); \
                         echoed in the answer and recorded with every event the request causes. \
                         Any other value is ignored and a UUIDv7 is generated instead.",
                    ))
                    .schema(Some(string_schema(None)))
                    .build(),
            );
            for (status, response) in op.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                response.headers.insert(
                    REQUEST_ID.to_string(),
                    HeaderBuilder::new()
                        .schema(string_schema(Some("^[A-Za-z0-9._:/+=@-]{1,128}$")))
                        .description(Some(
                            "The request's id: the client's `X-Request-Id` if valid, otherwise a generated UUIDv7.",
                        ))
                        .build(),
                );
                if write && status.starts_with('2') {
                    response.headers.insert(
                        crate::routes::CONSISTENCY_HEADER.to_string(),
                        HeaderBuilder::new()
                            .schema(string_schema(Some("^pending$")))
                            .description(Some(
                                "`pending` when the read models had not caught up with this write within the wait \
                                 (the write is durable; lists may not show it for a moment).",
                            ))
                            .build(),
                    );
                }
                if status.starts_with('4') || status.starts_with('5') {
                    shape_error(status, response, !path.starts_with("/in/"));
                }
            }
        }
    }
}

/// What `idempotent::remember_v1` adds to a `/v1` POST: the header and
/// its refusals.
fn idempotent(op: &mut Operation) {
    op.parameters.get_or_insert_with(Vec::new).push(
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retry safe: a repeat with the same key and the same body within 12 hours is not run again                  and gets the first successful answer again (with `Idempotent-Replayed: true`). An answer that was                  not a success is not kept. 1–255 visible ASCII characters; keys are per tenant and per path.",
            ))
            .schema(Some(string_schema(Some("^[!-~]{1,255}$"))))
            .build(),
    );
    add_codes(
        op,
        400,
        &[(
            "validation_error",
            "`idempotency_key`: the Idempotency-Key header is not 1–255 visible ASCII characters",
        )],
    );
    add_codes(
        op,
        409,
        &[
            (
                "idempotency_key_reused",
                "the Idempotency-Key was used for a different request (another body) within 12 hours",
            ),
            (
                "request_in_progress",
                "a request with this Idempotency-Key is still being answered; repeat it in a moment",
            ),
            (
                "idempotency_answer_lost",
                "the first request with this Idempotency-Key was stored, but its process stopped before its answer was kept; it is not run again (the detail names its request id)",
            ),
        ],
    );
}

/// Takes `null` out of a schema (`type: [T, null]` or `oneOf: [null, …]`).
fn not_null(schema: &mut RefOr<Schema>) {
    let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    let replacement = match schema {
        RefOr::T(Schema::Object(object)) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                object.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
            None
        }
        RefOr::T(Schema::OneOf(one_of)) => {
            one_of.items.retain(|item| !is_null(item));
            match one_of.items.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(r) = replacement {
        *schema = r;
    }
}

/// The `headers` map of `component`: at most 20 entries, token names of
/// 1–256 characters, values of printable ASCII up to 4096 bytes without
/// leading or trailing spaces.
fn custom_headers(api: &mut OpenApi, component: &str) {
    let Some(RefOr::T(Schema::Object(object))) = api
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(component))
    else {
        return;
    };
    let Some(RefOr::T(Schema::Object(headers))) = object.properties.get_mut("headers") else {
        return;
    };
    headers.max_properties = Some(20);
    headers.property_names = Some(Box::new(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$"))
            .build()
            .into(),
    ));
    headers.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(4096))
            .pattern(Some("^([!-~]([ -~]*[!-~])?)?$"))
            .build()
            .into(),
    ))));
}

/// Requires exactly one of `alternatives` (non-null) in the object schema
/// `component`: `allOf: [the schema, oneOf: [{required: [a]}, …]]`.
fn exactly_one_of(api: &mut OpenApi, component: &str, alternatives: &[(&str, Type)]) {
    let Some(schemas) = api.components.as_mut().map(|c| &mut c.schemas) else {
        return;
    };
    let Some(schema) = schemas.remove(component) else {
        return;
    };
    let mut one_of = OneOfBuilder::new();
    for (name, ty) in alternatives {
        one_of = one_of.item(
            ObjectBuilder::new()
                .required(*name)
                .property(*name, ObjectBuilder::new().schema_type(ty.clone())),
        );
    }
    schemas.insert(
        component.to_string(),
        RefOr::T(AllOfBuilder::new().item(schema).item(one_of).build().into()),
    );
}

/// An error response: its title and codes, the `Error` body, and an
/// example with its first code; a 401 of a bearer-guarded operation says
/// so in `WWW-Authenticate` (the inbound sources' 401s, about signatures,
/// do not).
fn shape_error(status: &str, response: &mut Answer, bearer: bool) {
    let codes = codes_of(&response.description);
    response.description = format!(
        "{}. `code` is one of:\n\n{}",
        title(status),
        codes
            .iter()
            .map(|(code, text)| format!("- `{code}`: {text}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    if status == "401" && bearer {
        response.headers.insert(
            "WWW-Authenticate".to_string(),
            HeaderBuilder::new()
                .schema(string_schema(Some("^Bearer$")))
                .description(Some("`Bearer`"))
                .build(),
        );
    }
    if status == "429" {
        response.headers.insert(
            "Retry-After".to_string(),
            HeaderBuilder::new()
                .schema(string_schema(Some("^[0-9]+$")))
                .description(Some("Seconds to wait before trying again."))
                .build(),
        );
    }
    let example = codes.first().map(|(code, text)| {
        json!({
            "code": code,
            "detail": text.replace('`', ""),
            "request_id": examples::REQUEST_ID,
        })
    });
    response.content.insert(
        "application/json".to_string(),
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Error")))
            .example(example)
            .build(),
    );
}

/// The document served at `GET /openapi.json`, serialised once.
#[derive(Debug, Clone)]
pub struct Document(pub Bytes);

/// The document as served and as committed in `docs/openapi.json`:
/// pretty-printed, with a final newline.
///
/// # Errors
/// When serialising fails (it does not for this document).
pub fn to_json(api: &OpenApi) -> Result<Bytes, serde_json::Error> {
    // utoipa 5.5 serialises a Link's `operationId` as `operation_id`;
    // rename it, and check that only links' keys were renamed.
    let text = api
        .to_pretty_json()?
        .replace("\"operation_id\": ", "\"operationId\": ");
    let (operations, links) = operations(api).iter().fold((0, 0), |(o, l), (_, _, op)| {
        let links: usize = op
            .responses
            .responses
            .values()
            .map(|r| match r {
                RefOr::T(r) => r.links.len(),
                RefOr::Ref(_) => 0,
            })
            .sum();
        (o + 1, l + links)
    });
    let value: Value = serde_json::from_str(&text)?;
    if count_keys(&value, "operationId") != operations + links {
        return Err(serde::ser::Error::custom(
            "renaming the links' operation_id touched another key",
        ));
    }
    Ok(Bytes::from(text + "\n"))
}

fn count_keys(value: &Value, key: &str) -> usize {
    match value {
        Value::Object(map) => {
            usize::from(map.contains_key(key))
                + map.values().map(|v| count_keys(v, key)).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(|v| count_keys(v, key)).sum(),
        _ => 0,
    }
}

/// This document
///
/// The OpenAPI 3.1 description of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "get_openapi",
    tag = "service",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", body = Object,
            content_type = "application/json",
            example = json!({"openapi": "3.1.0", "info": {"title": "Hookline", "version": "0.1.0"}, "paths": {}})),
    )
)]
pub async fn serve(Extension(Document(body)): Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Every operation as `(METHOD, path)`, for tests and tools.
pub fn operations(api: &OpenApi) -> Vec<(String, String, Operation)> {
    let mut out = vec![];
    for (path, item) in &api.paths.paths {
        let mut item = item.clone();
        for (method, op) in operations_mut(&mut item) {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

/// The JSON of each operation's examples with where they must validate:
/// `(operation_id, what, example, schema)`.
pub fn examples_with_schemas(doc: &Value) -> Vec<(String, String, Value, Value)> {
    let mut out = vec![];
    let Some(paths) = doc["paths"].as_object() else {
        return out;
    };
    for item in paths.values() {
        let Some(item) = item.as_object() else {
            continue;
        };
        for op in item.values() {
            let id = op["operationId"].as_str().unwrap_or("?").to_string();
            let mut media = BTreeMap::new();
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (ct, m) in content {
                    media.insert(format!("request {ct}"), m.clone());
                }
            }
            if let Some(responses) = op["responses"].as_object() {
                for (status, r) in responses {
                    if let Some(content) = r["content"].as_object() {
                        for (ct, m) in content {
                            media.insert(format!("response {status} {ct}"), m.clone());
                        }
                    }
                }
            }
            for (what, m) in media {
                if let Some(example) = m.get("example") {
                    out.push((id.clone(), what, example.clone(), m["schema"].clone()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
