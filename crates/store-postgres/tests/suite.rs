//! The engine's store conformance suite (the same one the SQLite store runs), on
//! PostgreSQL: each test gets a fresh schema of the database named by
//! `LEARNFLOW_TEST_DATABASE_URL` (see `learnflow_store_postgres::testing`), dropped afterwards.

use std::sync::Arc;

use learnflow_engine::Store;
use learnflow_store_postgres::PostgresStore;

use learnflow_store_postgres::testing::TestDb;

learnflow_engine::store_conformance_suite!(|| async {
    let db = TestDb::new()?;
    let store = PostgresStore::connect(&db.url, 8).await.expect("store opens");
    Some((Arc::new(store) as Arc<dyn Store>, db))
});
