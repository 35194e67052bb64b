//! The web UI in a real browser (Debian's headless Chromium through chromedriver):
//! sign in, upload, watch progress to completion, answer a quiz question, flip a card,
//! ask a question, approve a reviewed plan with a diagram, cancel and replay a run in
//! the dashboard, look at the functions, send a test event, and the forms' errors. A
//! screenshot of every page is saved under `$CARGO_TARGET_DIR/ui-screenshots/`, and
//! the page must never have raised a JavaScript error.

#[path = "serve/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use harness::{sample_variant, Server};
use serde_json::{json, Value};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver, or None (outside CI, loudly) when it is not installed.
fn start_driver() -> Option<(Driver, u16)> {
    let found = Command::new("chromedriver").arg("--version").output().is_ok();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromedriver is not installed (apt-get install chromium chromium-driver)");
        }
        eprintln!("WARNING: SKIPPING the browser test: chromedriver is not installed (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((Driver(child), port))
}

fn shots_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = PathBuf::from(target).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Ui {
    c: Client,
    base: String,
    shots: PathBuf,
}

impl Ui {
    async fn go(&self, hash: &str) {
        self.c.goto(&format!("{}/{hash}", self.base)).await.unwrap();
    }

    async fn el(&self, css: &str) -> Element {
        self.c
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    async fn text(&self, css: &str) -> String {
        self.el(css).await.text().await.unwrap()
    }

    /// Waits until the element's text satisfies `f`.
    async fn until_text(&self, css: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(el) = self.c.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if f(&t) {
                        return t;
                    }
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what} in {css}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn no_js_errors(&self, page: &str) {
        let errors = self
            .c
            .execute("return window.__lf_errors || ['no error hook']", vec![])
            .await
            .unwrap();
        assert_eq!(errors, json!([]), "JavaScript errors on {page}");
    }

    async fn scroll_to(&self, css: &str) {
        self.c
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView()",
                vec![json!(css)],
            )
            .await
            .unwrap();
    }

    async fn hash(&self) -> String {
        self.c
            .execute("return location.hash", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn upload(&self, path: &std::path::Path, review: bool) {
        self.go("#/").await;
        let file = self.el("#file").await;
        file.send_keys(path.to_str().unwrap()).await.unwrap();
        if review {
            self.el("#review").await.click().await.unwrap();
        }
        self.el("#upload").await.click().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_works_in_a_real_browser() {
    let Some((_driver, port)) = start_driver() else {
        return;
    };
    let server = Server::start(&[("LEARNFLOW_MAX_FILE_MB", "1")]);
    let token = server.create_user("student");
    let files = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }),
    );
    // Both rustls backends are in the dependency tree; pick one for the WebDriver client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = ClientBuilder::rustls()
        .expect("a TLS setup")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    let ui = Ui {
        c,
        base: server.base.clone(),
        shots: shots_dir(),
    };

    // Sign in: a wrong token is refused with a message, the right one goes in.
    ui.go("").await;
    ui.el("#login-form").await;
    ui.shot("01-sign-in").await;
    ui.el("#token").await.send_keys("lf_wrong").await.unwrap();
    ui.el("#login-form button").await.click().await.unwrap();
    let err = ui.text("#login-form .error").await;
    assert!(err.contains("not valid"), "{err}");
    let field = ui.el("#token").await;
    field.clear().await.unwrap();
    field.send_keys(&token).await.unwrap();
    ui.el("#login-form button").await.click().await.unwrap();
    ui.el("#upload-form").await;
    assert!(ui.text("#who").await.contains("student"));
    // The session is an HttpOnly cookie: scripts cannot read the token.
    let cookies = ui.c.execute("return document.cookie", vec![]).await.unwrap();
    assert!(!cookies.as_str().unwrap().contains("lf_"), "{cookies}");

    // Form errors: no file, an unsupported file, a file over the limit.
    ui.el("#upload").await.click().await.unwrap();
    assert!(ui.text("#upload-message .error").await.contains("Choose a file"));
    let exe = files.path().join("program.pdf");
    std::fs::write(&exe, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0".repeat(40)).unwrap();
    ui.upload(&exe, false).await;
    let err = ui
        .until_text("#upload-message .error", "a 415 message", |t| !t.is_empty())
        .await;
    assert!(err.contains("unsupported"), "{err}");
    let big = files.path().join("big.txt");
    std::fs::write(&big, "word ".repeat(300_000)).unwrap();
    ui.upload(&big, false).await;
    let err = ui
        .until_text("#upload-message .error", "a size message", |t| !t.is_empty())
        .await;
    assert!(err.contains("limit"), "{err}");
    ui.shot("02-upload-errors").await;
    ui.no_js_errors("the upload page").await;

    // Upload and watch it to the end, live.
    let doc_file = files.path().join("photosynthesis.md");
    std::fs::write(&doc_file, sample_variant("ui-1")).unwrap();
    ui.upload(&doc_file, false).await;
    ui.until_text("#doc-status", "ready", |t| t.contains("ready"))
        .await;
    let steps = ui.text("#steps").await;
    for step in ["extract", "architect", "embed", "store", "notify"] {
        assert!(steps.contains(step), "progress lacks {step}: {steps}");
    }
    let completed =
        ui.c.find_all(Locator::Css("#steps li.completed"))
            .await
            .unwrap()
            .len();
    assert!(completed >= 8, "{completed} completed steps shown");
    ui.el("#material-quiz").await;
    ui.scroll_to("#material-quiz").await;
    ui.shot("03-study-pack").await;

    // Answer a quiz question: the right answer is marked and the explanation cites a page.
    ui.el("#material-quiz .quiz-q[data-question='0'] .options button")
        .await
        .click()
        .await
        .unwrap();
    let explain = ui
        .text("#material-quiz .quiz-q[data-question='0'] .explain")
        .await;
    assert!(
        explain.contains("Right") || explain.contains("Not quite"),
        "{explain}"
    );
    assert!(
        explain.contains("[p. "),
        "the explanation cites its page: {explain}"
    );
    assert_eq!(
        ui.c.find_all(Locator::Css(
            "#material-quiz .quiz-q[data-question='0'] button.right"
        ))
        .await
        .unwrap()
        .len(),
        1
    );
    // Flip a flashcard.
    if let Ok(card) = ui.c.find(Locator::Css("#material-flashcards .flashcard")).await {
        let front = card.text().await.unwrap();
        card.click().await.unwrap();
        assert_ne!(card.text().await.unwrap(), front);
        assert!(card.attr("class").await.unwrap().unwrap().contains("flipped"));
    }
    assert!(ui
        .el("#anki")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap()
        .ends_with("flashcards.tsv"));

    // Ask: an empty question gets a message, a real one a cited answer.
    ui.el("#ask-form button").await.click().await.unwrap();
    assert!(ui.text("#answers .error").await.contains("Type a question"));
    ui.el("#question")
        .await
        .send_keys("What does chlorophyll absorb?")
        .await
        .unwrap();
    ui.el("#ask-form button").await.click().await.unwrap();
    let answer = ui
        .until_text("#answers .answer", "an answer", |t| !t.is_empty())
        .await;
    assert!(answer.contains("[p. "), "{answer}");
    ui.el("#answers a.cite").await;
    ui.scroll_to("#ask").await;
    ui.shot("04-answer").await;
    ui.no_js_errors("the document page").await;

    // Review: the plan is shown, the reviewer picks the agents (with a diagram), approves.
    let second = files.path().join("second.md");
    std::fs::write(&second, sample_variant("ui-2")).unwrap();
    ui.upload(&second, true).await;
    ui.el("#approve").await;
    ui.shot("05-review").await;
    for b in
        ui.c.find_all(Locator::Css("#review input[name='agent']"))
            .await
            .unwrap()
    {
        let value = b.attr("value").await.unwrap().unwrap();
        let checked = b.prop("checked").await.unwrap().as_deref() == Some("true");
        let want = ["quiz", "diagram", "glossary"].contains(&value.as_str());
        if checked != want {
            b.click().await.unwrap();
        }
    }
    ui.el("#approve").await.click().await.unwrap();
    ui.until_text("#doc-status", "ready after review", |t| t.contains("ready"))
        .await;
    let sections: Vec<String> = {
        let mut v = Vec::new();
        for s in ui.c.find_all(Locator::Css("#pack section")).await.unwrap() {
            v.push(s.attr("id").await.unwrap().unwrap_or_default());
        }
        v.sort();
        v
    };
    assert_eq!(
        sections,
        ["material-diagram", "material-glossary", "material-quiz"]
    );
    ui.el("#material-diagram .mermaid-box svg").await;
    let labels = ui
        .c
        .execute(
            "return Array.from(document.querySelectorAll('#material-diagram svg text')).map(t => t.textContent.trim()).filter(t => t)",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        labels.as_array().unwrap().len() >= 3,
        "the diagram's nodes have visible labels: {labels}"
    );
    ui.scroll_to("#material-diagram").await;
    ui.shot("06-diagram").await;
    ui.no_js_errors("the reviewed document").await;

    // Dashboard: a run waiting for review is cancelled, then replayed from the start.
    let third = files.path().join("third.md");
    std::fs::write(&third, sample_variant("ui-3")).unwrap();
    ui.upload(&third, true).await;
    ui.el("#approve").await;
    let doc_hash = ui.hash().await;
    let doc_id = doc_hash.trim_start_matches("#/doc/").to_string();
    ui.go("#/runs").await;
    ui.el("#runs table").await;
    ui.el("#f-search").await.send_keys(&doc_id).await.unwrap();
    ui.el("#run-filters button").await.click().await.unwrap();
    ui.until_text("#runs", "the one run of that document", |t| {
        t.matches("process-document").count() == 1
    })
    .await;
    ui.shot("07-runs").await;
    ui.el("#runs a").await.click().await.unwrap();
    ui.until_text("#run-status", "waiting", |t| t.contains("waiting"))
        .await;
    ui.el("#gantt .gantt-row[data-step='architect']")
        .await
        .click()
        .await
        .unwrap();
    assert!(ui.text("#step-detail").await.contains("architect"));
    ui.shot("08-run-timeline").await;
    let old = ui.hash().await;
    ui.el("#cancel").await.click().await.unwrap();
    ui.until_text("#run-status", "cancelled", |t| t.contains("cancelled"))
        .await;
    ui.el("#replay-start").await.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ui.hash().await == old {
        assert!(Instant::now() < deadline, "the replay did not open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ui.until_text("#run-status", "the replay waiting for review", |t| {
        t.contains("waiting")
    })
    .await;
    assert!(ui.text("#app").await.contains("replay of"));
    ui.shot("09-replay").await;
    ui.no_js_errors("the run page").await;

    // Functions, and a test event (bad JSON first).
    ui.go("#/functions").await;
    let table = ui.text("#functions").await;
    assert!(
        table.contains("process-document") && table.contains("5 per event.data.userId"),
        "{table}"
    );
    ui.shot("10-functions").await;
    ui.go("#/runs").await;
    ui.el("#event-name").await.send_keys("app/test").await.unwrap();
    let data = ui.el("#event-data").await;
    data.clear().await.unwrap();
    data.send_keys("{bad").await.unwrap();
    ui.el("#send-event button").await.click().await.unwrap();
    assert!(ui.text("#event-message .error").await.contains("not valid JSON"));
    data.clear().await.unwrap();
    data.send_keys("{\"hello\": 1}").await.unwrap();
    ui.el("#send-event button").await.click().await.unwrap();
    assert!(ui
        .until_text("#event-message", "a receipt", |t| t.contains("Sent"))
        .await
        .contains("Sent"));
    ui.no_js_errors("the runs page").await;

    // Signing out ends the session.
    ui.el("#logout").await.click().await.unwrap();
    ui.el("#login-form").await;
    let me: Value =
        ui.c.execute("return fetch('/api/me').then(r => r.status)", vec![])
            .await
            .unwrap();
    assert_eq!(me, json!(401));
    ui.c.close().await.unwrap();
}
