//! Unmodified Inngest SDK apps on LearnFlow: the conformance app in
//! `conformance/inngest-app` (the real npm `inngest` 4.24.0 and 3.54.2 packages with
//! the express adapter) runs against a real `learnflow serve` in dev mode. The app is
//! synced through the admin API, events come in through `/e/{key}` (and through
//! `inngest.send()` from Node), and every function's outcome is checked in LearnFlow's
//! runs API, next to native runs.

#[path = "serve/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{eventually, Client, Server};
use serde_json::{json, Value};

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/inngest-app")
}

/// The conformance app, stopped on drop.
struct App {
    child: Child,
    url: String,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl App {
    /// Syncs the app through LearnFlow's admin API; the answer must be 200.
    async fn sync(&self, c: &Client) -> harness::Answer {
        let synced = c
            .post_json(
                "/api/inngest/apps",
                &json!({ "url": format!("{}/api/inngest", self.url) }),
            )
            .await;
        assert_eq!(synced.status, 200, "{}", synced.text);
        synced
    }

    /// Starts the app for SDK major `sdk` against `server`, or `None` (loudly) outside
    /// CI when its npm packages are not installed (`scripts/test.sh` installs them).
    fn start(sdk: &str, server: &str, step_log: &Path) -> Option<App> {
        Self::start_with(sdk, step_log, &[("INNGEST_DEV", server)])
    }

    /// Starts the app with these SDK environment variables.
    fn start_with(sdk: &str, step_log: &Path, env: &[(&str, &str)]) -> Option<App> {
        let tsx = app_dir().join("node_modules/.bin/tsx");
        if !tsx.exists() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "{} is missing: run `npm ci` in conformance/inngest-app",
                    tsx.display()
                );
            }
            eprintln!("WARNING: SKIPPING the Inngest SDK tests: run `npm ci` in conformance/inngest-app");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // One process (`node --import tsx`), so killing it stops the app: the `tsx` CLI
        // would leave its node child running.
        let mut child = Command::new("node")
            .args(["--import", "tsx", "app.ts"])
            .current_dir(app_dir())
            .env("SDK_MAJOR", sdk)
            .env("PORT", port.to_string())
            .env("STEP_LOG", step_log)
            .env_remove("INNGEST_DEV")
            .env_remove("INNGEST_SIGNING_KEY")
            .env_remove("INNGEST_BASE_URL")
            .env_remove("INNGEST_EVENT_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the conformance app starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "the app did not start");
            match lines.next() {
                Some(Ok(l)) if l.starts_with("listening on") => break,
                Some(_) => {}
                None => panic!("the app exited before listening"),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Some(App {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }
}

/// Sends events to `/e/{key}` the way the SDK does; returns the ids.
async fn send(server: &Server, events: Value) -> Vec<String> {
    let r = reqwest::Client::new()
        .post(server.url("/e/test-key"))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 200, "{body}");
    body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The run one event started, once it has ended.
async fn finished(c: &Client, event_id: &str) -> Value {
    finished_of(c, event_id, None).await
}

/// The run of `function` (if given) one event started, once it has ended.
async fn finished_of(c: &Client, event_id: &str, function: Option<&str>) -> Value {
    let filter = function.map(|f| format!("&function={f}")).unwrap_or_default();
    eventually(&format!("the run of event {event_id} to end"), async || {
        let page = c.get(&format!("/api/runs?event={event_id}{filter}")).await;
        let run = page.json["runs"].as_array()?.first()?.clone();
        let status = run["status"].as_str()?.to_string();
        matches!(status.as_str(), "completed" | "failed" | "cancelled").then_some(run)
    })
    .await
}

async fn detail(c: &Client, run: &Value) -> Value {
    c.get(&format!("/api/runs/{}", run["id"].as_str().unwrap()))
        .await
        .json
}

/// The app's steps of a run (without the executor's own last step, which sends
/// `inngest/function.finished`).
fn step_names(detail: &Value) -> Vec<String> {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .filter(|n| n != "inngest-function-ended")
        .collect()
}

/// What the fake model / fetch target saw: `(path, authorization, x-from, body)`.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String, String)>>>;

/// An HTTP fake of a hosted OpenAI-compatible model (which cannot run here), and a
/// plain endpoint for `step.fetch`; LearnFlow's real client code calls both.
async fn fake_model() -> (String, Seen) {
    let seen: Seen = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                log.lock().unwrap().push((
                    uri.path().to_string(),
                    header("authorization"),
                    header("x-from"),
                    body.clone(),
                ));
                if uri.path().ends_with("/chat/completions") {
                    axum::Json(json!({
                        "id": "cmpl-1", "object": "chat.completion",
                        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "hi from the model" } }],
                    }))
                    .into_response()
                } else {
                    (axum::http::StatusCode::CREATED, format!("pong:{body}")).into_response()
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

use axum::response::IntoResponse;

/// Whether two of `user`'s `agent-*` steps ran at the same time, from the steps' log.
fn agents_overlap(log: &Path, user: &str) -> bool {
    let mut spans: std::collections::HashMap<String, (i64, i64)> = Default::default();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let step = v["step"].as_str().unwrap_or_default();
        if v["user"] != user || !step.starts_with("agent-") {
            continue;
        }
        let t = v["t"].as_i64().unwrap();
        let e = spans.entry(step.to_string()).or_insert((t, t));
        if v["phase"] == "start" {
            e.0 = t;
        } else {
            e.1 = t;
        }
    }
    assert_eq!(spans.len(), 3, "three agents logged: {spans:?}");
    let s: Vec<(i64, i64)> = spans.into_values().collect();
    s.iter()
        .enumerate()
        .any(|(i, a)| s.iter().skip(i + 1).any(|b| a.0 < b.1 && b.0 < a.1))
}

fn millis(rfc3339: &Value) -> i64 {
    let s = rfc3339.as_str().unwrap();
    learnflow_engine::Timestamp::parse_rfc3339(s).unwrap().millis()
}

async fn conformance(sdk: &str) {
    let server = Server::start(&[
        ("LEARNFLOW_INNGEST_DEV", "true"),
        ("LEARNFLOW_INNGEST_RETRY_BASE_MS", "400"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("steps.jsonl");
    let Some(app) = App::start(sdk, &server.base, &log) else {
        return;
    };
    let c = server.client(&server.admin);

    // Sync: the app's twenty-four functions (and one onFailure handler) become engine
    // functions.
    let synced = app.sync(&c).await;
    assert_eq!(synced.json["appName"], "conformance-app");
    assert!(
        synced.json["sdk"]
            .as_str()
            .unwrap()
            .starts_with(&format!("js:v{sdk}.")),
        "{}",
        synced.text
    );
    assert_eq!(
        synced.json["functions"].as_array().unwrap().len(),
        25,
        "{}",
        synced.text
    );
    let functions = c.get("/api/functions").await;
    let config = |id: &str| {
        functions.json["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("{id} is registered: {}", functions.text))["config"]
            .clone()
    };
    // SDK functions retry on Inngest's schedule (its first wait set to 400 ms here),
    // native ones on the engine's.
    let sdk_backoff = config("conformance-app-seq")["backoff"].clone();
    assert_eq!(
        (sdk_backoff["base"].as_str(), sdk_backoff["max_delay"].as_str()),
        (Some("400ms"), Some("2h")),
        "{sdk_backoff}"
    );
    assert_eq!(config("process-document")["backoff"]["base"], "1s");
    let apps = c.get("/api/inngest/apps").await;
    assert_eq!(
        apps.json["apps"][0]["appName"], "conformance-app",
        "{}",
        apps.text
    );
    // Only admins see or sync apps.
    let user = server.client(&server.create_user("not-admin"));
    assert_eq!(user.get("/api/inngest/apps").await.status, 404);
    // A URL that is no app: a clear 422.
    let bad = c
        .post_json(
            "/api/inngest/apps",
            &json!({ "url": "http://127.0.0.1:1/api/inngest" }),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);

    // Events: one array, ids in order; bad input is refused with the status in the body.
    let ids = send(
        &server,
        json!([
            { "name": "test/seq", "data": { "hello": "world" } },
            { "name": "test/parallel" },
            { "name": "test/loop" },
            { "name": "test/sleep", "data": { "sleep": "1s" } },
            { "name": "test/parent" },
            { "name": "test/nonretry" },
            { "name": "test/retryafter" },
            { "name": "test/stepfail" },
            { "name": "document.uploaded", "data": { "userId": "u1", "documentId": "d1", "stepMs": 300 } },
        ]),
    )
    .await;
    assert_eq!(ids.len(), 9);
    let http = reqwest::Client::new();
    let bad = http
        .post(server.url("/e/k"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["status"], 400);
    let bad = http
        .post(server.url("/e/k"))
        .json(&json!([{ "data": {} }]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    // Out-of-band registration: a body that is no register request, or names no app.
    for (body, says) in [
        ("{not json", "register request is not understood"),
        (
            r#"{"url": "", "appName": "x", "functions": []}"#,
            "names no app url",
        ),
    ] {
        let r = http
            .post(server.url("/fn/register"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains(says) && !text.contains("app at  "), "{text}");
    }

    // step.run, in order, memoized.
    let seq = finished(&c, &ids[0]).await;
    assert_eq!(seq["status"], "completed", "{seq}");
    assert_eq!(seq["output"], json!({ "b": "AB", "input": { "hello": "world" } }));
    let sd = detail(&c, &seq).await;
    assert_eq!(step_names(&sd), ["a", "b"]);
    let last = sd["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["name"], "inngest-function-ended",
        "the end is announced: {sd}"
    );
    // Parallel steps, then one more.
    let par = finished(&c, &ids[1]).await;
    assert_eq!(par["output"], json!(3), "{par}");
    let mut names = step_names(&detail(&c, &par).await);
    names.sort();
    assert_eq!(names, ["after", "p1", "p2"]);
    // Repeated step ids.
    let lp = finished(&c, &ids[2]).await;
    assert_eq!(lp["output"], json!(3), "{lp}");
    assert_eq!(step_names(&detail(&c, &lp).await).len(), 3);
    // A durable sleep.
    let sl = finished(&c, &ids[3]).await;
    assert_eq!(sl["output"], json!("woke"), "{sl}");
    assert!(
        millis(&sl["ended_at"]) - millis(&sl["started_at"]) >= 1000,
        "{sl}"
    );
    let sd = detail(&c, &sl).await;
    assert_eq!(sd["steps"][0]["kind"], "sleep", "{sd}");
    // Invoke: the child's result comes back, and the child is a run of its own.
    let parent = finished(&c, &ids[4]).await;
    assert_eq!(parent["output"], json!({ "doubled": 42 }), "{parent}");
    let children = c.get("/api/runs?function=conformance-app-child").await;
    assert_eq!(
        children.json["runs"][0]["output"],
        json!({ "doubled": 42 }),
        "{}",
        children.text
    );
    // NonRetriableError: failed at once, no second attempt.
    let nr = finished(&c, &ids[5]).await;
    assert_eq!(nr["status"], "failed", "{nr}");
    assert_eq!(nr["error"]["message"], "do not retry me", "{nr}");
    assert_eq!(nr["attempt"], 0, "{nr}");
    // …and `inngest/function.failed` ran its onFailure handler with the error.
    let handled = eventually("the onFailure handler to run", async || {
        let page = c
            .get("/api/runs?function=conformance-app-non-retriable-failure")
            .await;
        let run = page.json["runs"].as_array()?.first()?.clone();
        (run["status"] == "completed").then_some(run)
    })
    .await;
    assert_eq!(
        handled["output"],
        json!({ "handled": "do not retry me" }),
        "{handled}"
    );
    // RetryAfterError: the step's second attempt waits the second the app asked for.
    let ra = finished(&c, &ids[6]).await;
    assert_eq!(ra["output"], json!("ok on attempt 1"), "{ra}");
    let rd = detail(&c, &ra).await;
    let attempts = rd["steps"][0]["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 2, "{rd}");
    // (v3 serialises the error's class as `Error`, v4 as `RetryAfterError`.)
    assert_eq!(attempts[0]["error"]["message"], "try later", "{rd}");
    assert!(
        millis(&attempts[1]["started_at"]) - millis(&attempts[0]["started_at"]) >= 1000,
        "{rd}"
    );
    // A step that fails for good is an error the function can catch; its second attempt
    // waited at least half the first backoff (equal jitter over 400 ms).
    let sf = finished(&c, &ids[7]).await;
    assert_eq!(sf["output"], json!({ "caught": "Error: kaboom" }), "{sf}");
    let sd = detail(&c, &sf).await;
    let attempts = sd["steps"][0]["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 2, "{sd}");
    assert!(
        millis(&attempts[1]["started_at"])
            - millis(&attempts[0]["started_at"])
            - attempts[0]["duration_us"].as_i64().unwrap() / 1000
            >= 199,
        "{sd}"
    );
    // The seed's example: ocr, architect, parallel agents, store.
    let pd = finished_of(&c, &ids[8], Some("conformance-app-process-document")).await;
    assert_eq!(pd["status"], "completed", "{pd}");
    // The same event started the native `process-document` too (which fails: there is
    // no such document in the library): SDK and native functions share events.
    let native = finished_of(&c, &ids[8], Some("process-document")).await;
    assert_eq!(native["status"], "failed", "{native}");
    // Its three agents ran at once (no limit on calls to the app here).
    assert!(
        agents_overlap(&log, "u1"),
        "parallel steps overlapped: {:?}",
        std::fs::read_to_string(&log)
    );
    let mut names = step_names(&detail(&c, &pd).await);
    names.sort();
    assert_eq!(
        names,
        [
            "agent-classify",
            "agent-extract",
            "agent-summarize",
            "architect",
            "ocr",
            "store"
        ]
    );

    // waitForEvent: a non-matching event leaves it waiting, the matching one resumes it.
    let w = send(&server, json!({ "name": "test/wait", "data": { "id": "abc" } })).await;
    eventually("the waiter to wait", async || {
        let page = c.get(&format!("/api/runs?event={}", w[0])).await;
        (page.json["runs"][0]["status"] == "waiting").then_some(())
    })
    .await;
    send(&server, json!({ "name": "test/resume", "data": { "id": "zzz" } })).await;
    send(&server, json!({ "name": "test/resume", "data": { "id": "abc" } })).await;
    let wr = finished(&c, &w[0]).await;
    assert_eq!(wr["output"]["id"], "abc", "{wr}");
    // …and times out with null.
    let t = send(
        &server,
        json!({ "name": "test/wait", "data": { "id": "q", "timeout": "1s" } }),
    )
    .await;
    let tr = finished(&c, &t[0]).await;
    assert_eq!(tr["output"], json!("timeout"), "{tr}");

    // Concurrency per key: one run per user at a time, from the steps' own log.
    let per: Vec<Value> = (0..6)
        .map(|i| json!({ "name": "test/peruser", "data": { "userId": format!("user-{}", i % 2) } }))
        .collect();
    for id in send(&server, json!(per)).await {
        assert_eq!(finished(&c, &id).await["status"], "completed");
    }
    let mut spans: std::collections::HashMap<String, Vec<(i64, i64)>> = Default::default();
    let mut open: std::collections::HashMap<(String, String), i64> = Default::default();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["user"].as_str().is_none_or(|u| !u.starts_with("user-")) {
            continue;
        }
        let key = (
            v["run"].as_str().unwrap().to_string(),
            v["step"].as_str().unwrap().to_string(),
        );
        let t = v["t"].as_i64().unwrap();
        if v["phase"] == "start" {
            open.insert(key, t);
        } else if let Some(s) = open.remove(&key) {
            spans
                .entry(v["user"].as_str().unwrap().to_string())
                .or_default()
                .push((s, t));
        }
    }
    assert_eq!(
        spans.values().map(Vec::len).sum::<usize>(),
        18,
        "every step ran once"
    );
    for (user, mut s) in spans {
        s.sort();
        for w in s.windows(2) {
            assert!(w[1].0 >= w[0].1, "{user}: two steps overlapped: {w:?}");
        }
    }

    // inngest.send() from the app reaches LearnFlow and starts a run.
    let r = http
        .post(format!("{}/send", app.url))
        .json(&json!({ "name": "test/seq", "data": { "hello": "node" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let sent: Value = r.json().await.unwrap();
    let id = sent["ids"][0].as_str().unwrap().to_string();
    let from_node = finished(&c, &id).await;
    assert_eq!(
        from_node["output"]["input"],
        json!({ "hello": "node" }),
        "{from_node}"
    );

    // step.fetch and step.ai.infer: LearnFlow makes the request as a durable step.
    let (fake, seen) = fake_model().await;
    let ids = send(
        &server,
        json!([
            { "name": "test/fetch", "data": { "url": format!("{fake}/echo") } },
            { "name": "test/infer", "data": { "baseUrl": format!("{fake}/v1") } },
        ]),
    )
    .await;
    let fetched = finished(&c, &ids[0]).await;
    assert_eq!(
        fetched["output"],
        json!({ "status": 201, "body": "pong:ping" }),
        "{fetched}"
    );
    let inferred = finished(&c, &ids[1]).await;
    assert_eq!(inferred["output"], json!("hi from the model"), "{inferred}");
    assert_eq!(step_names(&detail(&c, &inferred).await), ["ask"]);
    let seen = seen.lock().unwrap().clone();
    let echo = seen.iter().find(|s| s.0 == "/echo").expect("step.fetch called");
    assert_eq!((echo.2.as_str(), echo.3.as_str()), ("step.fetch", "ping"));
    let model = seen
        .iter()
        .find(|s| s.0 == "/v1/chat/completions")
        .expect("step.ai.infer called the model");
    assert_eq!(model.1, "Bearer sk-test");
    let body: Value = serde_json::from_str(&model.3).unwrap();
    assert_eq!(body["model"], "tiny", "{body}");
    assert_eq!(body["messages"][0]["content"], "say hi", "{body}");
    assert_eq!(seen.len(), 2, "each outbound request made once: {seen:?}");

    // rateLimit: one run per user per minute, the other events start nothing.
    let r = send(
        &server,
        json!([
            { "name": "test/rate", "data": { "userId": "ann" } },
            { "name": "test/rate", "data": { "userId": "ann" } },
            { "name": "test/rate", "data": { "userId": "bob" } },
            { "name": "test/rate", "data": { "userId": "ann" } },
        ]),
    )
    .await;
    assert_eq!(finished(&c, &r[0]).await["output"], json!("ran for ann"));
    assert_eq!(finished(&c, &r[2]).await["output"], json!("ran for bob"));
    for skipped in [&r[1], &r[3]] {
        let runs = c.get(&format!("/api/runs?event={skipped}")).await;
        assert_eq!(runs.json["runs"], json!([]), "{}", runs.text);
    }

    // singleton (skip): a second event while the first run is active starts nothing.
    let s1 = send(
        &server,
        json!({ "name": "test/single", "data": { "userId": "ann", "n": 1 } }),
    )
    .await;
    let s2 = send(
        &server,
        json!({ "name": "test/single", "data": { "userId": "ann", "n": 2 } }),
    )
    .await;
    assert_eq!(finished(&c, &s1[0]).await["output"], json!(1));
    let runs = c.get(&format!("/api/runs?event={}", s2[0])).await;
    assert_eq!(runs.json["runs"], json!([]), "{}", runs.text);

    // batchEvents: three events, one run that sees all of them (full: no wait).
    let mut b = Vec::new();
    for n in 1..=3 {
        b.extend(
            send(
                &server,
                json!({ "name": "test/batch", "data": { "userId": "ann", "n": n } }),
            )
            .await,
        );
    }
    let run = finished(&c, &b[0]).await;
    assert_eq!(run["output"], json!([1, 2, 3]), "{run}");
    let all = c.get("/api/runs?function=conformance-app-batched").await;
    assert_eq!(all.json["runs"].as_array().unwrap().len(), 1, "{}", all.text);

    // A wildcard trigger.
    let w = send(&server, json!({ "name": "test/wild.card" })).await;
    assert_eq!(finished(&c, &w[0]).await["output"], json!("test/wild.card"));

    // debounce: a burst of events starts one run, a second after the last, with it.
    let mut burst = Vec::new();
    for n in 1..=3 {
        burst.extend(
            send(
                &server,
                json!({ "name": "test/debounce", "data": { "userId": "ann", "n": n } }),
            )
            .await,
        );
    }
    let ran = finished(&c, &burst[2]).await;
    assert_eq!(ran["output"], json!(3), "{ran}");
    for folded in &burst[..2] {
        let runs = c.get(&format!("/api/runs?event={folded}")).await;
        assert_eq!(runs.json["runs"], json!([]), "{}", runs.text);
    }
    let all = c.get("/api/runs?function=conformance-app-debounced").await;
    assert_eq!(all.json["runs"].as_array().unwrap().len(), 1, "{}", all.text);

    // waitForSignal: resumed by another run's step.sendSignal; a signal nobody waits
    // for is reported as such; an unsent one times out.
    let w = send(
        &server,
        json!({ "name": "test/signal-wait", "data": { "signal": format!("sig-{sdk}") } }),
    )
    .await;
    eventually("the signal waiter to wait", async || {
        let page = c.get(&format!("/api/runs?event={}", w[0])).await;
        (page.json["runs"][0]["status"] == "waiting").then_some(())
    })
    .await;
    let s = send(
        &server,
        json!({ "name": "test/signal-send", "data": { "signal": format!("sig-{sdk}") } }),
    )
    .await;
    let waiter = finished(&c, &w[0]).await;
    assert_eq!(
        waiter["output"],
        json!({ "signal": format!("sig-{sdk}"), "data": { "note": "from the sender" } }),
        "{waiter}"
    );
    let sender = finished(&c, &s[0]).await;
    assert_eq!(sender["output"]["runId"], waiter["id"], "{sender}");
    let s = send(
        &server,
        json!({ "name": "test/signal-send", "data": { "signal": "nobody-waits" } }),
    )
    .await;
    assert_eq!(finished(&c, &s[0]).await["output"], json!({ "runId": null }));
    let t = send(
        &server,
        json!({ "name": "test/signal-wait", "data": { "signal": "never", "timeout": "1s" } }),
    )
    .await;
    assert_eq!(finished(&c, &t[0]).await["output"], json!("timeout"));
    let bad = http
        .post(server.url("/v1/signals"))
        .json(&json!({ "data": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    if sdk == "4" {
        resync_and_event_validation(&server, &c, &app).await;
    }
}

/// v4 checks that the event it is called with triggers the function (§2.5 of the
/// protocol notes): by hand, a wrong event is a 400 that must not be retried. Through
/// LearnFlow: after a re-sync that changed a trigger and dropped the other functions,
/// the dropped ones are gone from the engine and a run the app refuses fails at once.
async fn resync_and_event_validation(server: &Server, c: &Client, app: &App) {
    let http = reqwest::Client::new();
    let call = |fn_id: &str| format!("{}/api/inngest?fnId=conformance-app-{fn_id}&stepId=step", app.url);
    let wrong = http
        .post(call("sleepy"))
        .json(&json!({
            "event": { "name": "test/seq", "data": {} }, "events": [{ "name": "test/seq", "data": {} }],
            "steps": {}, "ctx": { "run_id": "r1", "attempt": 0, "stack": { "stack": [], "current": 0 } },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 400);
    assert_eq!(
        wrong.headers()["x-inngest-no-retry"],
        "true",
        "{:?}",
        wrong.headers()
    );
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["name"], "EventValidationError", "{body}");

    // An app may not take over a LearnFlow function's id.
    let register = |functions: Value| {
        json!({
            "url": format!("{}/api/inngest", app.url), "appName": "conformance-app",
            "framework": "express", "sdk": "js:v4.24.0", "deployType": "ping", "v": "0.1",
            "functions": functions,
        })
    };
    let step = |fn_id: &str, retries: u32| {
        json!({ "step": { "id": "step", "name": "step",
            "runtime": { "type": "http", "url": call(fn_id) }, "retries": { "attempts": retries } } })
    };
    let clash = http
        .post(server.url("/fn/register"))
        .json(&register(json!([
            { "id": "process-document", "name": "x", "triggers": [{ "event": "x/y" }],
              "steps": step("sleepy", 2) },
        ])))
        .send()
        .await
        .unwrap();
    assert_eq!(clash.status().as_u16(), 400);
    let text = clash.text().await.unwrap();
    assert!(text.contains("taken by a LearnFlow function"), "{text}");
    assert!(c.get("/api/functions").await.text.contains("conformance-app-seq"));

    // Re-sync: only `sleepy`, now triggered by `test/other`.
    let resync = http
        .post(server.url("/fn/register"))
        .json(&register(json!([
            { "id": "conformance-app-sleepy", "name": "sleepy", "triggers": [{ "event": "test/other" }],
              "steps": step("sleepy", 2) },
        ])))
        .send()
        .await
        .unwrap();
    assert_eq!(resync.status().as_u16(), 200, "{}", resync.text().await.unwrap());
    let functions = c.get("/api/functions").await.text;
    assert!(!functions.contains("conformance-app-seq"), "{functions}");
    assert!(functions.contains("conformance-app-sleepy"), "{functions}");
    assert!(functions.contains("\"process-document\""), "{functions}");
    let apps = c.get("/api/inngest/apps").await;
    assert_eq!(
        apps.json["apps"][0]["functions"],
        json!(["conformance-app-sleepy"]),
        "{}",
        apps.text
    );
    let ids = send(server, json!({ "name": "test/other" })).await;
    let refused = finished(c, &ids[0]).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["error"]["name"], "EventValidationError", "{refused}");
    assert_eq!(refused["attempt"], 0, "no retry of a refused event: {refused}");
    // A dropped function no longer starts.
    let ids = send(server, json!({ "name": "test/seq" })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = c.get(&format!("/api/runs?event={}", ids[0])).await;
    assert_eq!(runs.json["runs"], json!([]), "{}", runs.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inngest_v4_app_runs_on_learnflow() {
    conformance("4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inngest_v3_app_runs_on_learnflow() {
    conformance("3").await;
}

/// LearnFlow killed with SIGKILL while SDK runs are mid-way: after a restart on the
/// same data directory (the synced app is kept), every run completes and no step the
/// app finished and LearnFlow recorded runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_runs_survive_a_sigkill_of_learnflow() {
    let data = tempfile::tempdir().unwrap();
    let env = [("LEARNFLOW_INNGEST_DEV", "true")];
    let mut server = Server::start_in(data.path(), &env);
    let admin = server.admin.clone();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("steps.jsonl");
    let Some(app) = App::start("4", &server.base, &log) else {
        return;
    };
    let c = server.client(&admin);
    app.sync(&c).await;
    let events: Vec<Value> = (0..10)
        .map(|i| {
            json!({ "name": "document.uploaded",
                    "data": { "userId": format!("u{}", i % 3), "documentId": format!("d{i}"), "stepMs": 150 } })
        })
        .collect();
    let ids = send(&server, json!(events)).await;
    let ends = |log: &Path| -> Vec<(String, String)> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["phase"] == "end")
            .map(|v| {
                (
                    v["run"].as_str().unwrap().to_string(),
                    v["step"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends(&log).len() < 15 {
        assert!(Instant::now() < deadline, "no progress before the kill");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let at_kill = ends(&log).len();
    assert!(
        at_kill < 60,
        "the kill came after the work was done ({at_kill} steps)"
    );
    let server = Server::start_in(data.path(), &env);
    let c = server.client(&admin);
    for id in &ids {
        let run = finished_of(&c, id, Some("conformance-app-process-document")).await;
        assert_eq!(run["status"], "completed", "{run}");
    }
    let mut count: std::collections::HashMap<(String, String), usize> = Default::default();
    for e in ends(&log) {
        *count.entry(e).or_default() += 1;
    }
    assert_eq!(count.len(), 60, "6 steps × 10 runs ran");
    let again = count.values().filter(|n| **n > 1).count();
    assert!(count.values().all(|n| *n <= 2), "a step ran three times");
    // Only steps in flight at the kill (finished by the app, not yet recorded) may
    // run again: at most 5 per user at once, 3 users.
    assert!(again <= 15, "{again} steps ran twice");
    drop(app);
}

const SIGNING_KEY: &str = "signkey-test-8e1b6e1f6c3a4d2b9f0e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928";

/// Cloud mode: LearnFlow signs every request (JCS body + time, HMAC-SHA256) and the
/// SDK, holding the same signing key, verifies it and signs its answers, which
/// LearnFlow verifies; syncs need the key's bearer and events an event key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_in_cloud_mode() {
    let server = Server::start(&[
        ("LEARNFLOW_INNGEST_SIGNING_KEY", SIGNING_KEY),
        ("LEARNFLOW_INNGEST_EVENT_KEYS", "ev-key-1"),
        ("LEARNFLOW_INNGEST_RETRY_BASE_MS", "200"),
        ("LEARNFLOW_INNGEST_MAX_CALLS_PER_APP", "1"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("steps.jsonl");
    let Some(app) = App::start_with(
        "4",
        &log,
        &[
            ("INNGEST_SIGNING_KEY", SIGNING_KEY),
            ("INNGEST_BASE_URL", server.base.as_str()),
            ("INNGEST_EVENT_KEY", "ev-key-1"),
        ],
    ) else {
        return;
    };
    let c = server.client(&server.admin);
    app.sync(&c).await;
    let http = reqwest::Client::new();
    // The SDK refuses an unsigned call: only LearnFlow's signed ones get through.
    let unsigned = http
        .post(format!(
            "{}/api/inngest?fnId=conformance-app-seq&stepId=step",
            app.url
        ))
        .json(&json!({ "event": { "name": "test/seq", "data": {} }, "steps": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    // Events need a known key.
    let wrong = http
        .post(server.url("/e/not-a-key"))
        .json(&json!({ "name": "test/seq" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["status"], 401);
    // Out-of-band registration needs the signing key's bearer.
    let register = http
        .post(server.url("/fn/register"))
        .header("authorization", "Bearer undefined")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(register.status().as_u16(), 401);
    // The dev-server probe is a dev-mode thing.
    assert_eq!(
        http.get(server.url("/dev"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let r = http
        .post(server.url("/e/ev-key-1"))
        .json(&json!([
            { "name": "test/seq", "data": { "hello": "signed" } },
            { "name": "test/parallel" },
            { "name": "test/stepfail" },
            { "name": "document.uploaded", "data": { "userId": "u-cloud", "documentId": "d9", "stepMs": 300 } },
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ids: Vec<String> = r.json::<Value>().await.unwrap()["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let seq = finished(&c, &ids[0]).await;
    assert_eq!(
        seq["output"],
        json!({ "b": "AB", "input": { "hello": "signed" } }),
        "{seq}"
    );
    assert_eq!(finished(&c, &ids[1]).await["output"], json!(3));
    assert_eq!(
        finished(&c, &ids[2]).await["output"],
        json!({ "caught": "Error: kaboom" })
    );
    // One call at a time to the app (LEARNFLOW_INNGEST_MAX_CALLS_PER_APP=1): the
    // document's parallel agents took their turns.
    let pd = finished_of(&c, &ids[3], Some("conformance-app-process-document")).await;
    assert_eq!(pd["status"], "completed", "{pd}");
    assert!(
        !agents_overlap(&log, "u-cloud"),
        "{:?}",
        std::fs::read_to_string(&log)
    );
    // inngest.send() from the app uses its event key.
    let sent = http
        .post(format!("{}/send", app.url))
        .json(&json!({ "name": "test/seq", "data": { "hello": "node" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 200, "{}", sent.text().await.unwrap());
}

/// Two nodes on one PostgreSQL database: an app synced through node A reaches node B
/// (which then starts its runs from events it receives), a re-sync that drops functions
/// drops them on B too, and an app that stops answering is shown as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_reach_every_node() {
    let Some(db) = learnflow_store_postgres::testing::TestDb::new() else {
        return;
    };
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("LEARNFLOW_INNGEST_DEV", "true"),
        ("LEARNFLOW_INNGEST_CHECK_SECS", "1"),
        ("LEARNFLOW_LEASE_TTL_SECS", "3"),
        ("LEARNFLOW_POLL_MS", "100"),
    ];
    let a = Server::start(&env);
    let b = Server::start(&env);
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut app) = App::start_with(
        "4",
        &tmp.path().join("steps.jsonl"),
        &[("INNGEST_DEV", a.base.as_str()), ("CRON_TICK", "*/2 * * * * *")],
    ) else {
        return;
    };
    let (ca, cb) = (a.client(&a.admin), b.client(&a.admin));
    app.sync(&ca).await;
    eventually("node B to register the synced functions", async || {
        cb.get("/api/functions")
            .await
            .text
            .contains("conformance-app-seq")
            .then_some(())
    })
    .await;
    // An event sent to node B starts the SDK function there.
    let r = reqwest::Client::new()
        .post(b.url("/e/k"))
        .json(&json!({ "name": "test/seq", "data": { "hello": "b" } }))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let run = finished(&cb, &id).await;
    assert_eq!(run["output"]["input"], json!({ "hello": "b" }), "{run}");

    // A cron trigger ticks every 2 s on both nodes; each tick starts one run.
    let ticks = eventually("three cron runs", async || {
        let page = cb
            .get("/api/runs?function=conformance-app-cron-tick&status=completed")
            .await;
        let runs = page.json["runs"].as_array()?.clone();
        (runs.len() >= 3).then_some(runs)
    })
    .await;
    let mut at: Vec<String> = ticks
        .iter()
        .map(|r| {
            assert_eq!(r["output"]["name"], "inngest/scheduled.timer", "{r}");
            r["output"]["at"].as_str().unwrap().to_string()
        })
        .collect();
    let n = at.len();
    at.sort();
    at.dedup();
    assert_eq!(at.len(), n, "one run per tick across two nodes: {ticks:?}");

    // A re-sync through A that keeps only `seq` drops the others on B.
    let call = format!("{}/api/inngest?fnId=conformance-app-seq&stepId=step", app.url);
    let resync = reqwest::Client::new()
        .post(a.url("/fn/register"))
        .json(&json!({
            "url": format!("{}/api/inngest", app.url), "appName": "conformance-app",
            "sdk": "js:v4.24.0", "functions": [{
                "id": "conformance-app-seq", "name": "seq", "triggers": [{ "event": "test/seq" }],
                "steps": { "step": { "id": "step", "name": "step",
                    "runtime": { "type": "http", "url": call } } } }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resync.status().as_u16(), 200);
    eventually(
        "node B to drop the functions the app no longer serves",
        async || {
            let f = cb.get("/api/functions").await.text;
            (!f.contains("conformance-app-parallel") && f.contains("conformance-app-seq")).then_some(())
        },
    )
    .await;

    // The app goes away: both nodes say so.
    let _ = app.child.kill();
    let _ = app.child.wait();
    for c in [&ca, &cb] {
        let apps = eventually("the app to be shown as not answering", async || {
            let apps = c.get("/api/inngest/apps").await;
            apps.json["apps"][0]["unreachable"].is_string().then_some(apps)
        })
        .await;
        assert!(apps.json["apps"][0]["lastSeenAt"].is_i64(), "{}", apps.text);
    }
}
