//! # learnflow-store-postgres
//!
//! LearnFlow on PostgreSQL, for several nodes sharing one database. This first part
//! owns the connection and the schema: versioned migrations that run at start-up (one
//! node at a time, under an advisory lock), a refusal of a schema newer than the binary,
//! and a clear error when the server lacks pgvector. The engine's `Store` on top of it
//! is the next step (see the issues).

mod schema;

pub use schema::{migrate, SchemaError, SCHEMA_VERSION};

/// Connects to `url` (`postgres://…`), spawning the connection's I/O task.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, SchemaError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| SchemaError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("PostgreSQL connection ended: {e}");
        }
    });
    Ok(client)
}
