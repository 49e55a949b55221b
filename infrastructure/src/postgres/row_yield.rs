//! How much of what a read of the log looks for its rows held lately, so
//! that the next read asks for about as many rows as it needs.
//!
//! A message's row lists all its deliveries (ADR 0019): a read that wants
//! `n` deliveries (the feed of first attempts) or `n` units of a tenant's
//! backlog (each delivery counts one) needs about a fifth of `n` rows when
//! messages go to five subscriptions. Reading `n` rows regardless read and
//! decoded each message of a fan-out about five times.

use std::sync::Mutex;

/// The decaying average of what a row held (never below one: a row counts
/// at least itself).
#[derive(Debug)]
pub(crate) struct RowYield(Mutex<f64>);

impl RowYield {
    /// Weight of the past in the average (each read counts a tenth).
    const DECAY: f64 = 0.9;
    /// Rows read beyond the estimate: a read that finds too little asks
    /// again or leaves its caller short.
    const MARGIN: f64 = 1.25;
    /// Rows read beyond that, whatever the estimate.
    const SPARE: i64 = 8;

    pub(crate) fn new() -> Self {
        Self(Mutex::new(1.0))
    }

    /// Rows to read for `wanted`: never more than one for each (and
    /// [`Self::SPARE`] more), which is what a row holds at least.
    pub(crate) fn rows_for(&self, wanted: i64) -> i64 {
        let wanted = wanted.max(0);
        let per_row = self.0.lock().map_or(1.0, |v| *v).max(1.0);
        let rows = (wanted as f64 * Self::MARGIN / per_row).ceil();
        // `rows` is at most `wanted` here, so the cast is exact.
        (rows.min(wanted as f64) as i64).saturating_add(Self::SPARE)
    }

    /// A read of `rows` rows that held `found`.
    pub(crate) fn observe(&self, rows: i64, found: i64) {
        if rows <= 0 {
            return;
        }
        let seen = found.max(0) as f64 / rows as f64;
        if let Ok(mut average) = self.0.lock() {
            *average = *average * Self::DECAY + seen * (1.0 - Self::DECAY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_asks_for_about_as_many_rows_as_it_needs() {
        let per_row = RowYield::new();
        // Nothing read yet: a row for each, as if every row held one.
        assert_eq!(per_row.rows_for(100), 108);
        // Five a row (a five-subscription fan-out): a quarter more rows
        // than a fifth of the wanted, once the average has learned.
        for _ in 0..100 {
            per_row.observe(40, 200);
        }
        // (The average only nears 5: one row more for rounding up.)
        let learned = per_row.rows_for(100);
        assert!((25 + 8..=26 + 8).contains(&learned), "{learned}");
        assert_eq!(per_row.rows_for(1), 1 + 8);
        // An empty read teaches nothing.
        per_row.observe(0, 0);
        assert_eq!(per_row.rows_for(100), learned);
        // Rows that held nothing (messages no subscription matched,
        // skipped deliveries): back to a row for each, never more.
        for _ in 0..100 {
            per_row.observe(40, 0);
        }
        assert_eq!(per_row.rows_for(100), 108);
        assert_eq!(per_row.rows_for(0), 8);
        assert_eq!(per_row.rows_for(-5), 8);
    }
}
