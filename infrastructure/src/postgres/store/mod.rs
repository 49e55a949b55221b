//! The one Postgres adapter every write goes through. [`PgLog`] links the
//! hash chain and inserts rows; [`PgRepository`] is the postgres-es event
//! repository cqrs-es loads aggregates through and single commands persist
//! through (it links the chain first); [`PgAggregateStore`] is the
//! application's `AggregateStore` port over both; [`GroupCommit`] gathers
//! concurrent publishes into one transaction.

mod aggregates;
mod group_commit;
mod log;
mod repository;

pub use aggregates::PgAggregateStore;
pub use group_commit::{GroupCommit, MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
pub use log::PgLog;
pub use repository::PgRepository;
