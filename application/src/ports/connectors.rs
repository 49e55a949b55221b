//! Ports of the connectors: the Siigo API as Hookline uses it to
//! provision webhook subscriptions at Siigo. The adapter owns the wire
//! contract (docs/connectors/siigo.md): authentication, the token cache,
//! retries and TLS.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where Siigo is and who calls it. Debug never prints the credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiigoAccount {
    /// `https://api.siigo.com`, or a sandbox's base URL.
    pub base_url: String,
    pub username: String,
    pub access_key: String,
    /// The seed's OAuth-style client credentials: kept (sealed), not sent
    /// to the current Siigo API.
    pub client_id: String,
    pub client_secret: String,
    /// Sent as `Partner-Id` on every call.
    pub partner_id: String,
}

impl fmt::Debug for SiigoAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiigoAccount")
            .field("base_url", &self.base_url)
            .field("partner_id", &self.partner_id)
            .finish_non_exhaustive()
    }
}

/// One webhook subscription to create at Siigo (one topic).
#[derive(Clone, PartialEq, Eq)]
pub struct SiigoWebhookRequest {
    pub url: String,
    pub topic: String,
    /// Sent as `name` (a description; Siigo may ignore it).
    pub name: Option<String>,
    /// Custom headers Siigo is asked to send with each delivery.
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for SiigoWebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiigoWebhookRequest")
            .field("url", &self.url)
            .field("topic", &self.topic)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A webhook subscription as Siigo answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiigoWebhook {
    pub id: String,
    pub topic: String,
    pub company_key: Option<String>,
}

/// Why a call to Siigo did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamFailure {
    /// Siigo refused what was asked (a 4xx other than 401, e.g. an unknown
    /// topic): not retried.
    #[error("Siigo refused the request ({status}): {detail}")]
    Refused { status: u16, detail: String },
    /// The credentials were refused, also after one fresh token.
    #[error("Siigo refused the credentials: {0}")]
    Unauthorized(String),
    /// Siigo could not be reached or kept failing (5xx, timeouts) after
    /// the retries.
    #[error("Siigo is unavailable: {0}")]
    Unavailable(String),
    /// Siigo answered something that is not its documented shape.
    #[error("Siigo answered unexpectedly: {0}")]
    Protocol(String),
}

#[async_trait]
pub trait SiigoApi: Send + Sync {
    /// Creates one webhook subscription (one topic).
    ///
    /// # Errors
    /// An [`UpstreamFailure`].
    async fn create_webhook(
        &self,
        account: &SiigoAccount,
        request: &SiigoWebhookRequest,
    ) -> Result<SiigoWebhook, UpstreamFailure>;

    /// Deletes one webhook subscription (gone already counts as deleted).
    ///
    /// # Errors
    /// An [`UpstreamFailure`].
    async fn delete_webhook(&self, account: &SiigoAccount, id: &str)
        -> Result<(), UpstreamFailure>;
}
