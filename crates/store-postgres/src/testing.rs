//! Test support: a fresh schema per test in the database named by `LEARNFLOW_TEST_DATABASE_URL`
//! (`scripts/pg.sh start` prints it), dropped when the test ends. Under `CI=true` a
//! missing server fails; elsewhere tests say loudly that they skipped.

/// A test's own schema; `url` selects it through `search_path`.
pub struct TestDb {
    /// The database URL with this schema first in `search_path`.
    pub url: String,
    base: String,
    name: String,
}

/// The test database URL, or `None` (with a loud warning) outside CI when unset;
/// under `CI=true` a missing URL panics.
pub fn database_url() -> Option<String> {
    match std::env::var("LEARNFLOW_TEST_DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("LEARNFLOW_TEST_DATABASE_URL is not set (scripts/pg.sh start prints it)")
        }
        _ => {
            eprintln!(
                "WARNING: SKIPPING a PostgreSQL test: set LEARNFLOW_TEST_DATABASE_URL (scripts/pg.sh start)"
            );
            None
        }
    }
}

/// Runs statements on a blocking client off the async threads.
fn batch(url: &str, sql: String) -> Result<(), String> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).map_err(|e| e.to_string())?;
        c.batch_execute(&sql).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "thread panicked".to_string())?
}

impl TestDb {
    /// A fresh schema, or `None` (with a warning) outside CI without a server.
    pub fn new() -> Option<TestDb> {
        let base = database_url()?;
        let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
        batch(&base, format!("CREATE SCHEMA {name}")).expect("PostgreSQL answers");
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(TestDb {
            url: format!("{base}{sep}options=-csearch_path%3D{name},public"),
            base,
            name,
        })
    }
}

impl TestDb {
    /// A pool of `size` connections on this schema.
    pub fn pool(&self, size: usize) -> crate::PgPool {
        crate::PgPool::new(&self.url, size).expect("a valid test URL")
    }

    /// The URL with server settings added (`[("enable_seqscan", "off")]`).
    pub fn url_with_settings(&self, settings: &[(&str, &str)]) -> String {
        let mut url = self.url.clone();
        for (k, v) in settings {
            url.push_str(&format!("%20-c{k}%3D{v}"));
        }
        url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = batch(&self.base, format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}
