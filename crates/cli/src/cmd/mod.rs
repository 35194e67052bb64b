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
use learnflow_store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::Config;

/// Opens the store the configuration names.
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let path = config
        .sqlite_path()
        .map_err(|e| crate::UsageError(e.to_string()))?;
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
