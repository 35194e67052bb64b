//! # learnflow-store-postgres
//!
//! LearnFlow on PostgreSQL, for several nodes sharing one database: a connection pool
//! that rides out server restarts ([`pool`]), versioned migrations that run at
//! start-up (one node at a time, under an advisory lock; a schema newer than the binary
//! is refused; a server without pgvector is named as such), and [`PostgresStore`], the
//! engine's store, where work is claimed with `FOR UPDATE SKIP LOCKED` and leases, and
//! concurrency slots and throttles live in the database so limits hold across nodes.

#![warn(missing_docs)]

pub mod pool;
mod schema;
pub mod testing;

pub use pool::{FailureKind, OpError, PgFailure, PgPool, Tx};
pub use schema::{migrate, migrate_set, SchemaError, SCHEMA_VERSION};

mod bench;
mod events;
mod fail;
mod flow;
mod journal;
mod leases;
mod rows;
mod runs;
mod slots;
mod store;
mod timers;
mod waits;

pub use bench::raw_commit_baseline;
pub use store::PostgresStore;
