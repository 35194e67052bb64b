//! The subcommands.

pub mod app;
pub mod approve;
pub mod ask;
pub mod bench;
pub mod demo;
pub mod models;
pub mod process;
pub mod runs;
pub mod serve;
pub mod users;

use std::sync::Arc;

use anyhow::Context;
use learnflow_engine::Store;
use learnflow_pipeline::library::{Library, PostgresLibrary, SqliteLibrary};
use learnflow_server::db::ServerDb;
use learnflow_store_postgres::{PgPool, PostgresStore};
use learnflow_store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::{Config, Database};

fn database(config: &Config) -> anyhow::Result<Database> {
    config
        .database()
        .map_err(|e| crate::UsageError(e.to_string()).into())
}

fn pg_pool(config: &Config, url: &str) -> anyhow::Result<PgPool> {
    PgPool::new(url, config.pg_pool_size).map_err(|e| crate::UsageError(e.to_string()).into())
}

fn ensure_parent(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

/// Opens the store the configuration names (migrating its schema).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match database(config)? {
        Database::Sqlite(path) => {
            let store = SqliteStore::open_with(
                &path,
                SqliteOptions {
                    durability: config.sqlite_durability,
                    ..Default::default()
                },
            )
            .with_context(|| format!("opening the store at {}", path.display()))?;
            Ok(Arc::new(store))
        }
        Database::Postgres(url) => {
            let store = PostgresStore::open(pg_pool(config, &url)?)
                .await
                .context("opening the PostgreSQL store")?;
            Ok(Arc::new(store))
        }
    }
}

/// Opens the library (documents, text, chunks and embeddings, materials, threads)
/// in the configured database.
pub async fn open_library(config: &Config) -> anyhow::Result<Arc<dyn Library>> {
    match database(config)? {
        Database::Sqlite(path) => {
            ensure_parent(&path)?;
            Ok(Arc::new(
                SqliteLibrary::open(&path).context("opening the library")?,
            ))
        }
        Database::Postgres(url) => {
            let pool = pg_pool(config, &url)?;
            Ok(Arc::new(
                PostgresLibrary::open(pool)
                    .await
                    .context("opening the library on PostgreSQL")?,
            ))
        }
    }
}

/// Opens the server's tables (users, tokens, webhooks, progress) in the configured
/// database.
pub async fn open_server_db(config: &Config) -> anyhow::Result<ServerDb> {
    match database(config)? {
        Database::Sqlite(path) => {
            ensure_parent(&path)?;
            ServerDb::open(&path).with_context(|| format!("opening the server tables in {}", path.display()))
        }
        Database::Postgres(url) => ServerDb::open_postgres(pg_pool(config, &url)?)
            .await
            .context("opening the server tables on PostgreSQL"),
    }
}

/// Milliseconds as `12.3 ms` / `1.20 s`.
pub fn human_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}
