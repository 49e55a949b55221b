//! An aggregate's history as clients and auditors see it: every event in
//! order with its position, time and metadata; sealed values are shown as
//! `"[sealed]"`, never as ciphertext or plaintext.

use crate::error::AppError;
use crate::pagination::{parse_limit, Page};
use crate::ports::{EventLog, StoredEvent};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hookline_domain::{TenantId, ValidationError};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub sequence: i64,
    pub position: i64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    pub payload: Value,
    pub metadata: Value,
}

impl HistoryEntry {
    pub fn from_stored(event: StoredEvent) -> Self {
        Self {
            sequence: event.sequence,
            position: event.position,
            event_type: event.event_type,
            event_version: event.event_version,
            recorded_at: event.recorded_at,
            payload: mask_sealed(event.payload.to_value()),
            metadata: event.metadata.to_value(),
        }
    }
}

/// Which page of a history a client asks for: at most `limit` events
/// after sequence `after` (oldest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRequest {
    pub after: i64,
    pub limit: u32,
}

/// `after` for a history from its first event (sequences start at 0 or 1).
pub const FROM_START: i64 = -1;

impl Default for HistoryRequest {
    fn default() -> Self {
        Self {
            after: FROM_START,
            limit: crate::pagination::DEFAULT_LIMIT,
        }
    }
}

impl HistoryRequest {
    /// A client's `limit` (1–100, default 100) and `cursor` (the
    /// `next_cursor` of the previous page), checked.
    ///
    /// # Errors
    /// A validation error naming `limit` or `cursor`.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, AppError> {
        Ok(Self {
            after: cursor.map(decode_cursor).transpose()?.unwrap_or(FROM_START),
            limit: parse_limit(limit)?,
        })
    }
}

fn encode_cursor(sequence: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("seq:{sequence}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, AppError> {
    let bad = || {
        AppError::invalid(ValidationError::new(
            "cursor",
            "is not a cursor returned by this API (use next_cursor from the previous page)",
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    let sequence: i64 = text
        .strip_prefix("seq:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    if sequence < 0 {
        return Err(bad());
    }
    Ok(sequence)
}

/// One page of an aggregate's history, with who owns the aggregate (the
/// tenant of its first event; `None` when it has no events).
#[derive(Debug)]
pub struct HistoryPage {
    pub owner: Option<TenantId>,
    pub page: Page<HistoryEntry>,
}

/// One page of the history of an aggregate `tenant` owns; `None` when it
/// has no events or another tenant's are (the caller answers 404).
///
/// # Errors
/// Storage errors.
pub async fn read_owned_page(
    log: &dyn EventLog,
    aggregate_type: &str,
    aggregate_id: &str,
    request: HistoryRequest,
    tenant: TenantId,
) -> Result<Option<Page<HistoryEntry>>, AppError> {
    let history = read_page(log, aggregate_type, aggregate_id, request).await?;
    Ok((history.owner == Some(tenant)).then_some(history.page))
}

/// Reads one page of an aggregate's history from the log.
///
/// # Errors
/// Storage errors.
pub async fn read_page(
    log: &dyn EventLog,
    aggregate_type: &str,
    aggregate_id: &str,
    request: HistoryRequest,
) -> Result<HistoryPage, AppError> {
    let mut events = log
        .aggregate_history_after(
            aggregate_type,
            aggregate_id,
            request.after,
            request.limit.saturating_add(1),
        )
        .await?;
    let owner = if request.after == FROM_START {
        events.first().and_then(StoredEvent::meta)
    } else {
        log.aggregate_history_after(aggregate_type, aggregate_id, FROM_START, 1)
            .await?
            .first()
            .and_then(StoredEvent::meta)
    }
    .map(|m| m.tenant_id);
    let more = events.len() > request.limit as usize;
    events.truncate(request.limit as usize);
    let next_cursor = if more {
        events.last().map(|e| encode_cursor(e.sequence))
    } else {
        None
    };
    Ok(HistoryPage {
        owner,
        page: Page {
            data: events.into_iter().map(HistoryEntry::from_stored).collect(),
            next_cursor,
        },
    })
}

/// Replaces every sealed object (`{alg, key_id, nonce, ciphertext}`) with
/// the string `"[sealed]"`.
pub fn mask_sealed(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            if map.contains_key("ciphertext")
                && map.contains_key("nonce")
                && map.contains_key("key_id")
            {
                Value::String("[sealed]".into())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, mask_sealed(v))).collect())
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(mask_sealed).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_cursors_are_sequences_this_api_made() {
        let request = HistoryRequest::parse(Some(2), Some(&encode_cursor(7))).unwrap();
        assert_eq!(request, HistoryRequest { after: 7, limit: 2 });
        assert_eq!(
            HistoryRequest::parse(None, None).unwrap(),
            HistoryRequest::default()
        );
        for bad in [
            "",
            "not base64!",
            &URL_SAFE_NO_PAD.encode("seq:-3"),
            &URL_SAFE_NO_PAD.encode("7"),
            &URL_SAFE_NO_PAD.encode("seq:99999999999999999999"),
        ] {
            assert!(HistoryRequest::parse(None, Some(bad)).is_err(), "{bad}");
        }
        assert!(HistoryRequest::parse(Some(0), None).is_err());
        assert!(HistoryRequest::parse(Some(101), None).is_err());
    }

    #[test]
    fn sealed_values_are_masked_at_any_depth() {
        let v = json!({"type": "Subscribed", "secret": {"alg": "a", "key_id": "k", "nonce": "n", "ciphertext": "c"},
                       "nested": [{"alg": "a", "key_id": "k", "nonce": "n", "ciphertext": "c"}], "url": "https://x"});
        let m = mask_sealed(v);
        assert_eq!(m["secret"], "[sealed]");
        assert_eq!(m["nested"][0], "[sealed]");
        assert_eq!(m["url"], "https://x");
    }
}
