//! Writing rows to the log: look up the links the rows follow, link them,
//! insert them in one statement: a transaction of its own, or with an
//! idempotency claim in the same transaction when asked.

use crate::postgres::checkpoints::parse_xid8;
use crate::postgres::log_reader::unavailable;
use crate::postgres::wakeup::LogWakeups;
use hookline_application::audit::chain::{
    canonical, link_all, predecessors, AggregateKey, Unlinked,
};
use hookline_application::listing::{attempted_ids, holds_outcomes_row, listing_message};
use hookline_application::ports::{
    AppendError, Appended, FirstAnswer, IdempotencyClaim, IdempotencyKeys, LogPosition, StoredEvent,
};
use hookline_application::AppError;
use hookline_domain::TenantId;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod gathering;

/// Links remembered from loads, so an append right after a load (recording
/// outcomes) need not look them up again.
const MAX_KNOWN_LINKS: usize = 20_000;

#[derive(Debug, Clone)]
pub struct PgLog {
    pool: PgPool,
    wakeups: LogWakeups,
    known: Arc<Mutex<HashMap<(AggregateKey, i64), String>>>,
    /// Beginnings of listed deliveries the feed of this process read
    /// (ADR 0019), by delivery id, until a load takes them.
    beginnings: Arc<Mutex<HashMap<String, StoredEvent>>>,
    /// Whether listing messages list several deliveries, by message id, as
    /// the feed read them (a message's list never changes).
    several: Arc<Mutex<HashMap<String, bool>>>,
}

pub(crate) fn append_error(e: sqlx::Error) -> AppendError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => AppendError::Conflict,
        _ => AppendError::Other(unavailable(e)),
    }
}

fn decode_error(e: sqlx::Error) -> AppendError {
    AppendError::Other(unavailable(e))
}

impl PgLog {
    pub fn new(pool: PgPool, wakeups: LogWakeups) -> Self {
        Self {
            pool,
            wakeups,
            known: Arc::default(),
            beginnings: Arc::default(),
            several: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn wakeups(&self) -> &LogWakeups {
        &self.wakeups
    }

    /// Remembers the beginnings of listed deliveries the feed read (their
    /// `DeliveryEnqueued`, ADR 0019): the load that records their outcome
    /// takes them from here instead of reading their message again.
    pub fn remember_beginnings(&self, events: impl IntoIterator<Item = StoredEvent>) {
        if let Ok(mut kept) = self.beginnings.lock() {
            for event in events {
                if kept.len() >= MAX_KNOWN_LINKS {
                    kept.clear();
                }
                kept.insert(event.aggregate_id.clone(), event);
            }
        }
    }

    /// The remembered beginnings of `ids`, forgotten once taken.
    pub fn take_beginnings<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a String>,
    ) -> Vec<StoredEvent> {
        let Ok(mut kept) = self.beginnings.lock() else {
            return Vec::new();
        };
        if kept.is_empty() {
            return Vec::new();
        }
        ids.into_iter().filter_map(|id| kept.remove(id)).collect()
    }

    /// Remembers an aggregate's newest link (read with its events).
    pub fn remember(&self, key: AggregateKey, sequence: i64, link: String) {
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= MAX_KNOWN_LINKS {
                known.clear();
            }
            known.insert((key, sequence), link);
        }
    }

    /// The links the rows' first events follow: remembered ones, the rest
    /// in one query. A predecessor that is not there is left out: the
    /// insert then conflicts on its sequence.
    pub async fn previous_links(
        &self,
        conn: &mut PgConnection,
        rows: &[Unlinked],
    ) -> Result<HashMap<AggregateKey, String>, AppendError> {
        let mut links = HashMap::new();
        let (mut types, mut ids, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
        {
            let mut known = self.known.lock().ok();
            for (key, seq) in predecessors(rows) {
                match known.as_mut().and_then(|k| k.remove(&(key.clone(), seq))) {
                    Some(link) => {
                        links.insert(key, link);
                    }
                    None => {
                        types.push(key.0);
                        ids.push(key.1);
                        seqs.push(seq);
                    }
                }
            }
        }
        if ids.is_empty() {
            return Ok(links);
        }
        // A delivery its message's event began (ADR 0019) has no first
        // event of its own: its second follows the message's link.
        let listed: HashMap<AggregateKey, AggregateKey> = types
            .iter()
            .zip(&ids)
            .zip(&seqs)
            .filter(|(_, seq)| **seq == 1)
            .filter_map(|((t, i), _)| {
                let key = (t.clone(), i.clone());
                listing_message(&key).map(|message| (key, message))
            })
            .collect();
        for message in listed.values() {
            types.push(message.0.clone());
            ids.push(message.1.clone());
            seqs.push(1);
        }
        let found = sqlx::query(
            "SELECT e.aggregate_type, e.aggregate_id, e.metadata->>'chain' AS chain
               FROM events e
               JOIN UNNEST($1::text[], $2::text[], $3::bigint[]) AS u(t, i, s)
                 ON e.aggregate_type = u.t AND e.aggregate_id = u.i AND e.sequence = u.s",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await
        .map_err(append_error)?;
        for row in found {
            let key: AggregateKey = (
                row.try_get("aggregate_type").map_err(decode_error)?,
                row.try_get("aggregate_id").map_err(decode_error)?,
            );
            let chain: Option<String> = row.try_get("chain").map_err(decode_error)?;
            let chain = chain.ok_or_else(|| {
                AppendError::Other(AppError::Internal(format!(
                    "{} {} has an event without a chain link",
                    key.0, key.1
                )))
            })?;
            links.insert(key, chain);
        }
        for (delivery, message) in listed {
            if links.contains_key(&delivery) {
                continue;
            }
            if let Some(link) = links.get(&message).cloned() {
                links.insert(delivery, link);
            }
        }
        self.attempted_links(conn, &types, &ids, &seqs, &mut links)
            .await?;
        Ok(links)
    }

    /// Links `rows` after the events stored before them.
    ///
    /// # Errors
    /// Storage errors, or a stored event without a link.
    pub async fn link(
        &self,
        conn: &mut PgConnection,
        rows: &mut [Unlinked],
    ) -> Result<(), AppendError> {
        let mut previous = self.previous_links(conn, rows).await?;
        // Gathered first outcomes come first (ADR 0023): a delivery's later
        // events in the batch follow the link of the row that holds its
        // sequence 2.
        let gathered = rows.iter().take_while(|r| holds_outcomes_row(r)).count();
        let (outcomes, rest) = rows.split_at_mut(gathered);
        link_all(outcomes, &previous);
        for row in outcomes.iter() {
            if let Some(link) = hookline_application::audit::chain::stored_link(&row.metadata) {
                for id in attempted_ids(row) {
                    previous.insert(("Delivery".to_string(), id), link.to_string());
                }
            }
        }
        link_all(rest, &previous);
        Ok(())
    }

    /// Inserts linked rows in one statement; the position of the last.
    async fn insert(
        conn: &mut PgConnection,
        rows: &[Unlinked],
    ) -> Result<Option<LogPosition>, AppendError> {
        if rows.is_empty() {
            return Ok(None);
        }
        let n = rows.len();
        let (mut types, mut ids, mut seqs) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut event_types, mut versions, mut payloads, mut metadata) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in rows {
            types.push(r.aggregate_type.as_str());
            ids.push(r.aggregate_id.as_str());
            seqs.push(r.sequence);
            event_types.push(r.event_type.as_str());
            versions.push(r.event_version.as_str());
            // The text the link hashed (linking keeps it).
            payloads.push(match r.payload_text() {
                Some(text) => std::borrow::Cow::Borrowed(text),
                None => std::borrow::Cow::Owned(canonical(&r.payload)),
            });
            metadata.push(r.metadata.to_string());
        }
        let written = sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT t, i, s, et, v, p::json, m::json
               FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                 AS u(t, i, s, et, v, p, m)
             RETURNING tx_id::text AS tx, global_position",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .bind(&event_types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .fetch_all(&mut *conn)
        .await
        .map_err(append_error)?;
        let mut last: Option<LogPosition> = None;
        for row in written {
            let tx: String = row.try_get("tx").map_err(decode_error)?;
            let position = LogPosition {
                tx_id: parse_xid8(&tx).map_err(decode_error)?,
                position: row.try_get("global_position").map_err(decode_error)?,
            };
            last = last.max(Some(position));
        }
        Ok(last)
    }

    /// Claims an idempotency key (or takes over an expired one); the first
    /// answer when it is alive. A concurrent request with the same key
    /// waits here until the first commits.
    async fn claim(
        conn: &mut PgConnection,
        claim: &IdempotencyClaim<'_>,
    ) -> Result<Option<FirstAnswer>, AppendError> {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, response, created_at, fingerprint)
             VALUES ($1, $2, $3, now(), $5)
             ON CONFLICT (tenant_id, key) DO UPDATE
                SET response = EXCLUDED.response, created_at = EXCLUDED.created_at,
                    fingerprint = EXCLUDED.fingerprint
                WHERE idempotency_keys.created_at < now() - make_interval(secs => $4)
             RETURNING 1",
        )
        .bind(claim.tenant.as_uuid())
        .bind(claim.key)
        .bind(claim.response)
        .bind(claim.ttl.as_secs_f64())
        .bind(claim.fingerprint)
        .fetch_optional(&mut *conn)
        .await
        .map_err(append_error)?;
        if claimed.is_some() {
            return Ok(None);
        }
        let (response, fingerprint) = sqlx::query_as(
            "SELECT response, fingerprint FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        )
        .bind(claim.tenant.as_uuid())
        .bind(claim.key)
        .fetch_one(&mut *conn)
        .await
        .map_err(append_error)?;
        Ok(Some(FirstAnswer {
            response,
            fingerprint,
        }))
    }

    /// Appends `rows` in one transaction (with `claim`'s key, when given),
    /// then wakes the consumers of their aggregate types.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when a sequence is taken (nothing written).
    pub async fn append(
        &self,
        rows: Vec<Unlinked>,
        claim: Option<&IdempotencyClaim<'_>>,
    ) -> Result<Appended, AppendError> {
        match claim {
            Some(claim) => self.append_claimed(rows, claim).await,
            None => self.append_alone(rows).await,
        }
    }

    /// Appends `rows` without a key: the insert is its own transaction
    /// (no `BEGIN` and `COMMIT` round trips). The links it follows are read
    /// before it, outside any transaction: a stored event never changes,
    /// and a predecessor taken meanwhile makes the insert conflict.
    async fn append_alone(&self, rows: Vec<Unlinked>) -> Result<Appended, AppendError> {
        let mut conn = self.pool.acquire().await.map_err(append_error)?;
        let mut rows = self.gather(&mut conn, rows).await?;
        self.link(&mut conn, &mut rows).await?;
        hookline_application::commitment::point_of_no_return();
        let written = Self::insert(&mut conn, &rows).await;
        // Woken unless nothing was written for sure: an error other than a
        // conflict may come after the commit (the connection broke), and
        // a wake-up too many costs a look.
        if !matches!(written, Err(AppendError::Conflict)) {
            self.wake(&rows).await;
        }
        Ok(Appended::Written(written?))
    }

    /// Appends `rows` and claims `claim`'s key in one transaction.
    async fn append_claimed(
        &self,
        rows: Vec<Unlinked>,
        claim: &IdempotencyClaim<'_>,
    ) -> Result<Appended, AppendError> {
        let mut tx = self.pool.begin().await.map_err(append_error)?;
        if let Some(first) = Self::claim(&mut tx, claim).await? {
            tx.rollback().await.map_err(append_error)?;
            return Ok(Appended::Replayed(first));
        }
        let mut rows = self.gather(&mut tx, rows).await?;
        self.link(&mut tx, &mut rows).await?;
        let position = Self::insert(&mut tx, &rows).await?;
        hookline_application::commitment::point_of_no_return();
        let committed = tx.commit().await;
        // Woken even when the commit reports an error: it may have
        // happened (the connection broke after it), and a wake-up too
        // many costs a look.
        self.wake(&rows).await;
        committed.map_err(append_error)?;
        Ok(Appended::Written(position))
    }

    /// After a commit: wakes the consumers of the rows' aggregate types in
    /// this process, and announces the append to the others (ADR 0020).
    pub async fn wake(&self, rows: &[Unlinked]) {
        let mut types: Vec<&str> = rows.iter().map(|e| e.aggregate_type.as_str()).collect();
        // A message's event may list deliveries (ADR 0019).
        if types.contains(&"Message") {
            types.push("Delivery");
        }
        types.sort_unstable();
        types.dedup();
        for t in &types {
            self.wakeups.bump(t);
        }
        self.wakeups.announce(&self.pool, &types).await;
    }

    /// The newest event of any of `aggregates` (type and id), as a log
    /// position: one statement however many.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn last_position(
        &self,
        aggregates: &[(&str, &str)],
    ) -> Result<Option<LogPosition>, sqlx::Error> {
        let (types, ids): (Vec<&str>, Vec<&str>) = aggregates.iter().copied().unzip();
        let row = sqlx::query(
            "SELECT l.tx_id::text AS tx, l.global_position
               FROM unnest($1::text[], $2::text[]) AS a (aggregate_type, aggregate_id)
               CROSS JOIN LATERAL (
                 SELECT tx_id, global_position FROM events e
                  WHERE e.aggregate_type = a.aggregate_type AND e.aggregate_id = a.aggregate_id
                  ORDER BY e.sequence DESC LIMIT 1) l
              ORDER BY l.tx_id DESC, l.global_position DESC LIMIT 1",
        )
        .bind(&types)
        .bind(&ids)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LogPosition {
                tx_id: parse_xid8(&r.try_get::<String, _>("tx")?)?,
                position: r.try_get("global_position")?,
            })
        })
        .transpose()
    }
}

#[async_trait::async_trait]
impl IdempotencyKeys for PgLog {
    async fn first_answer(
        &self,
        tenant: TenantId,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<FirstAnswer>, AppError> {
        let row: Option<(serde_json::Value, Option<String>)> = sqlx::query_as(
            "SELECT response, fingerprint FROM idempotency_keys
             WHERE tenant_id = $1 AND key = $2 AND created_at >= now() - make_interval(secs => $3)",
        )
        .bind(tenant.as_uuid())
        .bind(key)
        .bind(ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(row.map(|(response, fingerprint)| FirstAnswer {
            response,
            fingerprint,
        }))
    }
}
