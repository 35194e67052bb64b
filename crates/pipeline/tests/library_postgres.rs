//! The library on PostgreSQL (+pgvector) behaves as the SQLite library: users see only
//! their documents, deleting a document removes everything of it, materials and turns
//! round-trip, and the same document searched with the same questions gives the same
//! passages in the same order, and the same cited answers, on both stores.
//!
//! The URL comes from `LEARNFLOW_TEST_DATABASE_URL` (`scripts/pg.sh start` prints it);
//! each test works in a fresh schema. Without it the tests say loudly that they
//! skipped; under `CI=true` they fail.

use std::sync::Arc;

use learnflow_ai::doc::{Chunk, DocumentText, PageText};
use learnflow_ai::embed::HashEmbedder;
use learnflow_ai::rag::chunk::{chunk_document, ChunkOptions};
use learnflow_ingest::IngestOptions;
use learnflow_pipeline::ask::{ask, AskRequest};
use learnflow_pipeline::blobs::BlobStore;
use learnflow_pipeline::library::{
    DocumentRecord, DocumentStatus, Library, LibraryError, MaterialRecord, PostgresLibrary, SqliteLibrary,
    TurnRecord,
};
use learnflow_pipeline::services::Services;
use learnflow_store_postgres::testing::TestDb;
use learnflow_store_postgres::{PgFailure, PgPool, Tx};
use serde_json::json;

const SAMPLE: &str = include_str!("../../../samples/photosynthesis.md");

/// A database whose `search_path` is a fresh schema (dropped when the test ends).
struct Db(TestDb);

impl Db {
    fn new() -> Option<Db> {
        TestDb::new().map(Db)
    }

    fn pool(&self) -> PgPool {
        self.0.pool(4)
    }

    /// A pool whose planner avoids sequential scans and sorts, as on a table so large
    /// that the HNSW index is the cheapest way to the nearest vectors.
    fn pool_preferring_indexes(&self) -> PgPool {
        let url = self
            .0
            .url_with_settings(&[("enable_seqscan", "off"), ("enable_sort", "off")]);
        PgPool::new(&url, 4).unwrap()
    }

    async fn library(&self) -> PostgresLibrary {
        PostgresLibrary::open(self.pool()).await.unwrap()
    }
}

async fn sql(pool: &PgPool, text: &str) {
    let text = text.to_string();
    pool.tx(move |tx: &mut Tx<'_>| tx.batch(&text)).await.unwrap();
}

async fn one_i64(pool: &PgPool, text: &'static str) -> i64 {
    pool.tx(move |tx: &mut Tx<'_>| Ok::<_, PgFailure>(tx.query_one(text, &[])?.get(0)))
        .await
        .unwrap()
}

fn record(id: &str, user: &str, hash: &str, created_at: i64) -> DocumentRecord {
    DocumentRecord {
        id: id.into(),
        user_id: user.into(),
        file_name: format!("{id}.md"),
        content_hash: hash.into(),
        blob_key: format!("blobs/{id}"),
        size: 1234,
        purpose: "exam-prep".into(),
        status: DocumentStatus::Queued,
        error: None,
        run_id: None,
        title: None,
        kind: None,
        pages: None,
        embed_model: None,
        created_at,
        updated_at: created_at,
    }
}

/// The sample's text as the extract step makes it, chunked with `options`.
fn sample_text(options: &ChunkOptions) -> (DocumentText, Vec<Chunk>) {
    let extracted = learnflow_ingest::extract(SAMPLE.as_bytes(), &IngestOptions::default()).unwrap();
    let text =
        learnflow_pipeline::steps::document_text(&extracted, extracted.title.clone().unwrap_or_default());
    let chunks = chunk_document(&text, options);
    (text, chunks)
}

fn small_chunks() -> ChunkOptions {
    ChunkOptions {
        target_chars: 200,
        max_chars: 300,
        overlap_chars: 0,
    }
}

fn embed(chunks: &[Chunk]) -> Vec<(String, Vec<f32>)> {
    let e = HashEmbedder::new();
    chunks
        .iter()
        .map(|c| (c.id.clone(), e.embed_one(&c.text)))
        .collect()
}

/// Puts a ready, embedded document into a library.
async fn put_ready(lib: &dyn Library, id: &str, user: &str, text: &DocumentText, chunks: &[Chunk]) {
    let mut doc = record(id, user, &format!("hash-{id}"), 1_000);
    doc.status = DocumentStatus::Ready;
    lib.put_document(&doc).await.unwrap();
    lib.put_text(id, text, chunks, "markdown", &[]).await.unwrap();
    lib.put_embeddings(id, "hash-384", &embed(chunks)).await.unwrap();
}

fn ids(passages: &[learnflow_pipeline::library::Passage]) -> Vec<&str> {
    passages.iter().map(|p| p.chunk.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_seen_only_by_their_owner() {
    let Some(db) = Db::new() else { return };
    let lib = db.library().await;
    lib.put_document(&record("d1", "ada", "h1", 1_000)).await.unwrap();
    lib.put_document(&record("d2", "ada", "h2", 2_000)).await.unwrap();
    lib.put_document(&record("d3", "bob", "h1", 3_000)).await.unwrap();

    assert_eq!(lib.document("ada", "d1").await.unwrap().unwrap().id, "d1");
    assert_eq!(lib.document("bob", "d1").await.unwrap(), None, "not bob's");
    assert_eq!(lib.document_any("d1").await.unwrap().unwrap().user_id, "ada");
    let listed: Vec<String> = lib
        .documents("ada")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(listed, ["d2", "d1"], "newest first, only ada's");
    assert_eq!(lib.document_by_hash("bob", "h1").await.unwrap().unwrap().id, "d3");
    assert_eq!(lib.document_by_hash("bob", "h2").await.unwrap(), None);

    // A record round-trips, and is replaced whole.
    let mut full = record("d1", "ada", "h1", 1_000);
    full.title = Some("Cells".into());
    full.kind = Some("pdf".into());
    full.pages = Some(7);
    full.embed_model = Some("hash-384".into());
    full.error = Some("none".into());
    full.run_id = Some("run_1".into());
    full.size = u64::from(u32::MAX) + 5;
    lib.put_document(&full).await.unwrap();
    assert_eq!(lib.document("ada", "d1").await.unwrap().unwrap(), full);

    lib.set_status("d1", DocumentStatus::Failed, Some("bad PDF"), Some("run_2"))
        .await
        .unwrap();
    let d = lib.document("ada", "d1").await.unwrap().unwrap();
    assert_eq!(
        (d.status, d.error.as_deref(), d.run_id.as_deref()),
        (DocumentStatus::Failed, Some("bad PDF"), Some("run_2"))
    );
    lib.set_status("d1", DocumentStatus::Ready, None, None)
        .await
        .unwrap();
    let d = lib.document("ada", "d1").await.unwrap().unwrap();
    assert_eq!(
        (d.error, d.run_id.as_deref()),
        (None, Some("run_2")),
        "no run id keeps the old one"
    );
    let err = lib
        .set_status("nope", DocumentStatus::Ready, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LibraryError::NotFound(ref id) if id == "nope"),
        "{err}"
    );

    // Another user cannot delete it.
    assert!(!lib.delete_document("bob", "d1").await.unwrap());
    assert!(lib.document("ada", "d1").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_document_removes_its_text_vectors_materials_and_threads() {
    let Some(db) = Db::new() else { return };
    let lib = db.library().await;
    let (text, chunks) = sample_text(&ChunkOptions::default());
    put_ready(&lib, "d1", "ada", &text, &chunks).await;
    put_ready(&lib, "d2", "ada", &text, &chunks).await;
    lib.put_materials(
        "d1",
        &[MaterialRecord {
            agent: "quiz".into(),
            status: "ready".into(),
            content: Some(json!({ "questions": [] })),
            error: None,
            priority: 1,
            focus: "all".into(),
        }],
    )
    .await
    .unwrap();
    let turn = TurnRecord {
        question: "q".into(),
        answer: "a".into(),
        detail: json!({}),
        at: 1,
    };
    lib.add_turn("ada", "d1", "t1", &turn).await.unwrap();

    let (stored_text, stored_chunks) = lib.text("d1").await.unwrap().unwrap();
    assert_eq!((stored_text, stored_chunks), (text.clone(), chunks.clone()));
    let q = HashEmbedder::new().embed_one("chlorophyll");
    assert!(!lib
        .search("d1", "chlorophyll", Some(&q), 5)
        .await
        .unwrap()
        .is_empty());
    let totals = "SELECT chunks FROM library_text_totals";
    assert_eq!(one_i64(&db.pool(), totals).await, 2 * chunks.len() as i64);

    assert!(lib.delete_document("ada", "d1").await.unwrap());
    assert!(!lib.delete_document("ada", "d1").await.unwrap(), "already gone");
    assert_eq!(lib.document("ada", "d1").await.unwrap(), None);
    assert_eq!(lib.text("d1").await.unwrap(), None);
    assert!(lib.materials("d1").await.unwrap().is_empty());
    assert!(lib.turns("ada", "d1", "t1").await.unwrap().is_empty());
    assert!(lib
        .search("d1", "chlorophyll", Some(&q), 5)
        .await
        .unwrap()
        .is_empty());
    let pool = db.pool();
    for (table, left) in [
        ("SELECT count(*) FROM pages WHERE document_id = 'd1'", 0),
        ("SELECT count(*) FROM chunks WHERE document_id = 'd1'", 0),
        (
            "SELECT count(*) FROM chunks WHERE document_id = 'd2'",
            chunks.len() as i64,
        ),
        (totals, chunks.len() as i64),
    ] {
        assert_eq!(one_i64(&pool, table).await, left, "{table}");
    }
    // The other document is untouched.
    assert!(!lib
        .search("d2", "chlorophyll", Some(&q), 5)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materials_are_replaced_per_agent_and_listed_by_priority() {
    let Some(db) = Db::new() else { return };
    let lib = db.library().await;
    let m = |agent: &str, priority: u32, content: Option<serde_json::Value>| MaterialRecord {
        agent: agent.into(),
        status: if content.is_some() { "ready" } else { "failed" }.into(),
        error: content.is_none().then(|| "timeout".to_string()),
        content,
        priority,
        focus: format!("{agent} focus"),
    };
    lib.put_materials(
        "d1",
        &[
            m(
                "quiz",
                2,
                Some(json!({ "q": [1, 2.5, "three"], "nested": { "b": null, "a": true } })),
            ),
            m("summary", 1, Some(json!("text"))),
            m("flashcards", 2, None),
            m("Zeta", 2, Some(json!([]))),
        ],
    )
    .await
    .unwrap();
    lib.put_materials("d1", &[m("summary", 3, Some(json!("newer")))])
        .await
        .unwrap();
    let got = lib.materials("d1").await.unwrap();
    let order: Vec<&str> = got.iter().map(|m| m.agent.as_str()).collect();
    assert_eq!(
        order,
        ["Zeta", "flashcards", "quiz", "summary"],
        "priority, then agent bytewise"
    );
    assert_eq!(
        got[2],
        m(
            "quiz",
            2,
            Some(json!({ "q": [1, 2.5, "three"], "nested": { "b": null, "a": true } }))
        )
    );
    assert_eq!(got[1].error.as_deref(), Some("timeout"));
    assert_eq!(got[3].content, Some(json!("newer")));
    assert!(lib.materials("d2").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_belong_to_one_users_thread_and_nodes_append_without_clashing() {
    let Some(db) = Db::new() else { return };
    let lib = Arc::new(db.library().await);
    let other_node = Arc::new(db.library().await);
    let turn = |q: &str, at: i64| TurnRecord {
        question: q.into(),
        answer: format!("answer to {q}"),
        detail: json!({ "citations": [{ "chunk": "c1", "page": 2 }] }),
        at,
    };
    lib.add_turn("ada", "d1", "t1", &turn("first", 1)).await.unwrap();
    lib.add_turn("ada", "d1", "t1", &turn("second", 2)).await.unwrap();
    lib.add_turn("ada", "d1", "t2", &turn("elsewhere", 3))
        .await
        .unwrap();
    lib.add_turn("bob", "d1", "t1", &turn("bob's", 4)).await.unwrap();
    assert_eq!(
        lib.turns("ada", "d1", "t1").await.unwrap(),
        [turn("first", 1), turn("second", 2)]
    );
    assert_eq!(lib.turns("bob", "d1", "t1").await.unwrap(), [turn("bob's", 4)]);
    assert!(lib.turns("ada", "d2", "t1").await.unwrap().is_empty());

    // Two nodes appending to one thread at once both succeed.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let l: Arc<dyn Library> = if i % 2 == 0 {
            lib.clone()
        } else {
            other_node.clone()
        };
        let t = turn(&format!("q{i}"), 10 + i);
        tasks.push(tokio::spawn(
            async move { l.add_turn("ada", "d1", "t3", &t).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(lib.turns("ada", "d1", "t3").await.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_twice_migrates_once_and_a_newer_schema_is_refused() {
    let Some(db) = Db::new() else { return };
    let lib = db.library().await;
    lib.put_document(&record("d1", "ada", "h1", 1)).await.unwrap();
    let again = db.library().await;
    assert!(
        again.document("ada", "d1").await.unwrap().is_some(),
        "the data stays"
    );
    sql(
        &db.pool(),
        "UPDATE learnflow_schema SET version = version + 1 WHERE component = 'library'",
    )
    .await;
    let err = PostgresLibrary::open(db.pool()).await.unwrap_err();
    assert!(err.to_string().contains("newer than this binary"), "{err}");
}

/// The questions compared on both stores: plain, several words, repeated words,
/// stopwords only, words found nowhere, FTS syntax, a stemmed form.
const QUESTIONS: &[&str] = &[
    "What is the Calvin cycle?",
    "How does chlorophyll absorb light energy in the thylakoid membranes?",
    "cell cell wall cellulose",
    "what is it?",
    "quantum chromodynamics",
    "NEAR(stroma OR \"light*",
    "Where are mitochondria and what do they release?",
    "photosynthesising plants",
    "ATP NADPH",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_document_gives_the_same_passages_and_answers_on_both_stores() {
    let Some(db) = Db::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Library> = Arc::new(SqliteLibrary::open(&dir.path().join("lib.db")).unwrap());
    let postgres: Arc<dyn Library> = Arc::new(db.library().await);
    let through_hnsw: Arc<dyn Library> =
        Arc::new(PostgresLibrary::open(db.pool_preferring_indexes()).await.unwrap());
    let stores = [sqlite.clone(), postgres.clone()];

    // One document chunked finely (more chunks than the fusion depth, so the HNSW
    // candidates are cut), one coarsely, and another user's text: BM25 statistics are
    // over the whole table, as in FTS5.
    let (text, fine) = sample_text(&small_chunks());
    let (_, coarse) = sample_text(&ChunkOptions::default());
    assert!(fine.len() > 40, "{} chunks", fine.len());
    let other = DocumentText {
        title: "Other".into(),
        pages: vec![PageText {
            number: 1,
            text: "Cell walls of fungi are made of chitin. Light travels fast.".into(),
            headings: vec![],
        }],
    };
    let other_chunks = chunk_document(&other, &ChunkOptions::default());
    for lib in &stores {
        put_ready(lib.as_ref(), "fine", "ada", &text, &fine).await;
        put_ready(lib.as_ref(), "coarse", "ada", &text, &coarse).await;
        put_ready(lib.as_ref(), "other", "bob", &other, &other_chunks).await;
    }

    let embedder = HashEmbedder::new();
    let mut compared = 0;
    for doc in ["fine", "coarse"] {
        for q in QUESTIONS {
            let v = embedder.embed_one(q);
            for (vector, k) in [(Some(v.as_slice()), 5), (None, 5), (Some(v.as_slice()), 30)] {
                let a = sqlite.search(doc, q, vector, k).await.unwrap();
                let b = postgres.search(doc, q, vector, k).await.unwrap();
                assert_eq!(
                    ids(&a),
                    ids(&b),
                    "{doc}: {q:?} (vector: {}, k {k})",
                    vector.is_some()
                );
                assert_eq!(a, b, "{doc}: {q:?}: ranks and scores too");
                let c = through_hnsw.search(doc, q, vector, k).await.unwrap();
                assert_eq!(
                    a,
                    c,
                    "{doc}: {q:?} (vector: {}, k {k}) through the HNSW index",
                    vector.is_some()
                );
                compared += usize::from(!a.is_empty());
            }
        }
    }
    assert!(compared > 30, "most searches found something: {compared}");
    // That pool's plan for the nearest vectors is the HNSW index (the library's query
    // orders by the index's expression and filters like this).
    let q = format!(
        "EXPLAIN SELECT chunk_id FROM chunks WHERE document_id = 'fine' AND dims = 384 AND NOT flat \
         ORDER BY embedding::vector(384) <=> '[{}]'::vector(384) LIMIT 40",
        vec!["0.5"; 384].join(",")
    );
    let plan = db
        .pool_preferring_indexes()
        .tx(move |tx: &mut Tx<'_>| {
            let rows = tx.query_dynamic(&q, &[])?;
            Ok::<_, PgFailure>(
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })
        .await
        .unwrap();
    assert!(plan.contains("chunks_vector_384"), "{plan}");
    let found = postgres
        .search("fine", "What is the Calvin cycle?", None, 5)
        .await
        .unwrap();
    assert!(found[0].chunk.text.contains("Calvin cycle"), "{:?}", found[0]);

    // The ask path: retrieval, the offline provider's cited answer, the thread.
    let mut answers = Vec::new();
    for lib in &stores {
        let blobs = BlobStore::local(&dir.path().join("blobs")).unwrap();
        let services = Services::new(
            lib.clone(),
            blobs,
            Arc::new(HashEmbedder::new()),
            IngestOptions::default(),
        );
        let mut got = Vec::new();
        for q in [
            "What is the Calvin cycle?",
            "What are its three phases?",
            "Why are leaves green?",
        ] {
            let req = AskRequest {
                user_id: "ada".into(),
                document_id: "fine".into(),
                question: q.into(),
                thread_id: "t1".into(),
            };
            let a = ask(&services, services.local.clone(), &req).await.unwrap();
            got.push((a.answer, a.citations, a.passages));
        }
        let turns = lib.turns("ada", "fine", "t1").await.unwrap();
        assert_eq!(turns.len(), 3);
        answers.push((
            got,
            turns
                .into_iter()
                .map(|t| (t.question, t.answer))
                .collect::<Vec<_>>(),
        ));
    }
    assert!(
        answers[0].0[0].0.contains("Calvin cycle"),
        "{}",
        answers[0].0[0].0
    );
    assert!(!answers[0].0[0].1.is_empty(), "cited");
    assert_eq!(
        answers[0], answers[1],
        "the same answers, citations, passages and threads"
    );
}

/// Vectors the HNSW index does not hold (another size, all zeros, none) and questions
/// of another size or all zeros rank as in SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_vectors_rank_as_in_sqlite() {
    let Some(db) = Db::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Library> = Arc::new(SqliteLibrary::open(&dir.path().join("lib.db")).unwrap());
    let postgres: Arc<dyn Library> = Arc::new(db.library().await);
    let (text, chunks) = sample_text(&small_chunks());
    let mut vectors = embed(&chunks);
    vectors[3].1 = vec![0.0; 384];
    vectors[5].1 = vec![0.5, -0.25, 1.0];
    vectors[7].1 = Vec::new();
    vectors.remove(9); // never embedded
    let e = HashEmbedder::new();
    for lib in [&sqlite, &postgres] {
        lib.put_document(&record("d", "ada", "h", 1)).await.unwrap();
        lib.put_text("d", &text, &chunks, "markdown", &[2]).await.unwrap();
        lib.put_embeddings("d", "mixed", &vectors).await.unwrap();
        // A second document embedded with a 3-dimension model.
        lib.put_document(&record("small", "ada", "h2", 1)).await.unwrap();
        lib.put_text("small", &text, &chunks, "markdown", &[])
            .await
            .unwrap();
        let tiny: Vec<(String, Vec<f32>)> = chunks
            .iter()
            .map(|c| {
                let v = e.embed_one(&c.text);
                (c.id.clone(), vec![v[0], v[1], v[2] + 1e-3])
            })
            .collect();
        lib.put_embeddings("small", "tiny", &tiny).await.unwrap();
    }
    let q = e.embed_one("chloroplast light energy");
    let questions: [(&str, Vec<f32>); 5] = [
        ("d", q.clone()),
        ("d", vec![0.0; 384]),
        ("d", vec![1.0, 0.0, 0.0]),
        ("small", vec![q[0], q[1], q[2]]),
        ("small", q.clone()),
    ];
    for (doc, v) in &questions {
        for k in [3, 10] {
            let a = sqlite.search(doc, "chloroplast", Some(v), k).await.unwrap();
            let b = postgres.search(doc, "chloroplast", Some(v), k).await.unwrap();
            assert_eq!(
                ids(&a),
                ids(&b),
                "{doc}, a question of {} dimensions, k {k}",
                v.len()
            );
            assert_eq!(a, b);
        }
    }
}
