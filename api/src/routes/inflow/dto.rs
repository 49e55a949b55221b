//! InFlow's subscription shapes (`WebHookSubscriptionRequest`,
//! `WebHookSubscription`), camelCase as InFlow spells them.

use crate::routes::openapi::schemas::EventPatternSchema;
use hookline_application::subscriptions::SubscriptionView;
use hookline_domain::subscription::SubscriptionStatus;
use hookline_domain::SubscriptionId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /inflow/{companyId}/webhooks`: InFlow's `WebHookSubscriptionRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebHookSubscriptionRequest {
    /// The subscription's id, a UUID the client generates ("when
    /// inserting, you should specify this by generating a GUID"); an
    /// existing one is updated. Generated when absent.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub web_hook_subscription_id: Option<String>,
    /// The request's id, a UUID: repeating a request with the same id
    /// changes nothing and answers the same subscription.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub web_hook_subscription_request_id: Option<String>,
    /// Where deliveries are POSTed (the same rules as a subscription's
    /// `url`).
    #[serde(default)]
    #[schema(value_type = String, format = "uri", min_length = 10, max_length = 2048, required = true)]
    pub url: Option<String>,
    /// Event names as published (InFlow's are camelCase:
    /// `salesOrder.created`), wildcards allowed; 1–100.
    #[serde(default)]
    #[schema(value_type = Vec<EventPatternSchema>, min_items = 1, max_items = 100, required = true)]
    pub events: Option<Vec<String>>,
}

/// InFlow's `WebHookSubscription` (with the `isDisabled` field its live
/// API also answers).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebHookSubscriptionResponse {
    #[schema(value_type = uuid::Uuid)]
    pub web_hook_subscription_id: SubscriptionId,
    pub url: String,
    pub events: Vec<String>,
    /// The base64 secret deliveries are signed with
    /// (`x-inflow-hmac-sha256`): only in the answer that creates the
    /// subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret: Option<String>,
    /// The subscription is disabled (or deleted) and receives nothing.
    pub is_disabled: bool,
}

impl WebHookSubscriptionResponse {
    pub fn from_view(v: SubscriptionView, with_secret: bool) -> Self {
        Self {
            web_hook_subscription_id: v.id,
            url: v.url,
            events: v.events,
            secret: with_secret.then_some(v.secret),
            is_disabled: v.status != SubscriptionStatus::Active,
        }
    }
}
