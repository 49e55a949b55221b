//! Schemas for values the DTOs hold as domain types or as checked strings.
//! The domain stays free of OpenAPI: these doc-only types list the values
//! exactly as the domain serialises or accepts them, and the tests below
//! fail when the two drift apart.

use serde::Serialize;
use std::borrow::Cow;
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::ToSchema;

/// Which signature a subscription's deliveries carry: Standard Webhooks
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`), the seeds'
/// legacy schemes `X-Signature: sha256=<hex>` (`hmac-sha256-hex`) and
/// `x-inflow-hmac-sha256: <base64>` (`hmac-sha256-base64`), or Svix's
/// (`svix-id`, `svix-timestamp`, `svix-signature` and the `webhook-*` set,
/// the id being the message id, the same for every subscription).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SignatureScheme)]
pub enum SignatureSchemeSchema {
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks,
    #[serde(rename = "hmac-sha256-hex")]
    HmacSha256Hex,
    #[serde(rename = "hmac-sha256-base64")]
    HmacSha256Base64,
    #[serde(rename = "svix")]
    Svix,
}

/// What a subscription's deliveries carry as their body: Hookline's
/// envelope (`hookline`: `{id, timestamp, event, data, tenant_id, …}`) or
/// the published event's `data` exactly (`raw`, what Svix endpoints get).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PayloadFormat)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormatSchema {
    Hookline,
    Raw,
}

/// `active` receives deliveries; `disabled` is kept but receives nothing
/// until enabled (also set automatically after a 410 Gone); `deleted` is
/// soft-deleted (history only).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SubscriptionStatus)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatusSchema {
    Active,
    Disabled,
    Deleted,
}

/// `pending` waits for its next attempt; `delivered` got a 2xx; `failed`
/// failed in a way retrying would not fix; `abandoned` ran out of retries;
/// `skipped` was not attempted because its subscription was disabled (a
/// recovery after enabling it sends it).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeliveryStatus)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusSchema {
    Pending,
    Delivered,
    Failed,
    Abandoned,
    Skipped,
}

/// Why an attempt got no 2xx.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ErrorKind)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKindSchema {
    HttpStatus,
    Timeout,
    Connect,
    Dns,
    Tls,
    BlockedTarget,
    InvalidTarget,
    Other,
}

/// `deleted` tenants are soft-deleted: their keys stop working.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TenantStatus)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatusSchema {
    Active,
    Deleted,
}

/// What a source verifies: `inflow` (`x-inflow-hmac-sha256`, base64
/// HMAC-SHA256 of the raw body), `siigo` and `header-secret` (the secret
/// itself in a header), `standard-webhooks` (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`, 5 minutes' tolerance) or
/// `hmac-sha256-hex` (`X-Signature: sha256=<hex>`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SourceKind)]
pub enum SourceKindSchema {
    #[serde(rename = "inflow")]
    Inflow,
    #[serde(rename = "siigo")]
    Siigo,
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks,
    #[serde(rename = "hmac-sha256-hex")]
    HmacSha256Hex,
    #[serde(rename = "header-secret")]
    HeaderSecret,
}

/// `active` accepts webhooks; `deleted` answers 410 and stays in the log.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SourceStatus)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatusSchema {
    Active,
    Deleted,
}

/// `removed` subscriptions were deleted at the provider.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UpstreamStatus)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamStatusSchema {
    Active,
    Removed,
}

/// A schema the derive cannot express (a `pattern` on a string): its
/// component name, description, pattern and example.
macro_rules! string_schema {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $description:literal, $pattern:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;

        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .pattern(Some($pattern))
                    .max_length(Some(100))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

string_schema!(
    /// `EventType` (domain): `EventType::parse`.
    EventNameSchema,
    "EventName",
    "An event name, `resource.action`: ASCII letters, digits and `_` in at least two \
     dot-separated segments, at most 100 characters. Names compare case-sensitively.",
    r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$",
    "invoice.created"
);

string_schema!(
    /// `EventPattern` (domain): `EventPattern::parse`.
    EventPatternSchema,
    "EventPattern",
    "One entry of a subscription's filter: an exact event name (`invoice.created`), a \
     `resource.*` wildcard (`invoice.*`), or `*` for every event; at most 100 characters.",
    r"^(\*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\.\*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+)$",
    "invoice.*"
);

/// `SigningSecret::parse` (domain): 8–500 characters without control
/// characters; one starting with `whsec_` continues in canonical base64
/// (the Standard Webhooks form).
#[derive(Debug)]
pub struct SecretSchema;

/// Canonical base64 after `whsec_`: whole quanta, the last padded with
/// its unused bits zero.
pub const WHSEC_PATTERN: &str = r"^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$";

impl utoipa::PartialSchema for SecretSchema {
    fn schema() -> RefOr<Schema> {
        // Either `whsec_` and canonical base64, or anything not starting
        // with `whsec_` (no look-ahead: spelled out letter by letter).
        let whsec = format!(
            "^(?:{}|(?:[^w]|w[^h]|wh[^s]|whs[^e]|whse[^c]|whsec[^_]))",
            &WHSEC_PATTERN[1..]
        );
        utoipa::openapi::schema::AllOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(8))
                    .max_length(Some(500))
                    .pattern(Some(r"^[^\x00-\x1F\x7F-\x9F]*$")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(whsec)),
            )
            .description(Some(
                "A signing secret: 8–500 characters without control characters; one starting \
                 with `whsec_` must continue in base64 (`whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`).",
            ))
            .examples([serde_json::json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")])
            .into()
    }
}

impl ToSchema for SecretSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SigningSecret")
    }
}

/// A JSON Schema (draft 2020-12): an object, or `true`/`false`.
#[derive(Debug)]
pub struct JsonSchemaSchema;

impl utoipa::PartialSchema for JsonSchemaSchema {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Object))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .description(Some(
                "A JSON Schema (draft 2020-12, at most 64 KiB, no remote `$ref`s): an object, or `true`/`false`.",
            ))
            .examples([serde_json::json!({"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}}})])
            .into()
    }
}

impl ToSchema for JsonSchemaSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("JsonSchema")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hookline_domain::delivery::DeliveryStatus;
    use hookline_domain::outcome::ErrorKind;
    use hookline_domain::subscription::{PayloadFormat, SubscriptionStatus};
    use hookline_domain::tenant::TenantStatus;
    use hookline_domain::SignatureScheme;
    use serde_json::Value;

    fn same<A: Serialize, B: Serialize>(a: &A, b: &B) {
        let (a, b) = (
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap(),
        );
        assert_eq!(a, b);
    }

    /// The schema's `enum` list, as serialised.
    fn listed<T: ToSchema>() -> Vec<Value> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["enum"].as_array().cloned().unwrap_or_default()
    }

    fn values<T: Serialize>(all: impl IntoIterator<Item = T>) -> Vec<Value> {
        all.into_iter()
            .map(|v| serde_json::to_value(v).unwrap())
            .collect()
    }

    // Exhaustive matches: a new domain variant fails to compile here until
    // the schema lists it.
    #[test]
    fn signature_schemes_match_the_domain() {
        for s in SignatureScheme::ALL {
            let doc = match s {
                SignatureScheme::StandardWebhooks => SignatureSchemeSchema::StandardWebhooks,
                SignatureScheme::HmacSha256Hex => SignatureSchemeSchema::HmacSha256Hex,
                SignatureScheme::HmacSha256Base64 => SignatureSchemeSchema::HmacSha256Base64,
                SignatureScheme::Svix => SignatureSchemeSchema::Svix,
            };
            same(&s, &doc);
        }
        assert_eq!(
            listed::<SignatureSchemeSchema>(),
            values(SignatureScheme::ALL)
        );
    }

    #[test]
    fn payload_formats_match_the_domain() {
        for f in PayloadFormat::ALL {
            let doc = match f {
                PayloadFormat::Hookline => PayloadFormatSchema::Hookline,
                PayloadFormat::Raw => PayloadFormatSchema::Raw,
            };
            same(&f, &doc);
        }
        assert_eq!(listed::<PayloadFormatSchema>(), values(PayloadFormat::ALL));
    }

    #[test]
    fn subscription_statuses_match_the_domain() {
        let all = [
            SubscriptionStatus::Active,
            SubscriptionStatus::Disabled,
            SubscriptionStatus::Deleted,
        ];
        for s in all {
            let doc = match s {
                SubscriptionStatus::Active => SubscriptionStatusSchema::Active,
                SubscriptionStatus::Disabled => SubscriptionStatusSchema::Disabled,
                SubscriptionStatus::Deleted => SubscriptionStatusSchema::Deleted,
            };
            same(&s, &doc);
        }
        assert_eq!(listed::<SubscriptionStatusSchema>(), values(all));
    }

    #[test]
    fn delivery_statuses_match_the_domain() {
        for s in DeliveryStatus::ALL {
            let doc = match s {
                DeliveryStatus::Pending => DeliveryStatusSchema::Pending,
                DeliveryStatus::Delivered => DeliveryStatusSchema::Delivered,
                DeliveryStatus::Failed => DeliveryStatusSchema::Failed,
                DeliveryStatus::Abandoned => DeliveryStatusSchema::Abandoned,
                DeliveryStatus::Skipped => DeliveryStatusSchema::Skipped,
            };
            same(&s, &doc);
        }
        assert_eq!(
            listed::<DeliveryStatusSchema>(),
            values(DeliveryStatus::ALL)
        );
    }

    #[test]
    fn error_kinds_match_the_domain() {
        for k in ErrorKind::ALL {
            let doc = match k {
                ErrorKind::HttpStatus => ErrorKindSchema::HttpStatus,
                ErrorKind::Timeout => ErrorKindSchema::Timeout,
                ErrorKind::Connect => ErrorKindSchema::Connect,
                ErrorKind::Dns => ErrorKindSchema::Dns,
                ErrorKind::Tls => ErrorKindSchema::Tls,
                ErrorKind::BlockedTarget => ErrorKindSchema::BlockedTarget,
                ErrorKind::InvalidTarget => ErrorKindSchema::InvalidTarget,
                ErrorKind::Other => ErrorKindSchema::Other,
            };
            same(&k, &doc);
        }
        assert_eq!(listed::<ErrorKindSchema>(), values(ErrorKind::ALL));
    }

    #[test]
    fn tenant_statuses_match_the_domain() {
        let all = [TenantStatus::Active, TenantStatus::Deleted];
        for s in all {
            let doc = match s {
                TenantStatus::Active => TenantStatusSchema::Active,
                TenantStatus::Deleted => TenantStatusSchema::Deleted,
            };
            same(&s, &doc);
        }
        assert_eq!(listed::<TenantStatusSchema>(), values(all));
    }

    #[test]
    fn source_kinds_and_statuses_match_the_domain() {
        use hookline_domain::source::{SourceKind, SourceStatus};
        use hookline_domain::upstream::UpstreamStatus;
        for k in SourceKind::ALL {
            let doc = match k {
                SourceKind::Inflow => SourceKindSchema::Inflow,
                SourceKind::Siigo => SourceKindSchema::Siigo,
                SourceKind::StandardWebhooks => SourceKindSchema::StandardWebhooks,
                SourceKind::HmacSha256Hex => SourceKindSchema::HmacSha256Hex,
                SourceKind::HeaderSecret => SourceKindSchema::HeaderSecret,
            };
            same(&k, &doc);
        }
        assert_eq!(listed::<SourceKindSchema>(), values(SourceKind::ALL));
        let all = [SourceStatus::Active, SourceStatus::Deleted];
        for s in all {
            let doc = match s {
                SourceStatus::Active => SourceStatusSchema::Active,
                SourceStatus::Deleted => SourceStatusSchema::Deleted,
            };
            same(&s, &doc);
        }
        assert_eq!(listed::<SourceStatusSchema>(), values(all));
        let all = [UpstreamStatus::Active, UpstreamStatus::Removed];
        for s in all {
            let doc = match s {
                UpstreamStatus::Active => UpstreamStatusSchema::Active,
                UpstreamStatus::Removed => UpstreamStatusSchema::Removed,
            };
            same(&s, &doc);
        }
        assert_eq!(listed::<UpstreamStatusSchema>(), values(all));
    }
}
