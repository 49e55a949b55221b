//! The time window and keyset page shared by lists ordered by
//! `(time, id)`, newest first unless asked otherwise: attempts and
//! messages.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

/// A list query's window (`since < time < until`), keyset cursor (rows
/// strictly past it in the list's order), order and page size.
#[derive(Debug, Clone, Copy)]
pub struct TimePage {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub cursor: Option<(DateTime<Utc>, Uuid)>,
    pub oldest_first: bool,
    pub limit: u32,
}

impl TimePage {
    /// Appends the window, the cursor, the order and `LIMIT limit + 1`
    /// (one more row tells whether there is a next page) to `sql`, whose
    /// `WHERE` clause is open; `time` and `id` name the columns.
    pub fn push(&self, sql: &mut QueryBuilder<'_, Postgres>, time: &str, id: &str) {
        if let Some(since) = self.since {
            sql.push(format!(" AND {time} > ")).push_bind(since);
        }
        if let Some(until) = self.until {
            sql.push(format!(" AND {time} < ")).push_bind(until);
        }
        let (cmp, order) = if self.oldest_first {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some((at, after)) = self.cursor {
            sql.push(format!(" AND ({time}, {id}) {cmp} ("))
                .push_bind(at)
                .push(", ")
                .push_bind(after)
                .push(")");
        }
        sql.push(format!(" ORDER BY {time} {order}, {id} {order} LIMIT "))
            .push_bind(i64::from(self.limit) + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Execute as _;

    #[test]
    fn a_page_bounds_orders_and_limits_by_time_then_id() {
        let at = Utc::now();
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("SELECT 1 FROM t WHERE x = 1");
        TimePage {
            since: Some(at),
            until: None,
            cursor: Some((at, Uuid::nil())),
            oldest_first: false,
            limit: 50,
        }
        .push(&mut sql, "t.at", "t.id");
        assert_eq!(
            sql.build().sql(),
            "SELECT 1 FROM t WHERE x = 1 AND t.at > $1 AND (t.at, t.id) < ($2, $3) \
             ORDER BY t.at DESC, t.id DESC LIMIT $4"
        );
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("SELECT 1 FROM t WHERE x = 1");
        TimePage {
            since: None,
            until: Some(at),
            cursor: None,
            oldest_first: true,
            limit: 10,
        }
        .push(&mut sql, "at", "id");
        assert_eq!(
            sql.build().sql(),
            "SELECT 1 FROM t WHERE x = 1 AND at < $1 ORDER BY at ASC, id ASC LIMIT $2"
        );
    }
}
