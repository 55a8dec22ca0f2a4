//! Named consumers' acknowledged positions in the event log.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{MAX_CONSUMERS, Move, StoreError, beyond_the_log, too_many_consumers};

/// See [`Store::ack`](crate::store::Store::ack) and [`Store::seek`](crate::store::Store::seek);
/// `durable` is the last durable sequence.
pub(super) fn set(
    conn: &Connection,
    consumer: &str,
    sequence: u64,
    durable: u64,
    how: Move,
) -> Result<u64, StoreError> {
    if sequence > durable {
        return Err(beyond_the_log(sequence, durable));
    }
    let sequence = i64::try_from(sequence).map_err(|_| beyond_the_log(sequence, durable))?;
    if position(conn, consumer)?.is_none() {
        let known: i64 = conn
            .prepare_cached("SELECT count(*) FROM consumers")?
            .query_row([], |r| r.get(0))?;
        if usize::try_from(known).unwrap_or(usize::MAX) >= MAX_CONSUMERS {
            return Err(too_many_consumers());
        }
    }
    let sql = match how {
        Move::Forward => {
            "INSERT INTO consumers (name, sequence) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET sequence = max(sequence, excluded.sequence) \
             RETURNING sequence"
        }
        Move::To => {
            "INSERT INTO consumers (name, sequence) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET sequence = excluded.sequence \
             RETURNING sequence"
        }
    };
    let position: i64 = conn
        .prepare_cached(sql)?
        .query_row(params![consumer, sequence], |r| r.get(0))?;
    Ok(u64::try_from(position).unwrap_or(0))
}

/// See [`Store::consumer_position`](crate::store::Store::consumer_position).
pub(super) fn position(conn: &Connection, consumer: &str) -> Result<Option<u64>, StoreError> {
    let position: Option<i64> = conn
        .prepare_cached("SELECT sequence FROM consumers WHERE name = ?1")?
        .query_row([consumer], |r| r.get(0))
        .optional()?;
    Ok(position.map(|p| u64::try_from(p).unwrap_or(0)))
}

/// See [`Store::consumer_positions`](crate::store::Store::consumer_positions).
pub(super) fn all(conn: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT name, sequence FROM consumers ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.map(|row| {
        let (name, sequence) = row?;
        Ok((name, u64::try_from(sequence).unwrap_or(0)))
    })
    .collect()
}
