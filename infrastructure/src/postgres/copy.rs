//! Bulk inserts with `COPY … FROM STDIN (FORMAT binary)`: Postgres loads
//! the rows with multi-row heap inserts and far less WAL than the same rows
//! through `INSERT … SELECT FROM UNNEST`, which matters when a projection
//! writes tens of thousands of new rows per batch (rebuilds).
//!
//! Only for rows known to be new: `COPY` has no `ON CONFLICT`, so a
//! duplicate key fails the whole transaction (loudly, never silently).

use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// One `COPY` payload in Postgres' binary format, built row by row.
#[derive(Debug)]
pub struct BinaryRows {
    buf: Vec<u8>,
    columns: i16,
    rows: usize,
}

/// Postgres timestamps count microseconds from 2000-01-01 UTC.
fn postgres_epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

impl BinaryRows {
    pub fn new(columns: i16) -> Self {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self {
            buf,
            columns,
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Starts a row; exactly `columns` fields must follow.
    pub fn row(&mut self) -> &mut Self {
        self.rows += 1;
        self.buf.extend_from_slice(&self.columns.to_be_bytes());
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        // Field lengths are i32; no column here comes near 2 GiB (bodies
        // are capped far below), and Postgres rejects a malformed stream.
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    pub fn uuid(&mut self, value: &Uuid) -> &mut Self {
        self.field(value.as_bytes())
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.field(value.as_bytes())
    }

    pub fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn int4(&mut self, value: i32) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    pub fn opt_int4(&mut self, value: Option<i32>) -> &mut Self {
        match value {
            Some(v) => self.int4(v),
            None => self.null(),
        }
    }

    /// A one-dimensional `text[]` without nulls (`{}` when empty).
    pub fn text_array<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        const TEXT_OID: u32 = 25;
        let mut field =
            Vec::with_capacity(20 + items.iter().map(|i| 4 + i.as_ref().len()).sum::<usize>());
        let dimensions: i32 = if items.is_empty() { 0 } else { 1 };
        field.extend_from_slice(&dimensions.to_be_bytes());
        field.extend_from_slice(&0i32.to_be_bytes()); // no nulls
        field.extend_from_slice(&TEXT_OID.to_be_bytes());
        if !items.is_empty() {
            let len = i32::try_from(items.len()).unwrap_or(i32::MAX);
            field.extend_from_slice(&len.to_be_bytes());
            field.extend_from_slice(&1i32.to_be_bytes()); // lower bound
            for item in items {
                let bytes = item.as_ref().as_bytes();
                let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
                field.extend_from_slice(&len.to_be_bytes());
                field.extend_from_slice(bytes);
            }
        }
        self.field(&field)
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.field(&[u8::from(value)])
    }

    pub fn int8(&mut self, value: i64) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    /// Encoded like sqlx encodes a bound `DateTime<Utc>` (whole
    /// microseconds), so rows written either way compare equal.
    pub fn timestamptz(&mut self, value: &DateTime<Utc>) -> &mut Self {
        match (*value - postgres_epoch()).num_microseconds() {
            Some(micros) => self.int8(micros),
            // Beyond ±292,000 years: not a time this system produces.
            None => self.null(),
        }
    }

    pub fn opt_timestamptz(&mut self, value: Option<&DateTime<Utc>>) -> &mut Self {
        match value {
            Some(v) => self.timestamptz(v),
            None => self.null(),
        }
    }

    /// Sends the rows into `table (columns)`; returns how many Postgres
    /// inserted.
    ///
    /// # Errors
    /// Database errors, including a duplicate key.
    pub async fn copy_into(
        mut self,
        conn: &mut PgConnection,
        table: &str,
        columns: &str,
    ) -> Result<u64, sqlx::Error> {
        if self.rows == 0 {
            return Ok(0);
        }
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        copy.send(self.buf).await?;
        copy.finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field after the row's column count: its length, then its bytes.
    fn only_field(rows: &BinaryRows) -> &[u8] {
        let header = 11 + 4 + 4 + 2; // signature, flags, extension, count
        &rows.buf[header + 4..]
    }

    #[test]
    fn text_arrays_are_one_dimensional_text_without_nulls() {
        let mut rows = BinaryRows::new(1);
        rows.row().text_array(&["a", "bc"]);
        let mut want = Vec::new();
        for word in [1i32, 0, 25, 2, 1, 1] {
            want.extend_from_slice(&word.to_be_bytes());
        }
        want.extend_from_slice(b"a");
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(b"bc");
        assert_eq!(only_field(&rows), want.as_slice());
        assert_eq!(&rows.buf[21..25], &(want.len() as i32).to_be_bytes());
    }

    #[test]
    fn an_empty_text_array_has_no_dimension() {
        let mut rows = BinaryRows::new(1);
        rows.row().text_array::<&str>(&[]);
        let mut want = Vec::new();
        for word in [0i32, 0, 25] {
            want.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(only_field(&rows), want.as_slice());
    }
}
