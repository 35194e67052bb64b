//! `learnflow serve` as clients use it: a real server process on a loopback port and a
//! real HTTP client. Upload → 202 at once → SSE shows every step → materials → cited
//! answers; review and approve; cancel and replay; signed webhooks with redelivery;
//! users kept apart; bad input; the OpenAPI document; SIGTERM.

#[path = "serve/harness.rs"]
mod harness;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{eventually, sample, sample_variant, Answer, Client, Server, SseEvent};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

fn is_final(e: &SseEvent) -> bool {
    matches!(e.event.as_str(), "completed" | "failed" | "cancelled")
}

async fn upload_sample(c: &Client, tag: &str, fields: &[(&str, &str)]) -> (String, String) {
    let r = c
        .upload(&format!("bio-{tag}.md"), sample_variant(tag), fields)
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    (
        r.json["documentId"].as_str().unwrap().to_string(),
        r.json["runId"].as_str().unwrap().to_string(),
    )
}

async fn run_status(c: &Client, run: &str) -> String {
    c.get(&format!("/api/runs/{run}")).await.json["run"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn wait_run(c: &Client, run: &str, status: &str) {
    eventually(&format!("run {run} to be {status}"), async || {
        (run_status(c, run).await == status).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_answers_at_once_then_sse_materials_pack_and_cited_answers() {
    let server = Server::start(&[]);
    let c = server.client(&server.admin);
    let t0 = Instant::now();
    let r = c
        .upload("photosynthesis.md", sample(), &[("purpose", "exam-prep")])
        .await;
    let upload_time = t0.elapsed();
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["status"], "queued");
    assert!(
        upload_time < Duration::from_secs(2),
        "upload took {upload_time:?}"
    );
    let doc = r.json["documentId"].as_str().unwrap().to_string();
    let run = r.json["runId"].as_str().unwrap().to_string();

    let events = c.events_until(&doc, None, is_final).await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "completed", "{events:?}");
    let started: HashSet<String> = events
        .iter()
        .filter(|e| e.event == "step.started")
        .map(|e| e.json()["stepId"].as_str().unwrap().to_string())
        .collect();
    let completed: HashSet<String> = events
        .iter()
        .filter(|e| e.event == "step.completed")
        .map(|e| e.json()["stepId"].as_str().unwrap().to_string())
        .collect();
    for step in ["extract", "architect", "embed", "store", "notify"] {
        assert!(
            completed.contains(step),
            "no step.completed for {step}: {completed:?}"
        );
    }
    assert!(completed.iter().filter(|s| s.starts_with("agent-")).count() >= 5);
    assert_eq!(started, completed, "every started step completed");
    for e in &events {
        assert_eq!(e.json()["runId"], run.as_str());
        assert_eq!(e.json()["documentId"], doc.as_str());
    }
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    // Reconnecting with Last-Event-ID gives exactly what came after.
    let resumed = c.events_until(&doc, Some(&ids[4].to_string()), is_final).await;
    let resumed_ids: Vec<i64> = resumed
        .iter()
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(resumed_ids, ids[5..].to_vec());

    let d = c.get(&format!("/api/documents/{doc}")).await;
    assert_eq!(d.json["status"], "ready", "{}", d.text);
    let materials = d.json["materials"].as_array().unwrap();
    assert!(materials.len() >= 5);
    assert!(materials.iter().all(|m| m["status"] == "ready"), "{materials:?}");
    let quiz = materials.iter().find(|m| m["agent"] == "quiz").expect("a quiz");
    assert!(!quiz["content"]["questions"].as_array().unwrap().is_empty());

    let md = c.get(&format!("/api/documents/{doc}/pack.md")).await;
    assert_eq!(md.status, 200);
    assert!(md.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    assert!(
        md.text.contains("## Quiz") && md.text.contains("## Summary"),
        "{}",
        md.text
    );
    let tsv = c.get(&format!("/api/documents/{doc}/flashcards.tsv")).await;
    assert_eq!(tsv.status, 200);
    assert!(tsv
        .text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .all(|l| l.contains('\t')));
    assert!(tsv.text.lines().filter(|l| !l.starts_with('#')).count() >= 3);
    let pack = c.get(&format!("/api/documents/{doc}/pack.json")).await;
    assert_eq!(pack.status, 200);

    let a = c
        .post_json(
            &format!("/api/documents/{doc}/ask"),
            &json!({ "question": "What does chlorophyll absorb?" }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let answer = a.json["answer"].as_str().unwrap();
    assert!(answer.contains("[p. "), "{answer}");
    assert!(answer.to_lowercase().contains("light"), "{answer}");
    assert!(!a.json["citations"].as_array().unwrap().is_empty());
    // A follow-up in the same thread sees the earlier turn.
    let thread = a.json["thread_id"].as_str().unwrap().to_string();
    let follow = c
        .post_json(
            &format!("/api/documents/{doc}/ask"),
            &json!({ "question": "Why do leaves look green?", "threadId": thread }),
        )
        .await;
    assert_eq!(follow.status, 200, "{}", follow.text);
    assert_eq!(follow.json["thread_id"], thread.as_str());

    // Streaming: token events that join to the answer, then `done`.
    let resp = c
        .req(reqwest::Method::POST, &format!("/api/documents/{doc}/ask"))
        .header("accept", "text/event-stream")
        .json(&json!({ "question": "What does chlorophyll absorb?" }))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let streamed = harness::read_sse(
        resp,
        &mut |e: &SseEvent| e.event == "done",
        Duration::from_secs(30),
    )
    .await;
    let tokens: Vec<&SseEvent> = streamed.iter().filter(|e| e.event == "token").collect();
    assert!(tokens.len() > 3);
    let joined: String = tokens
        .iter()
        .map(|e| e.json()["text"].as_str().unwrap().to_string())
        .collect();
    let done = streamed.last().unwrap().json();
    assert_eq!(joined, done["answer"].as_str().unwrap());

    // The same bytes again: the same document, no second pipeline.
    let again = c.upload("copy.md", sample(), &[]).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["documentId"], doc.as_str());
    assert_eq!(again.json["duplicate"], true);
    let runs = c.get("/api/runs?function=process-document").await;
    assert_eq!(runs.json["runs"].as_array().unwrap().len(), 1);

    // The run's journal through the runs API.
    let detail = c.get(&format!("/api/runs/{run}")).await;
    assert_eq!(detail.json["run"]["status"], "completed");
    let steps = detail.json["steps"].as_array().unwrap();
    assert!(steps
        .iter()
        .any(|s| s["step_id"] == "architect" && !s["attempts"].as_array().unwrap().is_empty()));
    assert_eq!(detail.json["event"]["name"], "document.uploaded");

    // Metrics (admin) count the run and the language-model tokens.
    let m = c.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.text
            .contains("learnflow_runs{function=\"process-document\",status=\"completed\"} 1"),
        "{}",
        m.text
    );
    assert!(m
        .text
        .contains("learnflow_step_duration_seconds_bucket{function=\"process-document\""));
    let tokens_line = m
        .text
        .lines()
        .find(|l| l.starts_with("learnflow_llm_tokens_total{provider=\"local\",direction=\"input\"}"))
        .expect("token counter");
    let n: u64 = tokens_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > 0);

    // Delete removes it all.
    assert_eq!(c.delete(&format!("/api/documents/{doc}")).await.status, 204);
    assert_eq!(c.get(&format!("/api/documents/{doc}")).await.status, 404);
    let blobs: Vec<_> = walk(&server.dir.join("blobs"));
    assert!(blobs.is_empty(), "blob left behind: {blobs:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_waits_for_approval_which_may_change_the_agents() {
    let server = Server::start(&[]);
    let c = server.client(&server.create_user("reviewer"));
    let (doc, run) = upload_sample(&c, "r", &[("review", "true")]).await;
    let events = c.events_until(&doc, None, |e| e.event == "run.waiting").await;
    assert!(events
        .iter()
        .any(|e| e.event == "step.completed" && e.json()["stepId"] == "architect"));
    assert!(!events.iter().any(|e| e.json()["stepId"]
        .as_str()
        .is_some_and(|s| s.starts_with("agent-"))));
    let d = c.get(&format!("/api/documents/{doc}")).await;
    assert_eq!(d.json["status"], "review");
    // The plan is in the run's journal.
    let detail = c.get(&format!("/api/runs/{run}")).await;
    let plan = detail.json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == "architect")
        .unwrap()["output"]["plan"]["agents"]
        .clone();
    assert!(plan.as_array().unwrap().len() >= 3, "{plan}");

    let bad = c
        .post_json(
            &format!("/api/documents/{doc}/approve"),
            &json!({ "agents": ["quiz", "poetry"] }),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.message().contains("agents[1]") && bad.message().contains("poetry"),
        "{}",
        bad.text
    );
    let ok = c
        .post_json(
            &format!("/api/documents/{doc}/approve"),
            &json!({ "agents": ["quiz", "glossary"] }),
        )
        .await;
    assert_eq!(ok.status, 202, "{}", ok.text);
    wait_run(&c, &run, "completed").await;
    let d = c.get(&format!("/api/documents/{doc}")).await;
    let agents: BTreeSet<String> = d.json["materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        agents,
        BTreeSet::from(["glossary".to_string(), "quiz".to_string()])
    );
    let again = c
        .post_json(&format!("/api/documents/{doc}/approve"), &json!({}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_can_be_cancelled_and_replayed_through_the_api() {
    let server = Server::start(&[]);
    let c = server.client(&server.create_user("operator"));
    let (doc, run) = upload_sample(&c, "c", &[("review", "true")]).await;
    wait_run(&c, &run, "waiting").await;
    let cancel = c.post_json(&format!("/api/runs/{run}/cancel"), &json!({})).await;
    assert_eq!(cancel.status, 202, "{}", cancel.text);
    assert_eq!(run_status(&c, &run).await, "cancelled");
    let events = c.events_until(&doc, None, is_final).await;
    assert_eq!(events.last().unwrap().event, "cancelled");
    assert_eq!(
        c.post_json(&format!("/api/runs/{run}/cancel"), &json!({}))
            .await
            .status,
        409
    );

    let bad = c
        .post_json(&format!("/api/runs/{run}/replay"), &json!({ "from": "middle" }))
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.message().contains("'from'"), "{}", bad.text);
    let replay = c
        .post_json(
            &format!("/api/runs/{run}/replay"),
            &json!({ "from": "failed-step" }),
        )
        .await;
    assert_eq!(replay.status, 202, "{}", replay.text);
    let new_run = replay.json["runId"].as_str().unwrap().to_string();
    assert_ne!(new_run, run);
    wait_run(&c, &new_run, "waiting").await;
    // The replay kept the recorded extract and architect steps.
    let detail = c.get(&format!("/api/runs/{new_run}")).await;
    let kept: Vec<&str> = detail.json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_id"].as_str().unwrap())
        .collect();
    assert!(
        kept.contains(&"extract") && kept.contains(&"architect"),
        "{kept:?}"
    );
    assert_eq!(
        c.post_json(&format!("/api/documents/{doc}/approve"), &json!({}))
            .await
            .status,
        202
    );
    wait_run(&c, &new_run, "completed").await;
    assert_eq!(
        c.post_json(
            &format!("/api/runs/{new_run}/replay"),
            &json!({ "from": "start" })
        )
        .await
        .status,
        409
    );
    let listed = c
        .get("/api/runs?status=cancelled,completed&function=process-document")
        .await;
    assert_eq!(
        listed.json["runs"].as_array().unwrap().len(),
        2,
        "{}",
        listed.text
    );
    assert_eq!(listed.json["counts"]["cancelled"], 1);
}

type Delivery = (axum::http::HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Received {
    calls: Arc<std::sync::Mutex<Vec<Delivery>>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_redelivered_after_a_failure() {
    let received = Received::default();
    let r2 = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let r = r2.clone();
            async move {
                let mut calls = r.calls.lock().unwrap();
                calls.push((headers, body.to_vec()));
                if calls.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = Server::start(&[]);
    let c = server.client(&server.create_user("hooked"));
    let bad = c
        .post_json("/api/webhooks", &json!({ "url": "ftp://example.org/x" }))
        .await;
    assert_eq!(bad.status, 400);
    let hook = c
        .post_json("/api/webhooks", &json!({ "url": format!("http://{addr}/hook") }))
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    let secret = hook.json["secret"].as_str().unwrap().to_string();
    let listed = c.get("/api/webhooks").await;
    assert_eq!(listed.json["webhooks"].as_array().unwrap().len(), 1);
    assert!(!listed.text.contains(&secret), "the secret is shown only once");

    let (doc, _) = upload_sample(&c, "w", &[]).await;
    let calls = eventually("two webhook deliveries", async || {
        let calls = received.calls.lock().unwrap().clone();
        (calls.len() >= 2).then_some(calls)
    })
    .await;
    let mut delivery_ids = HashSet::new();
    for (headers, body) in &calls {
        let h = |name: &str| headers[name].to_str().unwrap().to_string();
        let ts = h("learnflow-timestamp");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(h("learnflow-signature"), expected, "valid signature");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - ts.parse::<i64>().unwrap()).abs() < 120);
        delivery_ids.insert(h("learnflow-delivery"));
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["type"], "document.processed");
        assert_eq!(body["data"]["documentId"], doc.as_str());
        assert_eq!(body["data"]["status"], "ready");
    }
    assert_eq!(delivery_ids.len(), 1, "a retry is the same delivery");
    // The delivery run completed after its retry.
    let runs = c.get("/api/runs?function=deliver-webhooks").await;
    let run = runs.json["runs"][0]["id"].as_str().unwrap().to_string();
    wait_run(&c, &run, "completed").await;
    let detail = c.get(&format!("/api/runs/{run}")).await;
    let step = detail.json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"].as_str().unwrap().starts_with("deliver-"))
        .unwrap()
        .clone();
    assert_eq!(step["attempts"].as_array().unwrap().len(), 2, "{step}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        received.calls.lock().unwrap().len(),
        2,
        "no delivery after success"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_webhook_targets_can_be_refused() {
    let server = Server::start(&[("LEARNFLOW_WEBHOOK_ALLOW_PRIVATE", "false")]);
    let c = server.client(&server.create_user("tenant"));
    for url in [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/x",
    ] {
        let r = c.post_json("/api/webhooks", &json!({ "url": url })).await;
        assert_eq!(r.status, 400, "{url}: {}", r.text);
        assert!(r.message().contains("private address"), "{url}: {}", r.text);
    }
    assert!(c.get("/api/webhooks").await.json["webhooks"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_see_or_touch_each_others_things() {
    let server = Server::start(&[]);
    let a = server.client(&server.create_user("alice"));
    let b = server.client(&server.create_user("bob"));
    let admin = server.client(&server.admin);
    let (doc, run) = upload_sample(&a, "a", &[("review", "true")]).await;
    wait_run(&a, &run, "waiting").await;
    let hook = a
        .post_json("/api/webhooks", &json!({ "url": "http://127.0.0.1:9/x" }))
        .await;
    let hook_id = hook.json["id"].as_str().unwrap().to_string();

    let not_found = |r: Answer, what: &str| {
        assert_eq!(r.status, 404, "{what}: {}", r.text);
        assert!(!r.text.contains("alice"), "{what} leaks: {}", r.text);
    };
    not_found(b.get(&format!("/api/documents/{doc}")).await, "document");
    not_found(b.get(&format!("/api/documents/{doc}/pack.md")).await, "pack.md");
    not_found(
        b.get(&format!("/api/documents/{doc}/pack.json")).await,
        "pack.json",
    );
    not_found(
        b.get(&format!("/api/documents/{doc}/flashcards.tsv")).await,
        "tsv",
    );
    not_found(b.get(&format!("/api/documents/{doc}/events")).await, "events");
    not_found(
        b.post_json(
            &format!("/api/documents/{doc}/ask"),
            &json!({ "question": "what?" }),
        )
        .await,
        "ask",
    );
    not_found(
        b.post_json(&format!("/api/documents/{doc}/approve"), &json!({}))
            .await,
        "approve",
    );
    not_found(b.delete(&format!("/api/documents/{doc}")).await, "delete");
    not_found(b.get(&format!("/api/runs/{run}")).await, "run");
    not_found(
        b.post_json(&format!("/api/runs/{run}/cancel"), &json!({})).await,
        "cancel",
    );
    not_found(
        b.post_json(&format!("/api/runs/{run}/replay"), &json!({ "from": "start" }))
            .await,
        "replay",
    );
    not_found(b.delete(&format!("/api/webhooks/{hook_id}")).await, "webhook");
    assert!(b.get("/api/documents").await.json["documents"]
        .as_array()
        .unwrap()
        .is_empty());
    let b_runs = b.get(&format!("/api/runs?user={}", "anyone")).await;
    assert!(
        b_runs.json["runs"].as_array().unwrap().is_empty(),
        "{}",
        b_runs.text
    );
    assert!(b.get("/api/webhooks").await.json["webhooks"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(b.get("/metrics").await.status, 403);

    // Bob cannot approve Alice's review by sending the event himself either.
    let sent = b
        .post_json(
            "/api/events",
            &json!({ "name": "plan.approved", "data": { "documentId": doc, "userId": "alice" } }),
        )
        .await;
    assert_eq!(sent.status, 202);
    // Nor start her pipeline again (on his account or hers): the pipeline is
    // idempotent per document, and a run for a document that is not the sender's
    // fails at extract without touching it (see the pipeline's tests).
    let sent = b
        .post_json(
            "/api/events",
            &json!({ "name": "document.uploaded", "data": { "documentId": doc, "userId": "x" }, "id": "sneaky" }),
        )
        .await;
    assert_eq!(sent.status, 202);
    assert!(
        sent.json["events"][0]["runs"].as_array().unwrap().is_empty(),
        "{}",
        sent.text
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        run_status(&a, &run).await,
        "waiting",
        "alice's run still waits for her"
    );
    assert_eq!(
        a.get(&format!("/api/documents/{doc}")).await.json["status"],
        "review"
    );

    // Alice still can; the admin sees her runs.
    assert_eq!(a.get(&format!("/api/runs/{run}")).await.status, 200);
    assert_eq!(admin.get(&format!("/api/runs/{run}")).await.status, 200);
    let all = admin.get("/api/runs?function=process-document").await;
    assert_eq!(all.json["runs"].as_array().unwrap().len(), 1);
    assert_eq!(
        all.json["runs"][0]["owner"],
        a.get("/api/runs").await.json["runs"][0]["owner"]
    );
    let a_runs = a.get("/api/runs").await;
    assert_eq!(a_runs.json["runs"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors() {
    let server = Server::start(&[("LEARNFLOW_MAX_FILE_MB", "1")]);
    let c = server.client(&server.create_user("carol"));
    let anon = reqwest::Client::new();

    let r = anon.get(server.url("/api/documents")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(c.get("/api/documents").await.status, 200);
    let wrong = server.client("lf_not-a-token");
    assert_eq!(wrong.get("/api/documents").await.status, 401);

    let empty = c.upload("empty.pdf", Vec::new(), &[]).await;
    assert_eq!(empty.status, 400, "{}", empty.text);
    assert!(empty.message().contains("empty"), "{}", empty.text);
    let elf = c
        .upload(
            "program.pdf",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0".repeat(50),
            &[],
        )
        .await;
    assert_eq!(elf.status, 415, "{}", elf.text);
    let zip = {
        let mut z = b"PK\x03\x04".to_vec();
        z.extend(std::iter::repeat_n(7u8, 200));
        z
    };
    assert_eq!(c.upload("notes.docx", zip, &[]).await.status, 415);
    let big = c
        .upload("big.txt", "word ".repeat(300_000).into_bytes(), &[])
        .await;
    assert_eq!(big.status, 413, "{}", big.text);
    assert!(big.message().contains("1 MB"), "{}", big.text);
    let no_file = Answer::from_response(
        c.req(reqwest::Method::POST, "/api/documents")
            .multipart(reqwest::multipart::Form::new().text("purpose", "exam-prep"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(no_file.status, 400);
    assert!(no_file.message().contains("'file'"), "{}", no_file.text);
    let not_multipart = c.post_raw("/api/documents", "{}").await;
    assert_eq!(not_multipart.status, 400);
    let bad_review = c
        .upload("a.md", sample_variant("br"), &[("review", "maybe")])
        .await;
    assert_eq!(bad_review.status, 400);
    assert!(bad_review.message().contains("'review'"));
    let long_purpose = "x".repeat(600);
    let bad_purpose = c
        .upload("a.md", sample_variant("bp"), &[("purpose", &long_purpose)])
        .await;
    assert_eq!(bad_purpose.status, 400);
    let bad_provider = c
        .upload("a.md", sample_variant("bv"), &[("provider", "openai")])
        .await;
    assert_eq!(bad_provider.status, 400, "{}", bad_provider.text);
    // Nothing above left a document or a blob behind.
    assert!(c.get("/api/documents").await.json["documents"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(walk(&server.dir.join("blobs")).is_empty());

    assert_eq!(c.get("/api/documents/doc_nope").await.status, 404);
    assert_eq!(c.get("/api/runs/nope").await.status, 404);
    let (doc, run) = upload_sample(&c, "bad", &[]).await;
    let malformed = c
        .post_raw(&format!("/api/documents/{doc}/ask"), "{\"question\": ")
        .await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.message().contains("JSON"), "{}", malformed.text);
    let wrong_type = c
        .post_raw(&format!("/api/documents/{doc}/ask"), "{\"question\": 5}")
        .await;
    assert_eq!(wrong_type.status, 400);
    assert!(wrong_type.message().contains("question"), "{}", wrong_type.text);
    let blank = c
        .post_json(&format!("/api/documents/{doc}/ask"), &json!({ "question": "  " }))
        .await;
    assert_eq!(blank.status, 400);
    let unknown_field = c
        .post_json(&format!("/api/documents/{doc}/ask"), &json!({ "q": "x" }))
        .await;
    assert_eq!(unknown_field.status, 400);
    assert!(unknown_field.message().contains('q'), "{}", unknown_field.text);
    let huge = format!(
        "{{\"name\": \"x\", \"data\": {{\"pad\": \"{}\"}}}}",
        "a".repeat(3 * 1024 * 1024)
    );
    let too_big = c.post_raw("/api/events", &huge).await;
    assert_eq!(too_big.status, 413, "{}", too_big.text);
    let not_event = c.post_raw("/api/events", "[1]").await;
    assert_eq!(not_event.status, 400);
    let no_name = c.post_json("/api/events", &json!({ "data": {} })).await;
    assert_eq!(no_name.status, 400);
    assert!(no_name.message().contains("name"), "{}", no_name.text);
    let bad_data = c
        .post_json("/api/events", &json!({ "name": "x", "data": 3 }))
        .await;
    assert_eq!(bad_data.status, 400, "{}", bad_data.text);
    assert_eq!(c.get("/api/runs?limit=0").await.status, 400);
    assert_eq!(c.get("/api/runs?since=yesterday").await.status, 400);
    assert_eq!(c.get("/api/runs?cursor=abc").await.status, 400);
    let bad_last = c
        .req(reqwest::Method::GET, &format!("/api/documents/{doc}/events"))
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_last.status().as_u16(), 400);
    // The good upload went through untouched.
    wait_run(&c, &run, "completed").await;
    let _ = doc;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_get_429_with_retry_after() {
    let server = Server::start(&[("LEARNFLOW_RATE_LIMIT", "1"), ("LEARNFLOW_RATE_BURST", "3")]);
    let c = server.client(&server.create_user("dave"));
    let other = server.client(&server.create_user("erin"));
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let r = c.get("/api/documents").await;
        if r.status == 429 {
            retry_after = r
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let secs: u64 = retry_after.expect("Retry-After header").parse().unwrap();
    assert!((1..=2).contains(&secs));
    assert_eq!(
        other.get("/api/documents").await.status,
        200,
        "another user is not limited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let server = Server::start(&[]);
    let c = server.client(&server.admin);
    let doc = reqwest::get(server.url("/api/openapi.json")).await.unwrap();
    assert_eq!(doc.status().as_u16(), 200);
    let doc: Value = doc.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    let expected: BTreeSet<String> = [
        "/api/documents",
        "/api/documents/{id}",
        "/api/documents/{id}/pack.md",
        "/api/documents/{id}/pack.json",
        "/api/documents/{id}/flashcards.tsv",
        "/api/documents/{id}/events",
        "/api/documents/{id}/approve",
        "/api/documents/{id}/ask",
        "/api/events",
        "/api/runs",
        "/api/runs/{id}",
        "/api/runs/{id}/cancel",
        "/api/runs/{id}/replay",
        "/api/functions",
        "/api/webhooks",
        "/api/webhooks/{id}",
        "/api/inngest/apps",
        "/healthz",
        "/api/me",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, expected);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every documented operation is served: no "no such route" and no 405.
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let url = path.replace("{id}", "missing-id");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = c
                .req(m.clone(), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !text.contains("no such route"),
                "{method} {path} is documented but not routed"
            );
            let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(
                codes.iter().any(|c| c.as_str() == status.to_string()) || status == 401 || status == 429,
                "{method} {path} answered {status}, which the document does not list ({codes:?}): {text}"
            );
        }
    }
    assert!(operations >= 20);
    // And an undocumented route is not served.
    assert_eq!(c.get("/api/secret-admin").await.status, 404);
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_a_restart_finishes_the_work() {
    let mut server = Server::start(&[("LEARNFLOW_SHUTDOWN_GRACE_SECS", "5")]);
    let token = server.create_user("frank");
    let c = server.client(&token);
    let (waiting_doc, waiting_run) = upload_sample(&c, "t1", &[("review", "true")]).await;
    wait_run(&c, &waiting_run, "waiting").await;
    let (doc, run) = upload_sample(&c, "t2", &[]).await;
    let status = server.terminate();
    assert!(status.success(), "clean exit: {status:?}");
    let dir = server.dir.clone();
    let server = Server::start_in(&dir, &[]);
    let c = server.client(&token);
    wait_run(&c, &run, "completed").await;
    assert_eq!(
        c.get(&format!("/api/documents/{doc}")).await.json["status"],
        "ready"
    );
    assert_eq!(run_status(&c, &waiting_run).await, "waiting");
    assert_eq!(
        c.post_json(&format!("/api/documents/{waiting_doc}/approve"), &json!({}))
            .await
            .status,
        202
    );
    wait_run(&c, &waiting_run, "completed").await;
    // Each step of the interrupted run ran once: one attempt each.
    let detail = c.get(&format!("/api/runs/{run}")).await;
    for s in detail.json["steps"].as_array().unwrap() {
        assert_eq!(s["attempts"].as_array().map(Vec::len).unwrap_or(1), 1, "{s}");
    }
    drop(server);
}
