//! What clients ask of subscriptions, as typed values: the API turns
//! request bodies and query strings into these, so the service never sees
//! raw text.

use crate::pagination::PageRequest;
use chrono::{DateTime, Utc};
use hookline_domain::channel::Channels;
use hookline_domain::metadata::Metadata;
use hookline_domain::subscription::{CustomHeaders, Description, PayloadFormat, RateLimit};
use hookline_domain::uid::Uid;
use hookline_domain::{
    EventFilter, EventPattern, SignatureScheme, SigningSecret, SubscriptionId, TargetUrl,
};
use std::collections::BTreeMap;

/// Creates a subscription; a secret is generated when none is given.
#[derive(Debug, Clone)]
pub struct CreateSubscription {
    pub url: TargetUrl,
    pub events: EventFilter,
    pub secret: Option<SigningSecret>,
    pub headers: CustomHeaders,
    pub description: Option<Description>,
    pub signature_scheme: SignatureScheme,
    /// Attempts per second (`None`: no limit).
    pub rate_limit: Option<RateLimit>,
    pub payload_format: PayloadFormat,
    /// `None`: every channel.
    pub channels: Option<Channels>,
    /// Unique among the tenant's subscriptions that are not deleted.
    pub uid: Option<Uid>,
    pub metadata: Metadata,
    /// Created disabled, for this reason.
    pub disabled: Option<String>,
    /// Allow another active subscription with the same URL and events
    /// (refused with 409 `duplicate_subscription` otherwise).
    pub allow_duplicates: bool,
}

impl CreateSubscription {
    /// A subscription with Hookline's defaults for everything but its URL
    /// and events.
    pub fn new(url: TargetUrl, events: EventFilter) -> Self {
        Self {
            url,
            events,
            secret: None,
            headers: CustomHeaders::default(),
            description: None,
            signature_scheme: SignatureScheme::default(),
            rate_limit: None,
            payload_format: PayloadFormat::default(),
            channels: None,
            uid: None,
            metadata: Metadata::default(),
            disabled: None,
            allow_duplicates: false,
        }
    }
}

/// A change to a subscription's custom headers alone.
#[derive(Debug, Clone)]
pub enum HeadersChange {
    /// These and no others.
    Replace(CustomHeaders),
    /// Remove `delete`, then set (a value) or remove (`None`) those in
    /// `set`; names compare without case.
    Patch {
        delete: Vec<String>,
        set: BTreeMap<String, Option<String>>,
    },
}

/// Disables (with a reason) or enables a subscription as part of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    Disable(String),
    Enable,
}

/// A partial update: `None` leaves a field as it is;
/// `description: Some(None)` clears it, an empty `headers` removes them.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChanges {
    pub url: Option<TargetUrl>,
    pub events: Option<EventFilter>,
    pub headers: Option<CustomHeaders>,
    pub description: Option<Option<Description>>,
    pub signature_scheme: Option<SignatureScheme>,
    /// `Some(None)` listens on every channel again.
    pub channels: Option<Option<Channels>>,
    /// `Some(None)` removes the uid.
    pub uid: Option<Option<Uid>>,
    pub metadata: Option<Metadata>,
    pub status: Option<StatusChange>,
    /// As in [`CreateSubscription::allow_duplicates`].
    pub allow_duplicates: bool,
    /// `Some(None)` removes the limit.
    pub rate_limit: Option<Option<RateLimit>>,
    /// Refuse the changes (409 `changed_meanwhile`) unless the
    /// subscription's `updated_at` is still this: they were made from
    /// that version.
    pub unchanged_since: Option<DateTime<Utc>>,
}

impl SubscriptionChanges {
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.events.is_none()
            && self.headers.is_none()
            && self.description.is_none()
            && self.signature_scheme.is_none()
            && self.channels.is_none()
            && self.uid.is_none()
            && self.metadata.is_none()
            && self.status.is_none()
            && self.rate_limit.is_none()
    }
}

/// Which subscriptions to list.
#[derive(Debug, Clone, Default)]
pub struct ListSubscriptions {
    /// Only those that would receive this event (wildcards count).
    pub event: Option<EventPattern>,
    pub include_inactive: bool,
    /// With `include_inactive`: disabled ones but not deleted ones.
    pub exclude_deleted: bool,
    /// Only those in this state.
    pub status: Option<crate::ports::ListedStatus>,
    /// Only those whose URL or description contains this text (any case).
    pub search: Option<String>,
    /// Only these (a portal link scoped to some subscriptions).
    pub only: Option<Vec<SubscriptionId>>,
    pub page: PageRequest,
}

/// How to read one subscription.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadSubscription {
    /// Deleted ones too.
    pub include_inactive: bool,
    /// As the log described it at this time.
    pub as_of: Option<DateTime<Utc>>,
}
