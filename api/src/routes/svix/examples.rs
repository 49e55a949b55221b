//! Send Event Type Example Message
//! (`POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example`): a
//! message with an event type's example as its payload, sent to that one
//! endpoint whatever its filters. It is an ordinary message (listed, in the
//! log); no other endpoint receives it.

use super::error::{Invalid, SvixError, SvixResult};
use super::extract::SvixJson;
use super::messages::{accepted, MessageOut};
use super::{app, context, endpoint, Organisation};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use hookline_application::AppError;
use hookline_domain::EventType;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(send_example))
}

/// Svix's ping: sent as `{"success": true}` without being in the catalogue.
const PING: &str = "svix.ping";

/// `EventExampleIn`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    /// The event type's name.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 3, max_length = 100, pattern = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$")]
    pub event_type: Option<String>,
    /// Which of the schema's `examples` to send (default the first).
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 0)]
    pub example_index: Option<i64>,
}

/// The payload to send as `name`'s example: `examples[index]` of its
/// schema, else the catalogue's example (Hookline's built-in types have
/// one).
fn example(
    schema: Option<&Value>,
    catalogue_example: Option<&Value>,
    index: Option<i64>,
) -> SvixResult<Value> {
    let examples = schema
        .and_then(|s| s.get("examples"))
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty());
    if let Some(examples) = examples {
        let at = index.unwrap_or(0);
        return usize::try_from(at)
            .ok()
            .and_then(|i| examples.get(i))
            .cloned()
            .ok_or_else(|| {
                SvixError::invalid(Invalid::body(
                    "exampleIndex",
                    format!(
                        "the event type's schema has {} examples (0–{})",
                        examples.len(),
                        examples.len() - 1
                    ),
                ))
            });
    }
    if index.is_some_and(|i| i < 0) {
        return Err(SvixError::invalid(Invalid::body(
            "exampleIndex",
            "must be 0 or more",
        )));
    }
    catalogue_example.cloned().ok_or_else(|| {
        SvixError::bad_request(
            "invalid_scheme",
            "Unable to generate example message from event-type schema: it has no examples \
             (add them to the schema's `examples`)",
        )
    })
}

/// Send Event Type Example Message
///
/// Publishes a message of `eventType` whose payload is the type's example
/// (`examples[exampleIndex]` of its schema, else the catalogue's example;
/// `svix.ping` sends `{"success": true}`) to this endpoint only, whatever
/// its filters.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
    operation_id = "v1.endpoint.send-example",
    tag = "Endpoint",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid.")),
    request_body = EventExampleIn,
    responses(
        (status = 200, description = "Sent.", body = MessageOut),
        (status = 400, description = "- `invalid_scheme`: the event type has no example"),
        (status = 404, description = "- `not_found`: no such application, endpoint or event type"),
        (status = 409, description = "- `subscription_inactive`: the endpoint is disabled"),
    )
)]
async fn send_example(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    SvixJson(input): SvixJson<EventExampleIn>,
) -> SvixResult<Response> {
    let raw_name = input
        .event_type
        .ok_or_else(|| SvixError::invalid(Invalid::body("eventType", "field required")))?;
    let name = EventType::parse(&raw_name, "eventType")
        .map_err(|e| SvixError::invalid(Invalid::body("eventType", e.reason)))?;
    let tenant = app(&state, &app_id).await?;
    let target = endpoint(&state, tenant.id, &endpoint_id).await?;
    let payload = if name.as_str() == PING {
        serde_json::json!({"success": true})
    } else {
        let known = match state.catalogue.get(tenant.id, &name, None).await {
            Ok(t) => t,
            Err(AppError::NotFound { .. }) => {
                return Err(SvixError::not_found("Event type not found"))
            }
            Err(e) => return Err(e.into()),
        };
        example(
            known.schema.as_ref(),
            known.example.as_ref(),
            input.example_index,
        )?
    };
    if !payload.is_object() {
        // As a message's payload: the SDKs read payloads as objects.
        return Err(SvixError::invalid(Invalid::body(
            "eventType",
            "the event type's example is not a JSON object; a message's payload must be one",
        )));
    }
    let data = RawValue::from_string(payload.to_string())
        .map_err(|e| SvixError::from(AppError::Internal(e.to_string())))?;
    let ctx = context(&org, request_id, tenant.id);
    let sent = state
        .publish
        .send_example(&ctx, target.id, &name, &data)
        .await?;
    // 200, as Svix answers it (a message create is 202).
    accepted(&state, tenant.id, sent.value.event_id, true, StatusCode::OK).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_examples_come_first_then_the_catalogue_example() {
        let schema = json!({"type": "object", "examples": [{"a": 1}, {"a": 2}]});
        let own = json!({"own": true});
        assert_eq!(
            example(Some(&schema), Some(&own), None).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            example(Some(&schema), Some(&own), Some(1)).unwrap(),
            json!({"a": 2})
        );
        assert!(example(Some(&schema), Some(&own), Some(2)).is_err());
        assert!(example(Some(&schema), None, Some(-1)).is_err());
        let plain = json!({"type": "object"});
        assert_eq!(example(Some(&plain), Some(&own), Some(3)).unwrap(), own);
        assert!(example(Some(&plain), None, None).is_err());
        assert!(example(None, None, None).is_err());
    }
}
