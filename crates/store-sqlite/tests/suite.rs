//! The engine's store conformance suite, on SQLite.

use std::sync::Arc;

use learnflow_engine::Store;
use learnflow_store_sqlite::SqliteStore;

learnflow_engine::store_conformance_suite!(|| async {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("suite.db")).expect("store opens");
    Some((Arc::new(store) as Arc<dyn Store>, dir))
});
