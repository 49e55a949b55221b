//! A message's first outcomes gathered into one row of the message's
//! (ADR 0023): which messages gather, the row's sequence and the guard
//! of a delivery's sequence 2, and the links that follow such a row.

use super::{append_error, decode_error, PgLog, MAX_KNOWN_LINKS};
use hookline_application::audit::chain::{AggregateKey, Unlinked};
use hookline_application::listing::{
    attempted_in, first_outcome_messages, gather_first_outcomes, gathers_outcomes,
};
use hookline_application::ports::AppendError;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};

impl PgLog {
    /// Remembers how many deliveries listing messages list (message id,
    /// count): the first outcomes of those that list several are gathered
    /// into their message's rows (ADR 0023), the others' are rows of their
    /// own, and an append need not read the message to know which.
    pub fn remember_listed(&self, listed: impl IntoIterator<Item = (String, usize)>) {
        let listed: Vec<(String, usize)> = listed.into_iter().collect();
        if let Ok(mut several) = self.several.lock() {
            if several.len() + listed.len() > MAX_KNOWN_LINKS {
                several.clear();
            }
            for (message, count) in listed {
                several.insert(message, gathers_outcomes(count));
            }
        }
    }

    /// Whether the first outcomes of `message`'s deliveries are gathered
    /// into its rows, when known (see [`Self::remember_listed`]).
    pub fn gathers(&self, message: &str) -> Option<bool> {
        self.several.lock().ok()?.get(message).copied()
    }

    /// `rows` with the first outcomes of listed deliveries gathered into
    /// one `DeliveriesAttempted` per message (ADR 0023), at the message's
    /// next sequence: the message's primary key guards it as a delivery's
    /// own row would. The message's newest link is remembered for linking.
    pub(super) async fn gather(
        &self,
        conn: &mut PgConnection,
        rows: Vec<Unlinked>,
    ) -> Result<Vec<Unlinked>, AppendError> {
        let messages: Vec<String> = first_outcome_messages(&rows)
            .into_iter()
            .filter(|m| self.gathers(m) != Some(false))
            .collect();
        if messages.is_empty() {
            return Ok(rows);
        }
        let mut next = HashMap::new();
        self.read_heads(conn, &rows, &messages, &mut next).await?;
        Ok(gather_first_outcomes(rows, &next))
    }

    /// The next sequence of `messages`, read now, and their newest links
    /// remembered for linking. A delivery of `rows` whose first outcome a
    /// message's row already holds is a conflict: its state was read
    /// before that row was written. A writer that comes between this read
    /// and the insert takes the same sequence: one of the two conflicts.
    async fn read_heads(
        &self,
        conn: &mut PgConnection,
        rows: &[Unlinked],
        messages: &[String],
        next: &mut HashMap<String, i64>,
    ) -> Result<(), AppendError> {
        // Which messages gather, decided once for this append: what is
        // known now, and the lists read below (the shared memory may be
        // cleared meanwhile; a message's list never changes).
        let mut decided: HashMap<String, bool> = messages
            .iter()
            .filter_map(|m| self.gathers(m).map(|g| (m.clone(), g)))
            .collect();
        let found = sqlx::query(
            "SELECT aggregate_id, sequence, metadata->>'chain' AS chain,
                    CASE WHEN event_type = 'DeliveriesAttempted' THEN payload::text END AS outcomes,
                    CASE WHEN sequence = 1 AND event_version = '1.2' AND aggregate_id = ANY($2)
                         THEN json_array_length(payload->'deliveries') END AS listed
               FROM events WHERE aggregate_type = 'Message' AND aggregate_id = ANY($1)",
        )
        .bind(messages)
        // Only the lists not known yet are counted (the text is parsed).
        .bind(
            messages
                .iter()
                .filter(|m| !decided.contains_key(*m))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(append_error)?;
        let mut links: HashMap<String, (i64, String)> = HashMap::new();
        let mut listed: Vec<(String, usize)> = Vec::new();
        let mut held: HashSet<String> = HashSet::new();
        for row in found {
            let id: String = row.try_get("aggregate_id").map_err(decode_error)?;
            let sequence: i64 = row.try_get("sequence").map_err(decode_error)?;
            let chain: Option<String> = row.try_get("chain").map_err(decode_error)?;
            let outcomes: Option<String> = row.try_get("outcomes").map_err(decode_error)?;
            let count: Option<i32> = row.try_get("listed").map_err(decode_error)?;
            if let Some(count) = count {
                listed.push((id.clone(), usize::try_from(count).unwrap_or_default()));
            }
            if let Some(text) = outcomes {
                held.extend(
                    attempted_in(&text)
                        .map_err(|e| decode_error(sqlx::Error::Decode(Box::new(e))))?,
                );
            }
            let chain = chain.ok_or_else(|| {
                AppendError::Other(hookline_application::AppError::Internal(format!(
                    "Message {id} has an event without a chain link"
                )))
            })?;
            let head = links.entry(id).or_insert((0, String::new()));
            if sequence > head.0 {
                *head = (sequence, chain);
            }
        }
        let taken = rows
            .iter()
            .filter(|r| r.aggregate_type == "Delivery" && r.sequence == 2)
            .any(|r| held.contains(&r.aggregate_id));
        if taken {
            return Err(AppendError::Conflict);
        }
        decided.extend(
            listed
                .iter()
                .map(|(m, count)| (m.clone(), gathers_outcomes(*count))),
        );
        self.remember_listed(listed);
        for (id, (sequence, link)) in links {
            // Only a message that lists several gathers them (ADR 0023).
            if decided.get(&id) == Some(&true) {
                self.remember(("Message".to_string(), id.clone()), sequence, link);
                next.insert(id, sequence + 1);
            }
        }
        Ok(())
    }

    /// The links of the deliveries among the predecessors (`types`, `ids`,
    /// `seqs`) whose sequence 2 their message's `DeliveriesAttempted`
    /// holds and that `links` has none for: their next event follows that
    /// row's link.
    pub(super) async fn attempted_links(
        &self,
        conn: &mut PgConnection,
        types: &[String],
        ids: &[String],
        seqs: &[i64],
        links: &mut HashMap<AggregateKey, String>,
    ) -> Result<(), AppendError> {
        let attempted: Vec<String> = types
            .iter()
            .zip(ids)
            .zip(seqs)
            .filter(|((t, i), s)| {
                **s == 2 && *t == "Delivery" && !links.contains_key(&(t.to_string(), i.to_string()))
            })
            .map(|((_, i), _)| i.clone())
            .collect();
        if !attempted.is_empty() {
            let messages =
                crate::postgres::listing::listing_messages(attempted.iter().map(String::as_str));
            let found = sqlx::query(
                "SELECT o->>'delivery_id' AS id, a.metadata->>'chain' AS chain
                   FROM events a, json_array_elements(a.payload->'outcomes') o
                  WHERE a.aggregate_type = 'Message' AND a.aggregate_id = ANY($1)
                    AND a.sequence > 1 AND a.event_type = 'DeliveriesAttempted'
                    AND o->>'delivery_id' = ANY($2)",
            )
            .bind(&messages)
            .bind(&attempted)
            .fetch_all(&mut *conn)
            .await
            .map_err(append_error)?;
            for row in found {
                let id: String = row.try_get("id").map_err(decode_error)?;
                let chain: Option<String> = row.try_get("chain").map_err(decode_error)?;
                if let Some(chain) = chain {
                    links.insert(("Delivery".to_string(), id), chain);
                }
            }
        }
        Ok(())
    }
}
