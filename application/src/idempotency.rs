//! Idempotent requests: the first answer to a request sent with an
//! idempotency key is remembered for a while and given again to every
//! repeat (the same request under the same key); the same key with a
//! different request is refused. A repeat that arrives while the first is
//! still being answered waits for that answer (a few seconds at most).
//! Answers are kept sealed with the server's key: some carry a secret
//! (a new signing secret, API key or portal link) that is shown once.

use crate::error::AppError;
use crate::ports::{HeldKey, IdempotentRequests, KeyClaim, RememberedAnswer, SecretCipher};
use hookline_domain::sealed::Sealed;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often expired records are forgotten (by whichever request comes).
const SWEEP_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
pub struct IdempotencySettings {
    /// How long an answer is remembered.
    pub ttl: Duration,
    /// A claim not renewed within this is taken to be abandoned (its
    /// process stopped): the key may be used again. The request holding a
    /// key renews its claim every quarter of this while it runs.
    pub stale: Duration,
    /// How long a repeat waits for the first request's answer.
    pub wait: Duration,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// Answer it; then [`IdempotencyService::finish`].
    Proceed,
    /// Give this remembered answer again.
    Replay(RememberedAnswer),
}

/// What a kept answer's body starts with once sealed (answers kept by
/// earlier versions are plain).
const SEALED_PREFIX: &[u8] = b"sealed:";

pub struct IdempotencyService {
    store: Arc<dyn IdempotentRequests>,
    cipher: Arc<dyn SecretCipher>,
    settings: IdempotencySettings,
    last_sweep: Mutex<Option<Instant>>,
}

impl fmt::Debug for IdempotencyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl IdempotencyService {
    pub fn new(
        store: Arc<dyn IdempotentRequests>,
        cipher: Arc<dyn SecretCipher>,
        settings: IdempotencySettings,
    ) -> Self {
        Self {
            store,
            cipher,
            settings,
            last_sweep: Mutex::new(None),
        }
    }

    /// The key as a new request would hold it (claimed by
    /// [`IdempotencyService::begin`]).
    pub fn key_for(&self, scope: &str, key: &str, request_id: &str, rerun_safe: bool) -> HeldKey {
        HeldKey {
            scope: scope.to_string(),
            key: key.to_string(),
            claim: uuid::Uuid::new_v4(),
            request_id: request_id.to_string(),
            rerun_safe,
        }
    }

    /// Claims the key for a request with this `fingerprint` (a digest of
    /// what it asks for).
    ///
    /// # Errors
    /// 409 `idempotency_key_reused` for a key used with a different
    /// request, `request_in_progress` when the first request is still
    /// unanswered after the wait; storage errors.
    pub async fn begin(&self, held: &HeldKey, fingerprint: &str) -> Result<Begun, AppError> {
        let deadline = Instant::now() + self.settings.wait;
        let mut pause = Duration::from_millis(10);
        loop {
            match self
                .store
                .claim(held, fingerprint, self.settings.ttl, self.settings.stale)
                .await?
            {
                KeyClaim::Claimed => {
                    self.sweep().await;
                    return Ok(Begun::Proceed);
                }
                KeyClaim::Taken { fingerprint: f, .. } | KeyClaim::Lost { fingerprint: f, .. }
                    if f != fingerprint =>
                {
                    return Err(AppError::conflict(
                        "idempotency_key_reused",
                        format!(
                            "the idempotency key '{}' was used for a different request within the last {} hours; use a new key for a new request",
                            held.key,
                            self.settings.ttl.as_secs() / 3600
                        ),
                    ))
                }
                KeyClaim::Taken {
                    answer: Some(answer),
                    ..
                } => return Ok(Begun::Replay(self.open(held, answer)?)),
                KeyClaim::Lost { request_id, .. } => {
                    return Err(AppError::conflict(
                        "idempotency_answer_lost",
                        format!(
                            "a request with the idempotency key '{}' (request id {request_id}) was stored, but the process answering it stopped before its answer was kept; it is not run again. See what it did with GET /v1/requests/{request_id}",
                            held.key
                        ),
                    ))
                }
                KeyClaim::Taken { answer: None, .. } => {
                    if Instant::now() >= deadline {
                        return Err(AppError::conflict(
                            "request_in_progress",
                            format!("a request with the idempotency key '{}' is still being answered; try again in a moment", held.key),
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    /// Renews the claim for as long as it is polled: run it beside the
    /// request, so that a request that runs long (a commit held up) is not
    /// taken for a stopped one and run a second time. Never ends.
    pub async fn hold(&self, held: &HeldKey) {
        let every = (self.settings.stale / 4).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.store.renew(held).await {
                tracing::warn!(error = %e, "renewing the claim on an idempotency key failed");
            }
        }
    }

    /// Remembers the answer to a claimed request (`None`: an answer not
    /// worth repeating, such as an error: the key is let go).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn finish(
        &self,
        held: &HeldKey,
        answer: Option<RememberedAnswer>,
    ) -> Result<(), AppError> {
        let Some(answer) = answer else {
            return self.store.release(held).await;
        };
        match self.seal(held, answer) {
            Ok(sealed) => {
                if !self.store.answer(held, &sealed).await? {
                    tracing::warn!(
                        "an idempotency key's claim was taken over while its request still ran; a repeat may have run it again"
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.store.release(held).await?;
                Err(e)
            }
        }
    }

    /// What seals an answer binds it to: its scope and key.
    fn context(held: &HeldKey) -> String {
        format!("idempotent-answer\n{}\n{}", held.scope, held.key)
    }

    fn seal(&self, held: &HeldKey, answer: RememberedAnswer) -> Result<RememberedAnswer, AppError> {
        let sealed = self.cipher.seal(&answer.body, &Self::context(held))?;
        let mut body = SEALED_PREFIX.to_vec();
        body.extend(serde_json::to_vec(&sealed).map_err(|e| AppError::Internal(e.to_string()))?);
        Ok(RememberedAnswer {
            status: answer.status,
            body,
        })
    }

    fn open(&self, held: &HeldKey, kept: RememberedAnswer) -> Result<RememberedAnswer, AppError> {
        let Some(sealed) = kept.body.strip_prefix(SEALED_PREFIX) else {
            return Ok(kept);
        };
        let sealed: Sealed =
            serde_json::from_slice(sealed).map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(RememberedAnswer {
            status: kept.status,
            body: self.cipher.open(&sealed, &Self::context(held))?,
        })
    }

    /// Forgets expired records now and then (best effort).
    async fn sweep(&self) {
        let due = match self.last_sweep.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| t.elapsed() >= SWEEP_EVERY);
                if due {
                    *last = Some(Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if due {
            match self.store.forget_expired(self.settings.ttl).await {
                Ok(n) if n > 0 => {
                    tracing::debug!(forgotten = n, "expired idempotency records forgotten")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "forgetting expired idempotency records failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::collections::HashMap;

    /// (fingerprint, claim, answer) per (scope, key).
    type Claims = HashMap<(String, String), (String, uuid::Uuid, Option<RememberedAnswer>)>;

    /// Claims in memory, with no time passing.
    #[derive(Default)]
    struct Memory(Mutex<Claims>);

    fn at(held: &HeldKey) -> (String, String) {
        (held.scope.clone(), held.key.clone())
    }

    #[async_trait]
    impl IdempotentRequests for Memory {
        async fn claim(
            &self,
            held: &HeldKey,
            fingerprint: &str,
            _ttl: Duration,
            _stale: Duration,
        ) -> Result<KeyClaim, AppError> {
            let mut map = self.0.lock().unwrap();
            Ok(match map.get(&at(held)) {
                Some((f, _, answer)) => KeyClaim::Taken {
                    fingerprint: f.clone(),
                    answer: answer.clone(),
                },
                None => {
                    map.insert(at(held), (fingerprint.to_string(), held.claim, None));
                    KeyClaim::Claimed
                }
            })
        }
        async fn renew(&self, _held: &HeldKey) -> Result<(), AppError> {
            Ok(())
        }
        async fn answer(&self, held: &HeldKey, a: &RememberedAnswer) -> Result<bool, AppError> {
            let mut map = self.0.lock().unwrap();
            Ok(match map.get_mut(&at(held)) {
                Some(e) if e.1 == held.claim => {
                    e.2 = Some(a.clone());
                    true
                }
                _ => false,
            })
        }
        async fn release(&self, held: &HeldKey) -> Result<(), AppError> {
            let mut map = self.0.lock().unwrap();
            if map
                .get(&at(held))
                .is_some_and(|e| e.1 == held.claim && e.2.is_none())
            {
                map.remove(&at(held));
            }
            Ok(())
        }
        async fn forget_expired(&self, _ttl: Duration) -> Result<u64, AppError> {
            Ok(0)
        }
    }

    fn service() -> IdempotencyService {
        IdempotencyService::new(
            Arc::new(Memory::default()),
            Arc::new(crate::testing::PlainCipher),
            IdempotencySettings {
                ttl: Duration::from_secs(12 * 3600),
                stale: Duration::from_secs(60),
                wait: Duration::from_millis(30),
            },
        )
    }

    #[tokio::test]
    async fn the_first_answer_is_given_again_and_a_different_request_refused() {
        let s = service();
        let first = s.key_for("a", "k", "req-1", false);
        assert_eq!(s.begin(&first, "f1").await.unwrap(), Begun::Proceed);
        let answer = RememberedAnswer {
            status: 201,
            body: b"{}".to_vec(),
        };
        s.finish(&first, Some(answer.clone())).await.unwrap();
        assert_eq!(
            s.begin(&s.key_for("a", "k", "req-1", false), "f1")
                .await
                .unwrap(),
            Begun::Replay(answer)
        );
        let e = s
            .begin(&s.key_for("a", "k", "req-1", false), "f2")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                AppError::Conflict {
                    code: "idempotency_key_reused",
                    ..
                }
            ),
            "{e:?}"
        );
        // Another scope (caller or route) is another key.
        assert_eq!(
            s.begin(&s.key_for("b", "k", "req-1", false), "f2")
                .await
                .unwrap(),
            Begun::Proceed
        );
    }

    #[tokio::test]
    async fn an_error_lets_the_key_go_and_a_repeat_in_flight_waits_then_gives_up() {
        let s = service();
        let first = s.key_for("a", "k", "req-1", false);
        assert_eq!(s.begin(&first, "f").await.unwrap(), Begun::Proceed);
        let repeat = s.key_for("a", "k", "req-1", false);
        let e = s.begin(&repeat, "f").await.unwrap_err();
        assert!(
            matches!(
                e,
                AppError::Conflict {
                    code: "request_in_progress",
                    ..
                }
            ),
            "{e:?}"
        );
        // The repeat that gave up does not let go of the first's claim.
        s.finish(&repeat, None).await.unwrap();
        assert!(s
            .begin(&s.key_for("a", "k", "req-1", false), "f")
            .await
            .is_err());
        s.finish(&first, None).await.unwrap();
        assert_eq!(
            s.begin(&s.key_for("a", "k", "req-1", false), "f")
                .await
                .unwrap(),
            Begun::Proceed
        );
    }
}
