//! Rows into structs: `from_row!` writes the `sqlx::FromRow` impl of a struct whose
//! fields are named as the query's columns (sqlx's derive would need its proc macros,
//! which compile every database driver a second time), and the embedded migrations.

use std::borrow::Cow;

use futures_core::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType};

/// `from_row!(Type { field, other: String => Parsed, … })`: each field read from the
/// column of its name; `field: Raw` reads a `Raw` and converts it with `TryFrom`.
macro_rules! from_row {
    ($ty:ident { $($field:ident $(: $raw:ty)?),* $(,)? }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for $ty {
            fn from_row(row: &'r sqlx::any::AnyRow) -> sqlx::Result<Self> {
                use sqlx::Row as _;
                Ok(Self { $($field: from_row!(@get row, $field $(, $raw)?)),* })
            }
        }
    };
    (@get $row:ident, $field:ident) => {
        $row.try_get(stringify!($field))?
    };
    (@get $row:ident, $field:ident, $raw:ty) => {{
        let raw: $raw = $row.try_get(stringify!($field))?;
        raw.try_into().map_err(|e| sqlx::Error::ColumnDecode {
            index: stringify!($field).into(),
            source: sqlx::error::BoxDynError::from(e),
        })?
    }};
}
pub(crate) use from_row;

/// Migrations compiled into the binary: `(file name, SQL)` pairs named as sqlx names
/// migration files (`<version>_<description>.sql`), so the checksums recorded in a
/// database are those of the files.
#[derive(Debug)]
pub struct Embedded(pub &'static [(&'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            self.0
                .iter()
                .map(|(file, sql)| {
                    let stem = file.strip_suffix(".sql").ok_or("not an .sql file")?;
                    let (version, description) =
                        stem.split_once('_').ok_or("no version in the name")?;
                    Ok(Migration::new(
                        version.parse()?,
                        Cow::Owned(description.replace('_', " ")),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        sql.starts_with("-- no-transaction"),
                    ))
                })
                .collect()
        })
    }
}
