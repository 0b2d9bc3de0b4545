//! The database behind the connector: PostgreSQL or SQLite through sqlx.
//! Owns connecting (password from the secret, TLS verified by default,
//! timeouts), the two dialects' differences (placeholders, casts), turning
//! rows into values and values into parameters, and naming failures.
//!
//! Invariant: every value reaches the database as a bound parameter; only
//! identifiers from the configuration (quoted) and type names the database
//! itself reported are part of a statement's text.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use engine::{ConnectorError, ConnectorErrorKind, ExportFailure, FailureKind};
use futures::TryStreamExt;
use rules::Value;
use sqlx::error::ErrorKind;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgSslMode, PgTypeKind};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Column, ConnectOptions, Executor, Row, Statement, TypeInfo, ValueRef};
use tokio::sync::mpsc;

use super::config::SqlConfig;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Postgres,
    Sqlite,
}

impl Kind {
    /// The kind a configured URL names (validated before).
    pub(crate) fn of(url: &str) -> Kind {
        if url.starts_with("sqlite:") {
            Kind::Sqlite
        } else {
            Kind::Postgres
        }
    }

    /// The `n`th (1-based) parameter, cast to the column's type where the
    /// database needs it: PostgreSQL parameters are sent as text and cast
    /// with the type the database reported for the column (`bytea` as
    /// bytes); SQLite converts by the column's affinity itself.
    pub(crate) fn param(self, n: usize, pg_type: Option<&str>) -> String {
        match (self, pg_type) {
            (Kind::Postgres, Some(t)) if t != "BYTEA" => format!("CAST(${n} AS {t})"),
            (Kind::Postgres, _) => format!("${n}"),
            (Kind::Sqlite, _) => format!("?{n}"),
        }
    }
}

/// A configured name as an SQL identifier: `hr.workers` → `"hr"."workers"`.
pub(crate) fn quote(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// A column name as an SQL identifier (never split at dots).
pub(crate) fn quote_column(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Null,
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl Param {
    /// A value as a parameter: integers and bytes as themselves, everything
    /// else in its text form (RFC 3339 for date-times).
    pub(crate) fn of(value: &Value) -> Param {
        match value {
            Value::Null => Param::Null,
            Value::Int(i) => Param::Int(*i),
            Value::Bytes(b) => Param::Bytes(b.clone()),
            Value::Str(s) => Param::Text(s.clone()),
            other => Param::Text(other.to_string()),
        }
    }

    /// The parameter for a column of this type (as the database reports
    /// it): PostgreSQL gets text to cast (bytes as bytes: base64 text, the
    /// form bytes take in flows, is decoded for `BYTEA`); SQLite gets
    /// `true`/`false` as 1/0 for a boolean column and decoded bytes for a
    /// `BLOB` column, and everything else as it is (affinity converts).
    pub(crate) fn for_column(self, kind: Kind, column_type: Option<&str>) -> Param {
        let column_type = column_type.map(str::to_ascii_uppercase);
        let ty = column_type.as_deref().unwrap_or("");
        match (kind, self) {
            (_, Param::Text(s)) if ty == "BYTEA" || ty == "BLOB" => Param::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(&s)
                    .unwrap_or_else(|_| s.into_bytes()),
            ),
            (Kind::Postgres, Param::Int(i)) => Param::Text(i.to_string()),
            (Kind::Sqlite, Param::Text(s)) if ty.contains("BOOL") => match s.as_str() {
                "true" => Param::Int(1),
                "false" => Param::Int(0),
                _ => Param::Text(s),
            },
            (_, p) => p,
        }
    }
}

/// Column names of a result, shared by its rows.
pub(crate) type Columns = std::sync::Arc<[String]>;

/// One row: its columns and their values in order.
#[derive(Debug, Clone)]
pub(crate) struct DbRow {
    pub(crate) columns: Columns,
    pub(crate) values: Vec<Value>,
}

impl DbRow {
    /// The value of a column by name.
    pub(crate) fn get(&self, column: &str) -> Option<&Value> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| &self.values[i])
    }
}

/// What a row stream carries: rows, then an end marker, so a reader that
/// dies is told from one that finished.
#[derive(Debug)]
pub(crate) enum Streamed {
    Row(DbRow),
    End,
}

/// A database failure with the connector's words around it.
#[derive(Debug)]
pub(crate) enum DbError {
    /// sqlx's error.
    Sql(sqlx::Error),
    /// A column of a type mvsync does not read.
    Unsupported { column: String, type_name: String },
    /// The database sent nothing for this long.
    Silent(Duration),
    /// The reading task ended without finishing.
    ReaderLost,
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        DbError::Sql(e)
    }
}

/// An open pool.
#[derive(Debug, Clone)]
enum Pool {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

/// The connected database.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pub(crate) kind: Kind,
    /// How messages name it: the server, port and database (or the
    /// SQLite path) as parsed, never the configured URL's other parts.
    pub(crate) shown: String,
    /// How long one statement may run (and a read wait for its next row).
    pub(crate) timeout: Duration,
    pool: Pool,
}

/// Whether a PostgreSQL host is this machine (where TLS is optional).
fn is_loopback(host: &str) -> bool {
    host.starts_with('/') || matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

impl Db {
    /// Opens the pool and makes one connection, so a wrong password or a
    /// server that is down fails here, before anything is read.
    pub(crate) async fn connect(config: &SqlConfig, base_dir: &Path) -> Result<Db, ConnectorError> {
        let url = config.url.0.as_str();
        let acquire = Duration::from_secs(config.connect_timeout_secs.max(1));
        let timeout = Duration::from_secs(config.statement_timeout_secs.max(1));
        let (pool, shown) = match Kind::of(url) {
            Kind::Sqlite => {
                let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
                let configured = rest.split('?').next().unwrap_or(rest);
                let shown = format!("sqlite:{configured}");
                let path = base_dir.join(configured);
                if !path.is_file() {
                    return Err(ConnectorError::unavailable(format!(
                        "{shown}: there is no SQLite database at {}",
                        path.display()
                    )));
                }
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(false)
                    .busy_timeout(acquire)
                    .foreign_keys(true)
                    .log_statements(log::LevelFilter::Trace)
                    .log_slow_statements(log::LevelFilter::Off, Duration::ZERO);
                let pool = SqlitePoolOptions::new()
                    .max_connections(config.pool_size)
                    .acquire_timeout(acquire)
                    .connect_with(options)
                    .await
                    .map_err(|e| connector_error(&shown, "cannot open the database", &e.into()))?;
                (Pool::Sqlite(pool), shown)
            }
            Kind::Postgres => {
                // The parse error never echoes the URL, and neither does this.
                let mut options: PgConnectOptions = url.parse().map_err(|e| {
                    ConnectorError::of(
                        ConnectorErrorKind::Configuration,
                        format!("the connector's PostgreSQL URL is invalid: {e}"),
                    )
                })?;
                let shown = format!(
                    "postgres://{}@{}:{}/{}",
                    options.get_username(),
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap_or("")
                );
                if let Some(secret) = &config.password {
                    let password = secret.resolve(base_dir).map_err(|e| {
                        ConnectorError::of(
                            ConnectorErrorKind::Configuration,
                            format!("{shown}: {e}"),
                        )
                    })?;
                    options = options.password(password.expose());
                }
                let loopback = is_loopback(options.get_host());
                if !url.contains("sslmode=") {
                    // Verified TLS unless the server is this machine.
                    let mode = if loopback {
                        PgSslMode::Prefer
                    } else {
                        PgSslMode::VerifyFull
                    };
                    options = options.ssl_mode(mode);
                }
                if let Some(ca) = &config.ca_file {
                    options = options.ssl_root_cert(base_dir.join(ca));
                }
                if !loopback && !matches!(options.get_ssl_mode(), PgSslMode::VerifyFull) {
                    tracing::warn!(
                        "{shown}: the server's TLS certificate is NOT verified ({:?}); use sslmode=verify-full outside tests",
                        options.get_ssl_mode()
                    );
                }
                // A streamed import is one long statement: not worth a warning.
                let options = options
                    .application_name("mvsync")
                    .log_statements(log::LevelFilter::Trace)
                    .log_slow_statements(log::LevelFilter::Off, Duration::ZERO);
                let pool = PgPoolOptions::new()
                    .max_connections(config.pool_size)
                    .acquire_timeout(acquire)
                    .connect_with(options)
                    .await
                    .map_err(|e| connector_error(&shown, "cannot connect", &e.into()))?;
                (Pool::Pg(pool), shown)
            }
        };
        Ok(Db {
            kind: Kind::of(url),
            shown,
            timeout,
            pool,
        })
    }

    /// Runs a query and streams its rows through a bounded channel: the
    /// result is never in memory as a whole, and a slow consumer slows the
    /// reading down. The last item is `End` (or an error); a wait of more
    /// than the statement timeout for the next row is an error, so a
    /// connection that died silently never hangs an import.
    pub(crate) fn stream(&self, sql: String, params: Vec<Param>) -> RowStream {
        let (tx, rx) = mpsc::channel(512);
        let pool = self.pool.clone();
        let idle = self.timeout;
        tokio::spawn(async move {
            let outcome = match pool {
                Pool::Pg(pool) => {
                    let rows = bind_pg(sqlx::query(&sql), params).fetch(&pool);
                    forward(rows, pg_values, &tx, idle).await
                }
                Pool::Sqlite(pool) => {
                    let rows = bind_sqlite(sqlx::query(&sql), params).fetch(&pool);
                    forward(rows, sqlite_values, &tx, idle).await
                }
            };
            let last = match outcome {
                Ok(true) => Ok(Streamed::End),
                Ok(false) => return, // nobody listens
                Err(e) => Err(e),
            };
            let _ = tx.send(last).await;
        });
        RowStream { rx }
    }

    /// The first row of a query, if any.
    pub(crate) async fn fetch_optional(
        &self,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Option<DbRow>, DbError> {
        self.stream(sql.to_owned(), params).next().await
    }

    /// PostgreSQL's column types of a FROM item (a table, or a query with
    /// an alias), upper-case as the server reports them; empty for SQLite,
    /// which needs no casts.
    pub(crate) async fn relation_types(
        &self,
        relation: &str,
    ) -> Result<HashMap<String, String>, DbError> {
        let Pool::Pg(pool) = &self.pool else {
            return Ok(HashMap::new());
        };
        let sql = format!("SELECT * FROM {relation}");
        let statement = pool.prepare(&sql).await?;
        Ok(statement
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
            .collect())
    }

    /// A table's column types: PostgreSQL's type names, or SQLite's
    /// declared types (which decide booleans and blobs).
    pub(crate) async fn table_types(
        &self,
        table: &str,
    ) -> Result<HashMap<String, String>, DbError> {
        match self.kind {
            Kind::Postgres => self.relation_types(&quote(table)).await,
            Kind::Sqlite => {
                let name = table.rsplit('.').next().unwrap_or(table).to_owned();
                let mut rows = self.stream(
                    "SELECT name, type FROM pragma_table_info(?1)".to_owned(),
                    vec![Param::Text(name)],
                );
                let mut types = HashMap::new();
                while let Some(row) = rows.next().await? {
                    if let [Value::Str(name), Value::Str(ty)] = row.values.as_slice() {
                        types.insert(name.clone(), ty.to_ascii_uppercase());
                    }
                }
                Ok(types)
            }
        }
    }

    /// The types PostgreSQL infers for a statement's parameters (`None`
    /// where it cannot tell); empty for SQLite.
    pub(crate) async fn parameter_types(&self, sql: &str) -> Result<Vec<Option<String>>, DbError> {
        let Pool::Pg(pool) = &self.pool else {
            return Ok(Vec::new());
        };
        let statement = pool.prepare(sql).await?;
        Ok(match statement.parameters() {
            Some(sqlx::Either::Left(types)) => types
                .iter()
                .map(|t| Some(t.name().to_owned()).filter(|n| !n.is_empty() && n != "UNKNOWN"))
                .collect(),
            _ => Vec::new(),
        })
    }
}

/// The rows of one query, as `Db::stream` reads them.
pub(crate) struct RowStream {
    rx: mpsc::Receiver<Result<Streamed, DbError>>,
}

impl RowStream {
    /// The next row; `None` at the end. A reader that stopped without
    /// saying so is an error, never a quiet end.
    pub(crate) async fn next(&mut self) -> Result<Option<DbRow>, DbError> {
        match self.rx.recv().await {
            Some(Ok(Streamed::Row(row))) => Ok(Some(row)),
            Some(Ok(Streamed::End)) => Ok(None),
            Some(Err(e)) => Err(e),
            None => Err(DbError::ReaderLost),
        }
    }
}

/// Sends decoded rows until the end (`Ok(true)`), until nobody listens
/// (`Ok(false)`), or until a failure.
async fn forward<R: Row>(
    mut rows: impl futures::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    decode: fn(&R) -> Result<Vec<Value>, DbError>,
    tx: &mpsc::Sender<Result<Streamed, DbError>>,
    idle: Duration,
) -> Result<bool, DbError> {
    let mut columns: Option<Columns> = None;
    loop {
        let next = tokio::time::timeout(idle, rows.try_next())
            .await
            .map_err(|_| DbError::Silent(idle))??;
        let Some(row) = next else {
            return Ok(true);
        };
        let columns = columns.get_or_insert_with(|| names(row.columns())).clone();
        let values = decode(&row)?;
        if tx
            .send(Ok(Streamed::Row(DbRow { columns, values })))
            .await
            .is_err()
        {
            return Ok(false);
        }
    }
}

/// An open transaction.
pub(crate) struct Tx {
    inner: TxInner,
    /// The longest wait for one statement: past it the connection is taken
    /// as dead (a half-open connection never hangs an export).
    timeout: Duration,
}

enum TxInner {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Db {
    /// Starts a transaction. On PostgreSQL, statements in it are limited
    /// to the statement timeout, and deferred constraints are checked at
    /// each statement, so a bad change fails alone instead of failing the
    /// commit of the whole batch.
    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let inner = match &self.pool {
            Pool::Pg(p) => TxInner::Pg(p.begin().await?),
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin().await?),
        };
        let mut tx = Tx {
            inner,
            timeout: self.timeout,
        };
        if self.kind == Kind::Postgres {
            let ms = self.timeout.as_millis();
            tx.execute(&format!("SET LOCAL statement_timeout = {ms}"), Vec::new())
                .await?;
            tx.execute("SET CONSTRAINTS ALL IMMEDIATE", Vec::new())
                .await?;
        }
        Ok(tx)
    }
}

impl Tx {
    /// Runs a statement; the number of rows it touched.
    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<u64, sqlx::Error> {
        let run = async {
            Ok(match &mut self.inner {
                TxInner::Pg(tx) => bind_pg(sqlx::query(sql), params)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected(),
                TxInner::Sqlite(tx) => bind_sqlite(sqlx::query(sql), params)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected(),
            })
        };
        tokio::time::timeout(self.timeout + Duration::from_secs(5), run)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    /// The first row a statement returns, if any (`RETURNING`, a look-up).
    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Option<Vec<Value>>, DbError> {
        let run = async {
            Ok(match &mut self.inner {
                TxInner::Pg(tx) => match bind_pg(sqlx::query(sql), params)
                    .fetch_optional(&mut **tx)
                    .await?
                {
                    Some(row) => Some(pg_values(&row)?),
                    None => None,
                },
                TxInner::Sqlite(tx) => match bind_sqlite(sqlx::query(sql), params)
                    .fetch_optional(&mut **tx)
                    .await?
                {
                    Some(row) => Some(sqlite_values(&row)?),
                    None => None,
                },
            })
        };
        tokio::time::timeout(self.timeout + Duration::from_secs(5), run)
            .await
            .map_err(|_| DbError::Silent(self.timeout))?
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Pg(tx) => tx.commit().await,
            TxInner::Sqlite(tx) => tx.commit().await,
        }
    }
}

fn names(columns: &[impl Column]) -> Columns {
    columns.iter().map(|c| c.name().to_owned()).collect()
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind_pg(mut q: PgQuery<'_>, params: Vec<Param>) -> PgQuery<'_> {
    for p in params {
        q = match p {
            Param::Null => q.bind(None::<String>),
            Param::Text(s) => q.bind(s),
            Param::Int(n) => q.bind(n),
            Param::Bytes(b) => q.bind(b),
        };
    }
    q
}

fn bind_sqlite(mut q: SqliteQuery<'_>, params: Vec<Param>) -> SqliteQuery<'_> {
    for p in params {
        q = match p {
            Param::Null => q.bind(None::<String>),
            Param::Text(s) => q.bind(s),
            Param::Int(n) => q.bind(n),
            Param::Bytes(b) => q.bind(b),
        };
    }
    q
}

/// A PostgreSQL row's values, typed as the columns are.
fn pg_values(row: &PgRow) -> Result<Vec<Value>, DbError> {
    (0..row.len()).map(|i| pg_value(row, i)).collect()
}

fn pg_value(row: &PgRow, i: usize) -> Result<Value, DbError> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let info = raw.type_info().into_owned();
    Ok(match info.name() {
        "BOOL" => Value::Bool(row.try_get(i)?),
        "INT2" => Value::Int(row.try_get::<i16, _>(i)?.into()),
        "INT4" => Value::Int(row.try_get::<i32, _>(i)?.into()),
        "INT8" => Value::Int(row.try_get::<i64, _>(i)?),
        "FLOAT4" => Value::Str(row.try_get::<f32, _>(i)?.to_string()),
        "FLOAT8" => Value::Str(row.try_get::<f64, _>(i)?.to_string()),
        "NUMERIC" => Value::Str(
            numeric_text(row.try_get_unchecked::<&[u8], _>(i)?).ok_or_else(|| {
                DbError::Unsupported {
                    column: row.columns()[i].name().to_owned(),
                    type_name: "NUMERIC (NaN or infinite)".to_owned(),
                }
            })?,
        ),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "XML" => Value::Str(row.try_get(i)?),
        "TIMESTAMPTZ" => Value::DateTime(
            row.try_get::<chrono::DateTime<chrono::Utc>, _>(i)?
                .timestamp_micros(),
        ),
        "TIMESTAMP" => Value::DateTime(
            row.try_get::<chrono::NaiveDateTime, _>(i)?
                .and_utc()
                .timestamp_micros(),
        ),
        "DATE" => Value::Str(row.try_get::<chrono::NaiveDate, _>(i)?.to_string()),
        "UUID" => Value::Str(row.try_get::<sqlx::types::Uuid, _>(i)?.to_string()),
        "BYTEA" => Value::Bytes(row.try_get(i)?),
        "JSON" | "JSONB" => Value::Str(row.try_get::<sqlx::types::JsonValue, _>(i)?.to_string()),
        // Text-like types outside the core set: their binary form is text.
        "citext" => Value::Str(row.try_get_unchecked(i)?),
        _ if matches!(info.kind(), PgTypeKind::Enum(_)) => Value::Str(row.try_get_unchecked(i)?),
        other => {
            return Err(DbError::Unsupported {
                column: row.columns()[i].name().to_owned(),
                type_name: other.to_owned(),
            })
        }
    })
}

/// PostgreSQL's binary NUMERIC (base-10000 digits) as decimal text.
fn numeric_text(bytes: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> {
        Some(i16::from_be_bytes([
            *bytes.get(i * 2)?,
            *bytes.get(i * 2 + 1)?,
        ]))
    };
    let ndigits = usize::try_from(word(0)?).ok()?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = usize::try_from(word(3)?).ok()?;
    if sign == 0xC000 || sign == 0xD000 || sign == 0xF000 {
        return None; // NaN, +Inf, -Inf
    }
    let digits: Vec<i16> = (0..ndigits).map(|k| word(4 + k)).collect::<Option<_>>()?;
    let mut int = String::new();
    for pos in 0..=weight.max(-1) {
        let d = usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p))
            .copied()
            .unwrap_or(0);
        if int.is_empty() {
            if d != 0 {
                int = d.to_string();
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut pos = weight + 1;
    while frac.len() < dscale {
        let d = usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p))
            .copied()
            .unwrap_or(0);
        frac.push_str(&format!("{d:04}"));
        pos += 1;
    }
    frac.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Some(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

/// A SQLite row's values, typed by what each cell holds.
fn sqlite_values(row: &SqliteRow) -> Result<Vec<Value>, DbError> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let class = raw.type_info().name().to_owned();
            Ok(match class.as_str() {
                "INTEGER" | "BOOLEAN" => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
                "REAL" | "NUMERIC" => Value::Str(row.try_get_unchecked::<f64, _>(i)?.to_string()),
                "BLOB" => Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?),
                _ => Value::Str(row.try_get_unchecked::<String, _>(i)?),
            })
        })
        .collect()
}

/// The database's own code of a failure (`SQLSTATE 23505`, `SQLITE 2067`).
pub(crate) fn system_code(kind: Kind, e: &sqlx::Error) -> Option<String> {
    let code = e.as_database_error()?.code()?;
    Some(match kind {
        Kind::Postgres => format!("SQLSTATE {code}"),
        Kind::Sqlite => format!("SQLITE {code}"),
    })
}

/// A step-ending failure: what failed, where, and what kind of failure.
pub(crate) fn connector_error(shown: &str, doing: &str, e: &DbError) -> ConnectorError {
    let e = match e {
        DbError::Unsupported { column, type_name } => {
            return ConnectorError::of(
                ConnectorErrorKind::Configuration,
                format!(
                    "{shown}: column {column} has type {type_name}, which mvsync does not read; cast it in a `query` (for example {column}::text)"
                ),
            )
        }
        DbError::Silent(idle) => {
            return ConnectorError::unavailable(format!(
                "{shown}: {doing}: the database sent nothing for {} s (the connection may be dead)",
                idle.as_secs()
            ))
        }
        DbError::ReaderLost => {
            return ConnectorError::new(format!(
                "{shown}: {doing}: the reading task stopped unexpectedly"
            ))
        }
        DbError::Sql(e) => e,
    };
    let kind = match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => ConnectorErrorKind::Unavailable,
        sqlx::Error::Configuration(_) => ConnectorErrorKind::Configuration,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            match code.as_ref() {
                "28P01" | "28000" => ConnectorErrorKind::Authentication,
                // Unknown database, table, column, function; syntax and
                // type errors; SQLite's generic error (no such table or
                // column): the configuration names something wrong.
                "3D000" | "42P01" | "42703" | "42883" | "42601" | "42804" | "1" => {
                    ConnectorErrorKind::Configuration
                }
                // Cancelled (statement timeout) or shut down.
                "57014" => ConnectorErrorKind::Unavailable,
                // SQLite: busy, locked, cannot open.
                "5" | "6" | "14" | "261" | "517" => ConnectorErrorKind::Unavailable,
                c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                    ConnectorErrorKind::Unavailable
                }
                _ => ConnectorErrorKind::Other,
            }
        }
        _ => ConnectorErrorKind::Other,
    };
    let what = match kind {
        ConnectorErrorKind::Unavailable => {
            format!("{doing}: the database is unreachable or went away ({e})")
        }
        ConnectorErrorKind::Authentication => {
            format!("{doing}: the credentials were refused ({e})")
        }
        _ => format!("{doing}: {e}"),
    };
    ConnectorError::of(kind, format!("{shown}: {what}"))
}

/// What one failed change means, or `None` when the failure is the
/// connection's (the transaction is gone: no change of the batch applied).
pub(crate) fn export_failure(kind: Kind, e: &sqlx::Error, is_add: bool) -> Option<ExportFailure> {
    let d = e.as_database_error()?;
    let code = d.code().unwrap_or_default().into_owned();
    let failure = match d.kind() {
        ErrorKind::UniqueViolation if is_add => FailureKind::AlreadyExists,
        ErrorKind::UniqueViolation
        | ErrorKind::ForeignKeyViolation
        | ErrorKind::NotNullViolation
        | ErrorKind::CheckViolation => FailureKind::RejectedByPolicy,
        _ => match code.as_str() {
            "40001" | "40P01" | "55P03" | "57014" | "5" | "6" | "261" | "517" => {
                FailureKind::Retryable
            }
            "42501" => FailureKind::RejectedByPolicy,
            c if c.starts_with("08") || c.starts_with("57P") => return None,
            c if c.starts_with("23") || c == "19" || c == "275" || c == "1299" => {
                FailureKind::RejectedByPolicy
            }
            _ => FailureKind::Permanent,
        },
    };
    let mut f = ExportFailure::new(failure, d.message().to_owned());
    if let Some(code) = system_code(kind, e) {
        f = f.with_code(code);
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numeric_binary_reads_as_decimal_text() {
        // 12345.678 = [1, 2345, 6780] weight 1, dscale 3
        assert_eq!(
            numeric_text(&numeric(3, 1, 0, 3, &[1, 2345, 6780])).as_deref(),
            Some("12345.678")
        );
        // -0.05 = [500] weight -1, dscale 2
        assert_eq!(
            numeric_text(&numeric(1, -1, 0x4000, 2, &[500])).as_deref(),
            Some("-0.05")
        );
        // 0
        assert_eq!(
            numeric_text(&numeric(0, 0, 0, 0, &[])).as_deref(),
            Some("0")
        );
        // 10000 = [1] weight 1
        assert_eq!(
            numeric_text(&numeric(1, 1, 0, 0, &[1])).as_deref(),
            Some("10000")
        );
        // NaN
        assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])), None);
    }

    #[test]
    fn identifiers_are_quoted_and_split_at_dots() {
        assert_eq!(quote("hr.workers"), "\"hr\".\"workers\"");
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_column("a.b"), "\"a.b\"");
    }
}
