//! Setting up and reading test databases (PostgreSQL and SQLite) from the
//! tests themselves, through sqlx on a small runtime of their own.

use futures::TryStreamExt;
use sqlx::{Row, ValueRef};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs SQL (several statements allowed) against a URL.
pub fn execute(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    runtime().block_on(async {
        let pool = connect(url).await?;
        sqlx::raw_sql(sql).execute(&pool).await?;
        pool.close().await;
        Ok(())
    })
}

/// Rows of a query, each cell as text ("NULL" for null).
pub fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    runtime()
        .block_on(async {
            let pool = connect(url).await?;
            let rows: Vec<sqlx::any::AnyRow> = sqlx::query(sql).fetch(&pool).try_collect().await?;
            let out = rows
                .iter()
                .map(|row| {
                    (0..row.columns().len())
                        .map(|i| cell(row, i))
                        .collect::<Vec<String>>()
                })
                .collect();
            pool.close().await;
            Ok::<_, sqlx::Error>(out)
        })
        .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"))
}

fn cell(row: &sqlx::any::AnyRow, i: usize) -> String {
    if row.try_get_raw(i).is_ok_and(|v| v.is_null()) {
        return "NULL".to_owned();
    }
    row.try_get::<String, _>(i)
        .or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string()))
        .or_else(|_| row.try_get::<i32, _>(i).map(|n| n.to_string()))
        .or_else(|_| row.try_get::<bool, _>(i).map(|b| b.to_string()))
        .or_else(|_| row.try_get::<f64, _>(i).map(|f| f.to_string()))
        .unwrap_or_else(|e| format!("<{e}>"))
}

async fn connect(url: &str) -> Result<sqlx::AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let url = if let Some(path) = url.strip_prefix("sqlite:") {
        format!("sqlite://{path}?mode=rwc")
    } else {
        url.to_owned()
    };
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
}
