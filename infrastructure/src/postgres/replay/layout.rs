//! The shape of a live read-model table (primary key, indexes, storage
//! options), so a rebuild can load a bare copy fast, index it once, and
//! give the swapped-in copy the live names back.

use sqlx::{PgConnection, PgPool};
use std::sync::Arc;

/// A live table's primary key, other indexes and storage options, so a
/// rebuild can load a bare copy fast and index it once.
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) table: String,
    primary_key: Option<(String, String)>,
    /// (name, definition, whether a UNIQUE constraint owns it).
    indexes: Vec<(String, String, bool)>,
    options: Option<String>,
}

impl Layout {
    pub(super) async fn of(conn: &mut PgConnection, table: &str) -> Result<Self, sqlx::Error> {
        let primary_key: Option<(String, String)> = sqlx::query_as(
            "SELECT c.conname::text, pg_get_constraintdef(c.oid)
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
              WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace AND c.contype = 'p'",
        )
        .bind(table)
        .fetch_optional(&mut *conn)
        .await?;
        let indexes: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT i.relname::text, pg_get_indexdef(i.oid),
                    EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid AND c.contype = 'u')
               FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid
               JOIN pg_class t ON t.oid = x.indrelid
              WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace AND NOT x.indisprimary",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
        let options: Option<Vec<String>> = sqlx::query_scalar(
            "SELECT reloptions FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace",
        )
        .bind(table)
        .fetch_one(&mut *conn)
        .await?;
        Ok(Self {
            table: table.to_string(),
            primary_key,
            indexes,
            options: options.filter(|o| !o.is_empty()).map(|o| o.join(", ")),
        })
    }

    /// The copy with its columns, defaults, checks and primary key only.
    pub(super) async fn create_bare(
        &self,
        conn: &mut PgConnection,
        suffix: &str,
    ) -> Result<(), sqlx::Error> {
        let (table, copy) = (&self.table, format!("{}{suffix}", self.table));
        sqlx::query(&format!("DROP TABLE IF EXISTS {copy}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!(
            "CREATE TABLE {copy} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        ))
        .execute(&mut *conn)
        .await?;
        if let Some((name, definition)) = &self.primary_key {
            sqlx::query(&format!(
                "ALTER TABLE {copy} ADD CONSTRAINT {name}{suffix} {definition}"
            ))
            .execute(&mut *conn)
            .await?;
        }
        // The live storage options (a fillfactor that leaves room for
        // updates) come with the swap: rebuilt rows are mostly final, and
        // loading them into full pages writes fewer pages and less WAL.
        // Autovacuum would otherwise start on the freshly loaded copy and
        // hold up its index builds (CREATE INDEX waits for it); the live
        // settings come back with the swap.
        sqlx::query(&format!(
            "ALTER TABLE {copy} SET (autovacuum_enabled = false)"
        ))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The statements that build the copy's secondary indexes (and the
    /// UNIQUE constraints over them), in order, one list per index.
    pub(super) fn index_statements(&self, suffix: &str) -> Vec<Vec<String>> {
        let mut statements = Vec::new();
        for (name, definition, constraint) in &self.indexes {
            // "CREATE [UNIQUE] INDEX name ON schema.table USING …"
            let Some((head, tail)) = definition.split_once(" ON ") else {
                continue;
            };
            let Some((_, rest)) = tail.split_once(' ') else {
                continue;
            };
            let head = head.replacen(name.as_str(), &format!("{name}{suffix}"), 1);
            let mut steps = vec![format!("{head} ON {}{suffix} {rest}", self.table)];
            if *constraint {
                steps.push(format!(
                    "ALTER TABLE {table}{suffix} ADD CONSTRAINT {name}{suffix} UNIQUE USING INDEX {name}{suffix}",
                    table = self.table
                ));
            }
            statements.push(steps);
        }
        statements
    }

    /// After a swap, the swapped-in table's constraint and indexes take the
    /// original names back, and its storage options the live ones.
    pub(super) async fn restore_names(
        &self,
        conn: &mut PgConnection,
        suffix: &str,
    ) -> Result<(), sqlx::Error> {
        if let Some((name, _)) = &self.primary_key {
            sqlx::query(&format!(
                "ALTER TABLE {} RENAME CONSTRAINT {name}{suffix} TO {name}",
                self.table
            ))
            .execute(&mut *conn)
            .await?;
        }
        for (name, _, constraint) in &self.indexes {
            let rename = if *constraint {
                format!(
                    "ALTER TABLE {} RENAME CONSTRAINT {name}{suffix} TO {name}",
                    self.table
                )
            } else {
                format!("ALTER INDEX {name}{suffix} RENAME TO {name}")
            };
            sqlx::query(&rename).execute(&mut *conn).await?;
        }
        sqlx::query(&format!(
            "ALTER TABLE {} RESET (autovacuum_enabled)",
            self.table
        ))
        .execute(&mut *conn)
        .await?;
        if let Some(options) = &self.options {
            sqlx::query(&format!("ALTER TABLE {} SET ({options})", self.table))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// Runs index builds on two connections at once (different indexes of the
/// same table may be built concurrently).
pub(super) async fn build_indexes(
    pool: &PgPool,
    work: Vec<Vec<String>>,
) -> Result<(), sqlx::Error> {
    type Queue = std::sync::Mutex<Vec<Vec<String>>>;
    let queue = Arc::new(Queue::new(work));
    let next = |queue: &Queue| match queue.lock() {
        Ok(mut work) => work.pop(),
        Err(poisoned) => poisoned.into_inner().pop(),
    };
    let worker = |queue: Arc<Queue>| async move {
        let mut conn = pool.acquire().await?;
        while let Some(steps) = next(&queue) {
            for statement in steps {
                sqlx::query(&statement).execute(&mut *conn).await?;
            }
        }
        Ok::<(), sqlx::Error>(())
    };
    let (a, b) = tokio::join!(worker(queue.clone()), worker(queue));
    a.and(b)
}
