//! What clients ask of subscriptions, as typed values: the API turns
//! request bodies and query strings into these, so the service never sees
//! raw text.

use crate::pagination::PageRequest;
use chrono::{DateTime, Utc};
use hookline_domain::subscription::{CustomHeaders, Description, RateLimit};
use hookline_domain::{EventFilter, EventPattern, SignatureScheme, SigningSecret, TargetUrl};

/// Creates a subscription; a secret is generated when none is given.
#[derive(Debug, Clone)]
pub struct CreateSubscription {
    pub url: TargetUrl,
    pub events: EventFilter,
    pub secret: Option<SigningSecret>,
    pub headers: CustomHeaders,
    pub description: Option<Description>,
    pub signature_scheme: SignatureScheme,
    pub rate_limit: Option<RateLimit>,
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
    /// `Some(None)` removes the limit.
    pub rate_limit: Option<Option<RateLimit>>,
}

impl SubscriptionChanges {
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.events.is_none()
            && self.headers.is_none()
            && self.description.is_none()
            && self.signature_scheme.is_none()
            && self.rate_limit.is_none()
    }
}

/// Which subscriptions to list.
#[derive(Debug, Clone, Default)]
pub struct ListSubscriptions {
    /// Only those that would receive this event (wildcards count).
    pub event: Option<EventPattern>,
    pub include_inactive: bool,
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
