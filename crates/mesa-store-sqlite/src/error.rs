//! The one place sqlx errors become [`StoreError`]s.

use mesa_store::StoreError;

/// Maps a sqlx error. `RowNotFound` becomes `NotFound` of `entity`; unique, foreign-key and
/// check violations become `Conflict`; anything else is a backend failure.
pub(crate) fn map_err(
    entity: &'static str,
    id: &dyn std::fmt::Display,
) -> impl Fn(sqlx::Error) -> StoreError {
    let id = id.to_string();
    move |err| match &err {
        sqlx::Error::RowNotFound => StoreError::NotFound {
            entity,
            id: id.clone(),
        },
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                StoreError::Conflict {
                    what: format!("{entity} {id} already exists ({})", db.message()),
                }
            } else if db.is_foreign_key_violation() {
                StoreError::Conflict {
                    what: format!("{entity} {id} refers to a missing row"),
                }
            } else if db.is_check_violation() {
                StoreError::Conflict {
                    what: format!("{entity} {id} has an invalid value ({})", db.message()),
                }
            } else {
                StoreError::backend(err)
            }
        }
        _ => StoreError::backend(err),
    }
}

/// Maps a sqlx error with no entity context (transaction control, pragmas).
pub(crate) fn backend(err: sqlx::Error) -> StoreError {
    StoreError::backend(err)
}

/// True if a sqlx error is a unique-constraint violation (used to tell collisions apart).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
