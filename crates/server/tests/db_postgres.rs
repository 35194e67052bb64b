//! The server's tables behave the same on SQLite and on PostgreSQL: one set of checks
//! (users and their first admin, tokens, webhooks per user, the progress log) runs on
//! both, and on PostgreSQL nodes share the tables and a stream reading the progress
//! log misses nothing that several nodes append at once.
//!
//! The PostgreSQL URL comes from `LEARNFLOW_TEST_DATABASE_URL` (`scripts/pg.sh start`
//! prints it); each test works in a fresh schema. Without it those tests say loudly
//! that they skipped; under `CI=true` they fail.

use std::collections::BTreeSet;
use std::time::Duration;

use learnflow_server::db::{DbError, NewProgress, ServerDb};
use learnflow_store_postgres::testing::TestDb;
use learnflow_store_postgres::{PgPool, Tx};
use serde_json::json;

/// A fresh schema; `pool()` connects with it as `search_path`.
struct Schema(TestDb);

impl Schema {
    fn new() -> Option<Schema> {
        TestDb::new().map(Schema)
    }

    fn pool(&self) -> PgPool {
        self.0.pool(4)
    }
}

async fn sql(pool: &PgPool, text: &str) {
    let text = text.to_string();
    pool.tx(move |tx: &mut Tx<'_>| tx.batch(&text)).await.unwrap();
}

fn entry(doc: &str, kind: &str) -> NewProgress {
    NewProgress {
        document_id: doc.into(),
        user_id: "usr_1".into(),
        run_id: "run_1".into(),
        at: 1_700_000_000_000,
        kind: kind.into(),
        body: json!({ "type": kind, "documentId": doc, "detail": { "attempt": 2, "ok": true, "n": 1.5 } }),
    }
}

/// Everything both backends must do alike.
async fn behaves_as_the_server_db(db: &ServerDb) {
    // Users: the first one (created by `serve` when there is none) is the admin.
    assert_eq!(db.user_count().await.unwrap(), 0);
    let (admin, admin_token) = db.create_user("admin", true).await.unwrap();
    assert!(admin.admin && admin.id.starts_with("usr_"), "{admin:?}");
    let (ada, ada_token) = db.create_user("  ada ", false).await.unwrap();
    assert_eq!((ada.name.as_str(), ada.admin), ("ada", false));
    assert_eq!(db.user_count().await.unwrap(), 2);
    for (name, why) in [
        ("ada", "taken"),
        (" ada", "taken after trimming"),
        ("  ", "blank"),
    ] {
        let err = db.create_user(name, true).await.unwrap_err();
        assert!(matches!(err, DbError::Conflict(_)), "{name:?} ({why}): {err}");
    }
    assert!(db
        .create_user("ada", false)
        .await
        .unwrap_err()
        .to_string()
        .contains("already exists"));
    assert!(db.create_user(&"x".repeat(101), false).await.is_err(), "too long");
    assert_eq!(db.user_count().await.unwrap(), 2, "refused users are not created");

    // Tokens find their user; anything else finds no one.
    assert_eq!(db.user_by_token(&admin_token).await.unwrap(), Some(admin.clone()));
    assert_eq!(db.user_by_token(&ada_token).await.unwrap(), Some(ada.clone()));
    assert_eq!(db.user_by_token("lf_wrong").await.unwrap(), None);
    assert_eq!(db.user_by_token("").await.unwrap(), None);
    let hash = learnflow_server::db::token_hash(&ada_token);
    assert_eq!(
        db.user_by_token(&hash).await.unwrap(),
        None,
        "the stored hash is no token"
    );

    // Webhooks belong to their user.
    let first = db.add_webhook(&ada.id, "https://example.com/a").await.unwrap();
    let second = db.add_webhook(&ada.id, "https://example.com/b").await.unwrap();
    let theirs = db
        .add_webhook(&admin.id, "https://example.com/admin")
        .await
        .unwrap();
    assert!(first.secret.starts_with("whsec_") && first.id.starts_with("whk_"));
    let mine = db.webhooks(&ada.id).await.unwrap();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    assert_eq!(mine, expected);
    assert_eq!(db.webhook(&ada.id, &first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        db.webhook(&ada.id, &theirs.id).await.unwrap(),
        None,
        "another user's is invisible"
    );
    assert!(
        !db.delete_webhook(&ada.id, &theirs.id).await.unwrap(),
        "and cannot be deleted"
    );
    assert_eq!(
        db.webhooks(&admin.id).await.unwrap(),
        std::slice::from_ref(&theirs)
    );
    assert!(db.delete_webhook(&ada.id, &first.id).await.unwrap());
    assert!(
        !db.delete_webhook(&ada.id, &first.id).await.unwrap(),
        "already gone"
    );
    assert_eq!(db.webhooks(&ada.id).await.unwrap(), [second]);
    assert!(db.webhooks("usr_nobody").await.unwrap().is_empty());

    // The progress log: increasing positions, read after a position, per document.
    assert_eq!(db.append_progress(Vec::new()).await.unwrap(), None);
    let last = db
        .append_progress(vec![
            entry("d1", "run.started"),
            entry("d2", "run.started"),
            entry("d1", "step.started"),
        ])
        .await
        .unwrap()
        .unwrap();
    let later = db
        .append_progress(vec![entry("d1", "step.completed"), entry("d1", "completed")])
        .await
        .unwrap()
        .unwrap();
    assert!(later > last, "{later} > {last}");
    let d1 = db.progress_after("d1", 0, 100).await.unwrap();
    let kinds: Vec<&str> = d1.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["run.started", "step.started", "step.completed", "completed"]
    );
    assert!(d1.windows(2).all(|w| w[0].seq < w[1].seq), "increasing");
    assert_eq!(
        (d1[1].seq, d1[3].seq),
        (last, later),
        "the last seq of each append"
    );
    assert!(d1.iter().all(|r| r.document_id == "d1"));
    assert_eq!(
        d1[2].body,
        entry("d1", "step.completed").body,
        "bodies round-trip"
    );
    let after = db.progress_after("d1", d1[1].seq, 100).await.unwrap();
    assert_eq!(after, d1[2..]);
    assert_eq!(db.progress_after("d1", 0, 2).await.unwrap(), d1[..2], "limited");
    assert!(db.progress_after("d1", later, 100).await.unwrap().is_empty());
    assert_eq!(db.progress_after("d2", 0, 100).await.unwrap().len(), 1);

    db.delete_progress("d1").await.unwrap();
    assert!(db.progress_after("d1", 0, 100).await.unwrap().is_empty());
    assert_eq!(
        db.progress_after("d2", 0, 100).await.unwrap().len(),
        1,
        "other documents stay"
    );
    // New entries come after every entry still in the log (SQLite may hand out again
    // the positions of deleted entries at the end; no stream of a live document has
    // read them).
    let kept = db.progress_after("d2", 0, 100).await.unwrap()[0].seq;
    let next = db
        .append_progress(vec![entry("d1", "run.queued")])
        .await
        .unwrap()
        .unwrap();
    assert!(next > kept, "{next} > {kept}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_users_tokens_webhooks_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let db = ServerDb::open(&dir.path().join("server.db")).unwrap();
    behaves_as_the_server_db(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_users_tokens_webhooks_and_progress() {
    let Some(schema) = Schema::new() else { return };
    let db = ServerDb::open_postgres(schema.pool()).await.unwrap();
    behaves_as_the_server_db(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_share_users_and_a_newer_schema_is_refused() {
    let Some(schema) = Schema::new() else { return };
    let (one, two) = tokio::join!(
        ServerDb::open_postgres(schema.pool()),
        ServerDb::open_postgres(schema.pool())
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    let (ada, token) = one.create_user("ada", true).await.unwrap();
    assert_eq!(two.user_by_token(&token).await.unwrap(), Some(ada));
    assert!(matches!(
        two.create_user("ada", false).await,
        Err(DbError::Conflict(_))
    ));
    // Two nodes racing for one name: exactly one wins, the other gets a conflict.
    let (a, b) = tokio::join!(one.create_user("bob", false), two.create_user("bob", false));
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} / {b:?}");
    for r in [a, b] {
        if let Err(e) = r {
            assert!(matches!(e, DbError::Conflict(_)), "{e}");
        }
    }
    assert_eq!(two.user_count().await.unwrap(), 2);

    sql(
        &schema.pool(),
        "UPDATE learnflow_schema SET version = version + 1 WHERE component = 'server'",
    )
    .await;
    let err = ServerDb::open_postgres(schema.pool()).await.err().unwrap();
    assert!(matches!(err, DbError::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("newer than this binary"), "{err}");
}

/// Several nodes append a document's progress at once while a stream polls it the way
/// `progress::stream` does (rows after the last id it sent): it sees every row, in
/// order, none skipped because a lower seq committed after a higher one was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_misses_no_progress_that_several_nodes_append_at_once() {
    let Some(schema) = Schema::new() else { return };
    let nodes = [
        ServerDb::open_postgres(schema.pool()).await.unwrap(),
        ServerDb::open_postgres(schema.pool()).await.unwrap(),
        ServerDb::open_postgres(schema.pool()).await.unwrap(),
    ];
    const PER_NODE: usize = 150;
    let mut writers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let node = node.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..PER_NODE {
                // Other documents in the same batches, so the locks of several
                // documents are taken together.
                let batch = vec![
                    entry("d", &format!("n{n}-{i}")),
                    entry(&format!("other{}", i % 3), "x"),
                ];
                node.append_progress(batch).await.unwrap();
            }
        }));
    }
    let reader = nodes[0].clone();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let rows = reader.progress_after("d", after, 500).await.unwrap();
        if let Some(last) = rows.last() {
            after = last.seq;
        }
        seen.extend(rows.into_iter().map(|r| (r.seq, r.kind)));
        if done {
            // One more read after the writers finished: anything still missing now
            // was skipped for good.
            let rest = reader.progress_after("d", after, 500).await.unwrap();
            seen.extend(rest.into_iter().map(|r| (r.seq, r.kind)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let all: Vec<(i64, String)> = reader
        .progress_after("d", 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.kind))
        .collect();
    assert_eq!(all.len(), nodes.len() * PER_NODE);
    let kinds: BTreeSet<&str> = all.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kinds.len(), all.len(), "every append once");
    assert_eq!(seen, all, "the stream saw every row, in order");
}
