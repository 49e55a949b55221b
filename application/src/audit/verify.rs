//! Verifying the log: every aggregate's sequences run 1, 2, 3… without gaps
//! and every stored link equals the one recomputed from the event and its
//! predecessor. Feed events ordered by aggregate and sequence.

use super::chain::{link, stored_link, Linked, GENESIS};
use crate::ports::StoredEvent;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The first place where the log does not match its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub position: i64,
    pub reason: String,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} sequence {} (position {}): {}",
            self.aggregate_type, self.aggregate_id, self.sequence, self.position, self.reason
        )
    }
}

/// The newest link of one aggregate: what `audit heads` publishes and
/// `audit verify --heads` checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub link: String,
}

#[derive(Debug, Default)]
pub struct ChainVerifier {
    current: Option<ChainHead>,
    position: i64,
    pub events: u64,
    pub aggregates: u64,
}

impl ChainVerifier {
    /// Checks the next event.
    ///
    /// # Errors
    /// The first broken link: a gap or a repeat in the sequences, a missing
    /// link, or a link that does not match.
    pub fn push(&mut self, e: &StoredEvent) -> Result<Option<ChainHead>, BrokenLink> {
        self.push_after(e, None)
    }

    /// Checks the next event; `begun_by`, for a delivery's first stored
    /// event, is the link of the message event that lists it (ADR 0019):
    /// the delivery begins at sequence 2, after that link; or of its
    /// message's `DeliveriesAttempted` that holds its sequence 2
    /// (ADR 0023): it begins at sequence 3.
    ///
    /// # Errors
    /// As [`Self::push`].
    pub fn push_after(
        &mut self,
        e: &StoredEvent,
        begun_by: Option<&crate::ports::Begun>,
    ) -> Result<Option<ChainHead>, BrokenLink> {
        let broken = |reason: String| BrokenLink {
            aggregate_type: e.aggregate_type.clone(),
            aggregate_id: e.aggregate_id.clone(),
            sequence: e.sequence,
            position: e.position,
            reason,
        };
        let same_aggregate = self.current.as_ref().is_some_and(|h| {
            h.aggregate_type == e.aggregate_type && h.aggregate_id == e.aggregate_id
        });
        let finished = if same_aggregate {
            None
        } else {
            self.current.take()
        };
        let (previous, expected) = match &self.current {
            Some(head) => (head.link.clone(), head.sequence + 1),
            None => match begun_by {
                Some(begun) if e.aggregate_type == "Delivery" && e.sequence <= begun.held => {
                    return Err(broken(if begun.held == 1 {
                        "a delivery its message's event lists has a stored first event (its message's event begins it)"
                            .into()
                    } else {
                        format!(
                            "a delivery whose first outcome its message's DeliveriesAttempted holds has a stored sequence {}",
                            e.sequence
                        )
                    }))
                }
                // Its first events in its message's (ADR 0019, ADR 0023).
                Some(begun) if e.aggregate_type == "Delivery" => {
                    (begun.link.clone(), begun.held + 1)
                }
                _ => (GENESIS.to_string(), 1),
            },
        };
        if e.sequence != expected {
            return Err(broken(if e.sequence > expected {
                format!(
                    "sequence {expected} is missing (the next event found is {})",
                    e.sequence
                )
            } else {
                format!(
                    "sequence {} appears again (expected {expected})",
                    e.sequence
                )
            }));
        }
        let payload = e.payload.to_value();
        let metadata = e.metadata.to_value();
        let computed = link(
            &previous,
            Linked {
                aggregate_type: &e.aggregate_type,
                aggregate_id: &e.aggregate_id,
                sequence: e.sequence,
                event_type: &e.event_type,
                event_version: &e.event_version,
                payload: &payload,
                metadata: &metadata,
            },
        );
        match stored_link(&metadata) {
            None => return Err(broken("the event has no chain link".into())),
            Some(stored) if stored != computed => {
                return Err(broken(
                    "the stored link does not match the event (its payload, metadata, type, position in the aggregate or a predecessor was changed)"
                        .into(),
                ))
            }
            Some(_) => {}
        }
        if self.current.is_none() {
            self.aggregates += 1;
        }
        self.events += 1;
        self.position = e.position;
        self.current = Some(ChainHead {
            aggregate_type: e.aggregate_type.clone(),
            aggregate_id: e.aggregate_id.clone(),
            sequence: e.sequence,
            link: computed,
        });
        Ok(finished)
    }

    /// Stops checking the current aggregate (its chain broke): the next
    /// event pushed starts an aggregate's chain.
    pub fn abandon(&mut self) {
        self.current = None;
    }

    /// The last aggregate's head.
    pub fn finish(&mut self) -> Option<ChainHead> {
        self.current.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::set_link;
    use serde_json::json;

    fn chained(n: i64) -> Vec<StoredEvent> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let payload = json!({"type": "T", "n": seq});
                let mut metadata = json!({"request_id": format!("r{seq}")});
                let l = link(
                    &prev,
                    Linked {
                        aggregate_type: "A",
                        aggregate_id: "a1",
                        sequence: seq,
                        event_type: "T",
                        event_version: "1.0",
                        payload: &payload,
                        metadata: &metadata,
                    },
                );
                set_link(&mut metadata, l.clone());
                prev = l;
                StoredEvent {
                    position: seq * 10,
                    tx_id: 1,
                    aggregate_type: "A".into(),
                    aggregate_id: "a1".into(),
                    sequence: seq,
                    event_type: "T".into(),
                    event_version: "1.0".into(),
                    payload: crate::ports::StoredJson::from_value(&payload).unwrap(),
                    metadata: crate::ports::StoredJson::from_value(&metadata).unwrap(),
                    recorded_at: chrono::DateTime::UNIX_EPOCH,
                }
            })
            .collect()
    }

    fn run(events: &[StoredEvent]) -> Result<ChainVerifier, BrokenLink> {
        let mut v = ChainVerifier::default();
        for e in events {
            v.push(e)?;
        }
        Ok(v)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let v = run(&chained(4)).unwrap();
        assert_eq!((v.events, v.aggregates), (4, 1));
    }

    #[test]
    fn alteration_deletion_and_reordering_are_found() {
        let mut altered = chained(3);
        altered[1].payload =
            crate::ports::StoredJson::from_value(&json!({"type": "T", "n": 99})).unwrap();
        assert_eq!(run(&altered).unwrap_err().sequence, 2);

        let mut deleted = chained(3);
        deleted.remove(1);
        let e = run(&deleted).unwrap_err();
        assert_eq!(e.sequence, 3);
        assert!(e.reason.contains("missing"));

        let mut reordered = chained(3);
        reordered[1].sequence = 3;
        reordered[2].sequence = 2;
        reordered.swap(1, 2);
        assert_eq!(run(&reordered).unwrap_err().sequence, 2);

        let mut meta = chained(2);
        let mut forged = meta[0].metadata.to_value();
        forged["request_id"] = json!("forged");
        meta[0].metadata = crate::ports::StoredJson::from_value(&forged).unwrap();
        assert_eq!(run(&meta).unwrap_err().sequence, 1);

        let mut first_gone = chained(2);
        first_gone.remove(0);
        assert!(run(&first_gone)
            .unwrap_err()
            .reason
            .contains("sequence 1 is missing"));
    }
}
