//! Failures inside a transaction: the database's, or the store's own (a decoding
//! error, a refusal), mapped onto the engine's store error kinds at the boundary.

use learnflow_engine::store::{StoreError, StoreErrorKind};
use postgres::types::FromSql;
use postgres::Row;

use crate::pool::{FailureKind, OpError, PgFailure};

/// A failed store operation.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The database failed (retried by the pool when transient).
    Pg(PgFailure),
    /// The store's own error.
    Store(StoreError),
}

impl From<PgFailure> for Fail {
    fn from(f: PgFailure) -> Self {
        Fail::Pg(f)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl OpError for Fail {
    fn failure(&self) -> Option<&PgFailure> {
        match self {
            Fail::Pg(f) => Some(f),
            Fail::Store(_) => None,
        }
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Store(e) => e,
            Fail::Pg(p) => {
                let kind = match p.kind {
                    FailureKind::Constraint => StoreErrorKind::Conflict,
                    FailureKind::Transient | FailureKind::Ambiguous | FailureKind::Other => {
                        StoreErrorKind::Unavailable
                    }
                };
                StoreError::new(kind, p.to_string())
            }
        }
    }
}

/// A decoding failure of stored data.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> Fail {
    Fail::Store(StoreError::new(StoreErrorKind::Corrupt, what.to_string()))
}

/// Column `i` of a row, as `T` (a type mismatch is corrupt data, not a panic).
pub(crate) fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, Fail> {
    row.try_get(i).map_err(|e| corrupt(format!("column {i}: {e}")))
}
