//! An endpoint's statistics
//! (`/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats`), over a window of
//! at most 28 days as in Svix: its attempts by result, and its messages
//! still waiting for an attempt or not sent because it was disabled.

use super::error::{SvixError, SvixResult};
use super::extract::Params;
use super::{app, endpoint};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// The longest window, and the default one (ending now).
const WINDOW: Duration = Duration::days(28);
/// Slack on the longest window, so `now - 28 days` passes whatever the
/// clocks (Svix's).
const SLACK: Duration = Duration::minutes(5);

/// `EndpointStats`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EndpointStats)]
pub struct EndpointStatsOut {
    /// Attempts that got a 2xx.
    pub success: i64,
    /// Messages waiting for their first attempt or a retry.
    pub pending: i64,
    /// Always `0`: Hookline records an attempt once it is made.
    pub sending: i64,
    /// Attempts that failed (each one, retried or not).
    pub fail: i64,
    /// Messages not sent because the endpoint was disabled.
    pub canceled: i64,
}

/// The window `[since, until)` the query asks for.
fn window(params: &Params, now: DateTime<Utc>) -> SvixResult<(DateTime<Utc>, DateTime<Utc>)> {
    let invalid = |detail: String| SvixError::bad_request("invalid_range", detail);
    let until = params.time("until")?.unwrap_or(now);
    if until > now {
        return Err(invalid("'until' cannot be in the future".into()));
    }
    let since = params.time("since")?.unwrap_or(until - WINDOW);
    if until - since > WINDOW + SLACK {
        return Err(invalid(format!(
            "'since' cannot be more than 28 days before 'until' ({})",
            super::extract::time(until)
        )));
    }
    if since >= until {
        return Err(invalid("'since' must be before 'until'".into()));
    }
    Ok((since, until))
}

/// Endpoint Stats
///
/// In `[since, until)` (default: the 28 days until now; at most 28 days,
/// `until` not in the future): `success` and `fail` count the endpoint's
/// attempts started then, `pending` and `canceled` its messages from then
/// that wait for an attempt or were not sent because it was disabled.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats",
    operation_id = "v1.endpoint.get-stats",
    tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The application's id (`app_…`) or uid."), ("endpoint_id" = String, Path, description = "The endpoint's id (`ep_…`) or uid."),
        ("since" = Option<String>, Query, format = DateTime, description = "The window's start (default: 28 days before `until`)."),
        ("until" = Option<String>, Query, format = DateTime, description = "The window's end (default: now; not in the future)."),
    ),
    responses(
        (status = 200, description = "The counts.", body = EndpointStatsOut),
        (status = 400, description = "- `invalid_range`: `until` is in the future, the window is longer than 28 days, or `since` is not before `until`"),
        (status = 404, description = "- `not_found`: no such application, or it has no such endpoint"),
    )
)]
async fn stats(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    params: Params,
) -> SvixResult<Json<EndpointStatsOut>> {
    let (since, until) = window(&params, Utc::now())?;
    let tenant = app(&state, &app_id).await?;
    let target = endpoint(&state, tenant.id, &endpoint_id).await?;
    let counts = state
        .deliveries
        .subscription_stats(tenant.id, target.id, since, until)
        .await?;
    Ok(Json(EndpointStatsOut {
        success: counts.succeeded,
        pending: counts.pending,
        sending: 0,
        fail: counts.failed,
        canceled: counts.skipped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::from_query(query)
    }

    #[test]
    fn the_window_is_28_days_at_most_and_not_in_the_future() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(window(&params(""), now).unwrap(), (now - WINDOW, now));
        let since = now - WINDOW - Duration::minutes(4);
        assert_eq!(
            window(&params("since=2026-11-06T11:56:00Z"), now).unwrap(),
            (since, now)
        );
        for bad in [
            "since=2026-11-06T11:54:00Z",
            "until=2026-12-04T12:00:01Z",
            "since=2026-12-04T12:00:00Z",
            "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
        ] {
            assert!(
                matches!(window(&params(bad), now), Err(SvixError::Http { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            window(&params("since=yesterday"), now),
            Err(SvixError::Validation(_))
        ));
    }
}
