//! The schema against a real PostgreSQL with pgvector (`scripts/pg.sh start` runs one;
//! the URL comes from `LEARNFLOW_TEST_DATABASE_URL`). Under `CI=true` a missing server
//! fails the test; elsewhere the test says loudly that it skipped.

use learnflow_store_postgres::{migrate, PgFailure, PgPool, SchemaError, Tx, SCHEMA_VERSION};

fn url() -> Option<String> {
    match std::env::var("LEARNFLOW_TEST_DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("LEARNFLOW_TEST_DATABASE_URL is not set (scripts/pg.sh start prints it)")
        }
        _ => {
            eprintln!("WARNING: SKIPPING the PostgreSQL tests: set LEARNFLOW_TEST_DATABASE_URL (scripts/pg.sh start)");
            None
        }
    }
}

/// A pool whose `search_path` is a fresh schema, so tests do not meet.
async fn isolated(url: &str) -> (PgPool, String) {
    let schema = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let admin = PgPool::new(url, 1).unwrap();
    sql(&admin, &format!("CREATE SCHEMA {schema}")).await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let pool = PgPool::new(&format!("{url}{sep}options=-csearch_path%3D{schema},public"), 4).unwrap();
    (pool, schema)
}

async fn sql(pool: &PgPool, text: &str) {
    let text = text.to_string();
    pool.tx(move |tx: &mut Tx<'_>| tx.batch(&text)).await.unwrap();
}

async fn table_names(pool: &PgPool, schema: &str) -> Vec<String> {
    let schema = schema.to_string();
    pool.tx(move |tx: &mut Tx<'_>| {
        Ok::<_, PgFailure>(
            tx.query_dynamic(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
                &[&schema],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        )
    })
    .await
    .unwrap()
}

async fn one_f64(pool: &PgPool, text: &'static str) -> f64 {
    pool.tx(move |tx: &mut Tx<'_>| Ok::<_, PgFailure>(tx.query_one(text, &[])?.get(0)))
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_create_the_schema_once_and_refuse_a_newer_one() {
    let Some(url) = url() else { return };
    let (pool, schema) = isolated(&url).await;
    assert_eq!(migrate(&pool).await.unwrap(), SCHEMA_VERSION);
    let tables = table_names(&pool, &schema).await;
    for t in [
        "events",
        "runs",
        "steps",
        "waits",
        "throttle",
        "idempotency",
        "nodes",
        "slots",
        "learnflow_schema",
    ] {
        assert!(tables.contains(&t.to_string()), "{t} missing from {tables:?}");
    }
    // Again: nothing to do, nothing breaks.
    assert_eq!(migrate(&pool).await.unwrap(), SCHEMA_VERSION);
    // pgvector works in this database.
    let d = one_f64(&pool, "SELECT ('[1,2,3]'::vector <-> '[1,2,4]'::vector)::float8").await;
    assert!((d - 1.0).abs() < 1e-9);
    // A database from the future is refused with a clear message.
    sql(&pool, "UPDATE learnflow_schema SET version = version + 1").await;
    let err = migrate(&pool).await.unwrap_err();
    assert!(matches!(err, SchemaError::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("newer than this binary"), "{err}");
    sql(&pool, &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(url) = url() else { return };
    let (admin, schema) = isolated(&url).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, schema) = (url.clone(), schema.clone());
        tasks.push(tokio::spawn(async move {
            let pool = PgPool::new(&format!("{url}?options=-csearch_path%3D{schema},public"), 1).unwrap();
            migrate(&pool).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), SCHEMA_VERSION);
    }
    let versions = one_f64(&admin, "SELECT COUNT(*)::float8 FROM learnflow_schema").await;
    assert_eq!(versions, 1.0);
    sql(&admin, &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_clear_error() {
    let pool = PgPool::new("postgres://postgres@127.0.0.1:1/none", 1).unwrap();
    let err = pool.check().await.unwrap_err();
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    assert!(PgPool::new("mysql://what", 1).is_err());
}

/// The machine's own PostgreSQL (15, port 5432, no pgvector), or
/// `LEARNFLOW_TEST_PLAIN_DATABASE_URL`: a server without pgvector is refused clearly.
#[tokio::test]
async fn a_server_without_pgvector_is_refused_with_the_reason() {
    let url = std::env::var("LEARNFLOW_TEST_PLAIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pool = PgPool::new(&url, 1).unwrap();
    match pool.check().await {
        Ok(()) => {}
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("{url}: {e}"),
        Err(e) => {
            eprintln!("WARNING: SKIPPING the no-pgvector test: {e}");
            return;
        }
    }
    let has_vector = one_f64(
        &pool,
        "SELECT COUNT(*)::float8 FROM pg_available_extensions WHERE name = 'vector'",
    )
    .await;
    if has_vector > 0.0 {
        eprintln!("WARNING: SKIPPING the no-pgvector test: {url} has pgvector");
        return;
    }
    let err = migrate(&pool).await.unwrap_err();
    assert!(matches!(err, SchemaError::NoVector), "{err}");
    assert!(err.to_string().contains("pgvector"), "{err}");
}
