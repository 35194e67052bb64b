//! The schema against a real PostgreSQL with pgvector (`scripts/pg.sh start` runs one;
//! the URL comes from `LEARNFLOW_TEST_DATABASE_URL`). Under `CI=true` a missing server
//! fails the test; elsewhere the test says loudly that it skipped.

use learnflow_store_postgres::{connect, migrate, SchemaError, SCHEMA_VERSION};

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

/// A client whose `search_path` is a fresh schema, so tests do not meet.
async fn isolated(url: &str) -> (tokio_postgres::Client, String) {
    let client = connect(url).await.expect("PostgreSQL answers");
    let schema = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}, public"
        ))
        .await
        .unwrap();
    (client, schema)
}

async fn table_names(client: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn migrations_create_the_schema_once_and_refuse_a_newer_one() {
    let Some(url) = url() else { return };
    let (mut client, schema) = isolated(&url).await;
    assert_eq!(migrate(&mut client).await.unwrap(), SCHEMA_VERSION);
    let tables = table_names(&client, &schema).await;
    for t in [
        "events",
        "runs",
        "steps",
        "waits",
        "throttle",
        "idempotency",
        "nodes",
        "learnflow_schema",
    ] {
        assert!(tables.contains(&t.to_string()), "{t} missing from {tables:?}");
    }
    // Again: nothing to do, nothing breaks.
    assert_eq!(migrate(&mut client).await.unwrap(), SCHEMA_VERSION);
    // pgvector works in this database.
    let d: f64 = client
        .query_one("SELECT ('[1,2,3]'::vector <-> '[1,2,4]'::vector)::float8", &[])
        .await
        .unwrap()
        .get(0);
    assert!((d - 1.0).abs() < 1e-9);
    // A database from the future is refused with a clear message.
    client
        .execute("UPDATE learnflow_schema SET version = version + 1", &[])
        .await
        .unwrap();
    let err = migrate(&mut client).await.unwrap_err();
    assert!(matches!(err, SchemaError::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("newer than this binary"), "{err}");
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(url) = url() else { return };
    let (admin, schema) = isolated(&url).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, schema) = (url.clone(), schema.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = connect(&url).await.unwrap();
            c.batch_execute(&format!("SET search_path TO {schema}, public"))
                .await
                .unwrap();
            migrate(&mut c).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), SCHEMA_VERSION);
    }
    let versions: i64 = admin
        .query_one("SELECT COUNT(*) FROM learnflow_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_clear_error() {
    let err = connect("postgres://postgres@127.0.0.1:1/none").await.unwrap_err();
    assert!(err.to_string().contains("cannot connect to PostgreSQL"), "{err}");
}

/// The machine's own PostgreSQL (15, port 5432, no pgvector), or
/// `LEARNFLOW_TEST_PLAIN_DATABASE_URL`: a server without pgvector is refused clearly.
#[tokio::test]
async fn a_server_without_pgvector_is_refused_with_the_reason() {
    let url = std::env::var("LEARNFLOW_TEST_PLAIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut client = match connect(&url).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("{url}: {e}"),
        Err(e) => {
            eprintln!("WARNING: SKIPPING the no-pgvector test: {e}");
            return;
        }
    };
    let has_vector = client
        .query_opt("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'", &[])
        .await
        .unwrap()
        .is_some();
    if has_vector {
        eprintln!("WARNING: SKIPPING the no-pgvector test: {url} has pgvector");
        return;
    }
    let err = migrate(&mut client).await.unwrap_err();
    assert!(matches!(err, SchemaError::NoVector), "{err}");
    assert!(err.to_string().contains("pgvector"), "{err}");
}
