//! `process-document` end to end on a real engine and SQLite: documents in, study packs
//! out; bad documents fail with their reason and hurt nothing else; review; failed
//! agents; rate limits; recorded model calls; questions with citations.

use std::sync::Arc;
use std::time::Duration;

use learnflow_ai::agents::AgentName;
use learnflow_ai::embed::HashEmbedder;
use learnflow_ai::provider::openai::{OpenAiConfig, OpenAiProvider, Prices};
use learnflow_ai::schema::Validator;
use learnflow_ai::testing::fake_openai::{FakeConfig, FakeOpenAi};
use learnflow_engine::{Ctx, Engine, EventInput, Function, RunDetail, RunId, RunStatus, StepStatus};
use learnflow_ingest::IngestOptions;
use learnflow_pipeline::ask::{ask, AskRequest};
use learnflow_pipeline::blobs::BlobStore;
use learnflow_pipeline::library::{DocumentStatus, SqliteLibrary};
use learnflow_pipeline::services::Services;
use learnflow_pipeline::steps::{process_document, Uploaded, APPROVED_EVENT, UPLOADED_EVENT};
use learnflow_pipeline::upload::{store_upload, uploaded_event};
use learnflow_store_sqlite::SqliteStore;
use serde_json::{json, Value};

const SAMPLE: &str = include_str!("../../../samples/photosynthesis.md");

struct Env {
    _dir: tempfile::TempDir,
    engine: Engine,
    services: Arc<Services>,
    processed: Arc<parking_lot::Mutex<Vec<Value>>>,
}

async fn env(fake: Option<&FakeOpenAi>, review_timeout: Duration) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("learnflow.db");
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let library = Arc::new(SqliteLibrary::open(&db).unwrap());
    let blobs = BlobStore::local(&dir.path().join("blobs")).unwrap();
    let mut services = Services::new(
        library,
        blobs,
        Arc::new(HashEmbedder::new()),
        IngestOptions::default(),
    );
    services.review_timeout = review_timeout;
    if let Some(f) = fake {
        services.openai = Some(Arc::new(
            OpenAiProvider::new(OpenAiConfig {
                base_url: f.base_url.clone(),
                model: "fake-model".into(),
                timeout: Duration::from_secs(10),
                prices: Some(Prices {
                    input_per_million: 0.15,
                    output_per_million: 0.6,
                }),
                ..Default::default()
            })
            .unwrap(),
        ));
    }
    let services = Arc::new(services);
    let engine = Engine::builder(store).build();
    engine.register(process_document(services.clone())).unwrap();
    let processed = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let p2 = processed.clone();
    engine
        .register(
            Function::new("on-processed")
                .on_event("document.processed")
                .handler(move |ctx: Ctx| {
                    let p = p2.clone();
                    async move {
                        p.lock().push(ctx.event().data.clone());
                        Ok(())
                    }
                }),
        )
        .unwrap();
    engine.start().await.unwrap();
    Env {
        _dir: dir,
        engine,
        services,
        processed,
    }
}

async fn upload(
    e: &Env,
    user: &str,
    name: &str,
    bytes: &[u8],
    review: bool,
    provider: Option<&str>,
) -> (String, RunId) {
    let stored = store_upload(&e.services, user, name, "exam-prep", bytes.to_vec(), true)
        .await
        .unwrap();
    let r = e
        .engine
        .send(uploaded_event(&stored.document, review, provider))
        .await
        .unwrap();
    (stored.document.id, r.runs[0].clone())
}

async fn finished(e: &Env, run: &RunId) -> RunDetail {
    tokio::time::timeout(Duration::from_secs(120), e.engine.wait_for_run(run))
        .await
        .expect("the run finished in time")
        .unwrap();
    e.engine.get_run(run).await.unwrap()
}

fn step<'a>(d: &'a RunDetail, id: &str) -> &'a learnflow_engine::StepRecord {
    d.steps.iter().find(|s| s.step_id == id).unwrap_or_else(|| {
        panic!(
            "no step {id}: {:?}",
            d.steps.iter().map(|s| &s.step_id).collect::<Vec<_>>()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_becomes_a_study_pack_offline() {
    let e = env(None, Duration::from_secs(60)).await;
    let (doc_id, run) = upload(&e, "u1", "photosynthesis.md", SAMPLE.as_bytes(), false, None).await;
    let d = finished(&e, &run).await;
    assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
    let ids: Vec<&str> = d.steps.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(ids[..2], ["extract", "architect"]);
    assert!(ids.ends_with(&["embed", "store", "notify"]), "{ids:?}");
    let plan = &step(&d, "architect").output.as_ref().unwrap()["plan"]["agents"];
    let planned = plan.as_array().unwrap().len();
    assert!(planned >= 8, "a useful exam-prep plan: {plan}");
    assert_eq!(ids.iter().filter(|s| s.starts_with("agent-")).count(), planned);

    let doc = e.services.library.document("u1", &doc_id).await.unwrap().unwrap();
    assert_eq!(doc.status, DocumentStatus::Ready);
    assert_eq!(doc.title.as_deref(), Some("Cells and Photosynthesis"));
    assert_eq!(doc.kind.as_deref(), Some("markdown"));
    assert_eq!(doc.embed_model.as_deref(), Some("hash-384"));
    let materials = e.services.library.materials(&doc_id).await.unwrap();
    assert_eq!(materials.len(), planned);
    for m in &materials {
        assert_eq!(m.status, "ready", "{}: {:?}", m.agent, m.error);
        let agent = AgentName::parse(&m.agent).unwrap();
        let schema = Validator::from_text(agent.spec().schema).unwrap();
        schema.validate(m.content.as_ref().unwrap()).unwrap();
    }
    // Every agent step records its model call like step.ai.infer.
    let quiz = step(&d, "agent-quiz").output.as_ref().unwrap();
    let call = &quiz["calls"][0];
    assert_eq!(call["provider"], "local");
    assert_eq!(call["task"], "agent:quiz");
    assert!(call["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(call["prompt_sha256"].as_str().unwrap().len(), 64);
    // The document.processed event reached another function.
    tokio::time::timeout(Duration::from_secs(10), async {
        while e.processed.lock().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("document.processed was delivered");
    assert_eq!(e.processed.lock()[0]["documentId"], json!(doc_id));

    // Questions come back with citations, and only for the owner.
    let req = AskRequest {
        user_id: "u1".into(),
        document_id: doc_id.clone(),
        question: "What is the Calvin cycle?".into(),
        thread_id: "t1".into(),
    };
    let a = ask(&e.services, e.services.local.clone(), &req).await.unwrap();
    assert!(
        a.answer.contains("Calvin cycle") && a.answer.contains("[p. "),
        "{}",
        a.answer
    );
    assert!(!a.citations.is_empty());
    assert!(a.passages.iter().any(|p| p.chunk.text.contains("Calvin cycle")));
    let follow = AskRequest {
        question: "What are its three phases?".into(),
        ..req.clone()
    };
    let a = ask(&e.services, e.services.local.clone(), &follow).await.unwrap();
    assert!(
        a.answer.contains("carbon fixation"),
        "the follow-up saw the first question: {}",
        a.answer
    );
    let stranger = AskRequest {
        user_id: "u2".into(),
        ..req
    };
    let err = ask(&e.services, e.services.local.clone(), &stranger)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdfs_and_scans_are_extracted_with_their_pages() {
    let e = env(None, Duration::from_secs(60)).await;
    let paragraphs: Vec<String> = SAMPLE
        .split("\n\n")
        .map(|p| p.trim_start_matches('#').trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let pages = learnflow_ingest::fixtures::paginate(&paragraphs);
    let pdf = learnflow_ingest::fixtures::text_pdf(&pages, Some("Cells and Photosynthesis"));
    let (doc_id, run) = upload(&e, "u1", "bio.pdf", &pdf, false, None).await;
    let d = finished(&e, &run).await;
    assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
    let extract = step(&d, "extract").output.clone().unwrap();
    assert_eq!(extract["kind"], "pdf");
    assert_eq!(extract["pages"], json!(pages.len()));
    let (text, chunks) = e.services.library.text(&doc_id).await.unwrap().unwrap();
    assert_eq!(text.pages.len(), pages.len());
    assert!(
        chunks.iter().any(|c| c.page as usize == pages.len()),
        "chunks keep their pages"
    );

    let scan = learnflow_ingest::fixtures::scanned_pdf(&[pages[0].clone()], 300).unwrap();
    let (_, run) = upload(&e, "u1", "scan.pdf", &scan, false, None).await;
    let d = finished(&e, &run).await;
    assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
    let extract = step(&d, "extract").output.clone().unwrap();
    assert_eq!(extract["ocrPages"], json!([1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_fail_with_their_reason_and_hurt_nothing() {
    let e = env(None, Duration::from_secs(60)).await;
    let (good_doc, good) = upload(&e, "u1", "good.md", SAMPLE.as_bytes(), false, None).await;
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty.pdf", b"", "empty"),
        (
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage",
            "PDF",
        ),
        (
            "blob.bin",
            &[0u8, 159, 146, 150, 1, 2, 3, 255, 254, 0, 7, 9, 200, 201, 202, 203],
            "unsupported",
        ),
        ("photo.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "GIF"),
    ];
    for (name, bytes, reason) in cases {
        let (doc_id, run) = upload(&e, "u1", name, bytes, false, None).await;
        let d = finished(&e, &run).await;
        assert_eq!(d.run.status, RunStatus::Failed, "{name}");
        let err = d.run.error.clone().unwrap();
        assert!(
            err.message.to_lowercase().contains(&reason.to_lowercase()),
            "{name}: the reason '{reason}' is not in: {}",
            err.message
        );
        assert_eq!(
            step(&d, "extract").attempts.len(),
            1,
            "{name}: bad input is not retried"
        );
        let doc = e.services.library.document("u1", &doc_id).await.unwrap().unwrap();
        assert_eq!(doc.status, DocumentStatus::Failed);
        assert!(doc.error.unwrap().to_lowercase().contains(&reason.to_lowercase()));
    }
    let d = finished(&e, &good).await;
    assert_eq!(d.run.status, RunStatus::Completed);
    let doc = e
        .services
        .library
        .document("u1", &good_doc)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.status, DocumentStatus::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_waits_for_approval_and_the_reviewer_picks_the_agents() {
    let e = env(None, Duration::from_secs(600)).await;
    let (doc_id, run) = upload(&e, "u1", "bio.md", SAMPLE.as_bytes(), true, None).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let d = e.engine.get_run(&run).await.unwrap();
            if d.run.status == RunStatus::Waiting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the run waits for review");
    let doc = e.services.library.document("u1", &doc_id).await.unwrap().unwrap();
    assert_eq!(doc.status, DocumentStatus::Review);
    // An approval for another document does nothing; a bad agent list fails clearly.
    e.engine
        .send(EventInput::new(
            APPROVED_EVENT,
            json!({ "documentId": "doc_other", "userId": "u1", "agents": ["quiz"] }),
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        e.engine.get_run(&run).await.unwrap().run.status,
        RunStatus::Waiting
    );
    e.engine
        .send(EventInput::new(
            APPROVED_EVENT,
            json!({ "documentId": doc_id, "userId": "u1", "agents": ["summary", "quiz"] }),
        ))
        .await
        .unwrap();
    let d = finished(&e, &run).await;
    assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
    let agents: Vec<String> = e
        .services
        .library
        .materials(&doc_id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.agent)
        .collect();
    assert_eq!(agents, ["summary", "quiz"]);
    assert_eq!(step(&d, "review").status, StepStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_times_out_and_goes_on_with_the_plan() {
    let e = env(None, Duration::from_millis(500)).await;
    let (doc_id, run) = upload(&e, "u1", "bio.md", SAMPLE.as_bytes(), true, None).await;
    let d = finished(&e, &run).await;
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(step(&d, "review").output, Some(Value::Null), "the wait timed out");
    let planned = step(&d, "architect").output.as_ref().unwrap()["plan"]["agents"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        e.services.library.materials(&doc_id).await.unwrap().len(),
        planned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_agent_is_stored_as_failed_and_rate_limits_wait_for_retry_after() {
    let fake = FakeOpenAi::start(FakeConfig {
        fail_schemas: vec![("glossary".into(), 400)],
        rate_limit_first: vec!["quiz".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let e = env(Some(&fake), Duration::from_secs(60)).await;
    let (doc_id, run) = upload(&e, "u1", "bio.md", SAMPLE.as_bytes(), false, Some("openai")).await;
    let d = finished(&e, &run).await;
    assert_eq!(
        d.run.status,
        RunStatus::Completed,
        "one failed agent does not sink the run: {:?}",
        d.run.error
    );
    let materials = e.services.library.materials(&doc_id).await.unwrap();
    let glossary = materials
        .iter()
        .find(|m| m.agent == "glossary")
        .expect("glossary planned");
    assert_eq!(glossary.status, "failed");
    assert!(
        glossary.error.as_deref().unwrap().contains("HTTP 400"),
        "{:?}",
        glossary.error
    );
    assert_eq!(
        step(&d, "agent-glossary").attempts.len(),
        1,
        "a 400 is not retried"
    );
    assert!(materials
        .iter()
        .filter(|m| m.agent != "glossary")
        .all(|m| m.status == "ready"));

    let quiz = step(&d, "agent-quiz");
    assert_eq!(quiz.status, StepStatus::Completed);
    assert_eq!(quiz.attempts.len(), 2, "the 429 was retried");
    let first = &quiz.attempts[0];
    assert_eq!(first.error.as_ref().unwrap().name, "RetryAfterError");
    let waited = quiz.attempts[1].started_at.since(first.started_at);
    assert!(
        waited >= Duration::from_millis(1000),
        "retried after {waited:?}, before Retry-After"
    );

    let call = &quiz.output.as_ref().unwrap()["calls"][0];
    assert_eq!(
        (call["provider"].as_str(), call["model"].as_str()),
        (Some("openai"), Some("fake-model"))
    );
    assert!(call["input_tokens"].as_u64().unwrap() > 0);
    assert!(call["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(call["prompt"].as_str().unwrap().contains("[c0 p.1]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_document_is_processed_once() {
    let e = env(None, Duration::from_secs(60)).await;
    let (doc_id, run) = upload(&e, "u1", "bio.md", SAMPLE.as_bytes(), false, None).await;
    let again = Uploaded {
        document_id: doc_id,
        user_id: "u1".into(),
        purpose: "exam-prep".into(),
        file_name: "bio.md".into(),
        review: false,
        provider: None,
    };
    let r = e
        .engine
        .send(EventInput::new(
            UPLOADED_EVENT,
            serde_json::to_value(again).unwrap(),
        ))
        .await
        .unwrap();
    assert!(r.runs.is_empty(), "idempotency key: one run per document");
    assert_eq!(finished(&e, &run).await.run.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_naming_someone_elses_document_touches_nothing() {
    let e = env(None, Duration::from_secs(60)).await;
    let stored = store_upload(
        &e.services,
        "owner",
        "bio.md",
        "exam-prep",
        SAMPLE.as_bytes().to_vec(),
        true,
    )
    .await
    .unwrap();
    let forged = Uploaded {
        document_id: stored.document.id.clone(),
        user_id: "intruder".into(),
        purpose: "exam-prep".into(),
        file_name: "bio.md".into(),
        review: false,
        provider: None,
    };
    let r = e
        .engine
        .send(EventInput::new(
            UPLOADED_EVENT,
            serde_json::to_value(forged).unwrap(),
        ))
        .await
        .unwrap();
    let d = finished(&e, &r.runs[0]).await;
    assert_eq!(d.run.status, RunStatus::Failed);
    assert!(d.run.error.unwrap().message.contains("not in the library"));
    let doc = e
        .services
        .library
        .document("owner", &stored.document.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        doc.status,
        DocumentStatus::Queued,
        "the owner's document is untouched"
    );
    assert!(e
        .services
        .library
        .text(&stored.document.id)
        .await
        .unwrap()
        .is_none());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        e.processed.lock().is_empty(),
        "no notice for a document that is not the sender's"
    );
}
