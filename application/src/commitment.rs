//! Whether a request's writes have passed the point of no return.
//!
//! A request may be cut off by the request timeout while it waits. Before
//! its events are handed to the database for good (sent to the group
//! commit, a transaction's `COMMIT` issued, or an append that is its own
//! transaction sent), the store marks the request as committing; the HTTP
//! layer then waits for the real result instead of answering "timed out"
//! for work that was in fact done. A request whose append was sent and then
//! conflicted, and is tried again, stays marked: if the timeout cuts off
//! the retry, it answers that the outcome is unknown rather than that
//! nothing was stored.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

tokio::task_local! {
    static COMMITTING: Arc<AtomicBool>;
}

/// Runs `work` with `flag` set once any of its writes reaches the point of
/// no return.
pub async fn watch<F: Future>(flag: Arc<AtomicBool>, work: F) -> F::Output {
    COMMITTING.scope(flag, work).await
}

/// The current request's flag, to carry into work it hands to another
/// task (`None` outside a watched request).
pub fn current() -> Option<Arc<AtomicBool>> {
    COMMITTING.try_with(Arc::clone).ok()
}

/// Whether the current request's writes reached the point of no return.
pub fn passed(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}

/// Marks the current request's writes as committing (nothing outside a
/// watched request).
pub fn point_of_no_return() {
    COMMITTING
        .try_with(|flag| flag.store(true, Ordering::SeqCst))
        .ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_watched_request_is_marked() {
        point_of_no_return();
        let flag = Arc::new(AtomicBool::new(false));
        watch(flag.clone(), async {}).await;
        assert!(!flag.load(Ordering::SeqCst));
        watch(flag.clone(), async { point_of_no_return() }).await;
        assert!(flag.load(Ordering::SeqCst));
    }
}
