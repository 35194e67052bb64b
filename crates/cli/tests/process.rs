//! `learnflow process` and `learnflow ask` as a user runs them: study packs from a PDF
//! and a scan, clear errors for bad files, and a run that resumes after SIGKILL or
//! Ctrl-C without redoing recorded steps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use learnflow_ai::testing::fake_openai::{FakeConfig, FakeOpenAi};
use learnflow_engine::store::RunStore;
use learnflow_engine::{RunFilter, StepStatus};
use learnflow_store_sqlite::SqliteStore;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_learnflow");
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/photosynthesis.md");

fn learnflow(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir);
    for var in [
        "DATABASE_URL",
        "LEARNFLOW_CONFIG",
        "LEARNFLOW_PROVIDER",
        "OPENAI_API_KEY",
    ] {
        c.env_remove(var);
    }
    // The hash embedder keeps these tests offline and fast; MiniLM has its own tests.
    c.env("LEARNFLOW_EMBEDDER", "hash");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    learnflow(dir).args(args).output().expect("learnflow runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn paragraphs() -> Vec<String> {
    std::fs::read_to_string(SAMPLE)
        .unwrap()
        .split("\n\n")
        .map(|p| p.trim_start_matches('#').trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn a_pdf_becomes_a_study_pack_and_questions_get_cited_answers() {
    let dir = tempfile::tempdir().unwrap();
    let pages = learnflow_ingest::fixtures::paginate(&paragraphs());
    let pdf = dir.path().join("bio.pdf");
    std::fs::write(
        &pdf,
        learnflow_ingest::fixtures::text_pdf(&pages, Some("Cells and Photosynthesis")),
    )
    .unwrap();
    let out_dir = dir.path().join("pack");
    let out = run(
        dir.path(),
        &[
            "process",
            pdf.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("{} pages", pages.len())), "{stdout}");
    let md = std::fs::read_to_string(out_dir.join("study-pack.md")).unwrap();
    for section in [
        "## Summary",
        "## Quiz",
        "## Flashcards",
        "## Glossary",
        "## Quiz answer key",
    ] {
        assert!(md.contains(section), "{section} missing from the pack");
    }
    assert!(md.contains("(p. 1)"), "materials cite pages");
    let pack: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("study-pack.json")).unwrap()).unwrap();
    assert_eq!(pack["document"]["kind"], "pdf");
    let anki = std::fs::read_to_string(out_dir.join("anki-deck.txt")).unwrap();
    assert!(anki.starts_with("#separator:tab"));
    assert!(anki.lines().filter(|l| l.starts_with("Basic\t")).count() >= 5);

    let out = run(
        dir.path(),
        &["ask", pdf.to_str().unwrap(), "What is the Calvin cycle?"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer = text(&out.stdout);
    assert!(
        answer.contains("Calvin cycle") && answer.contains("[p. "),
        "{answer}"
    );
    let out = run(dir.path(), &["ask", pdf.to_str().unwrap(), "   "]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the question is empty"));

    // Processing the same file again reuses the finished run.
    let again = run(
        dir.path(),
        &[
            "process",
            pdf.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(again.status.success());
    assert!(
        text(&again.stderr).contains("resuming"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn a_scanned_page_is_read_by_ocr() {
    let dir = tempfile::tempdir().unwrap();
    let pages = learnflow_ingest::fixtures::paginate(&paragraphs());
    let scan = dir.path().join("scan.pdf");
    std::fs::write(
        &scan,
        learnflow_ingest::fixtures::scanned_pdf(&pages[..1], 300).unwrap(),
    )
    .unwrap();
    let out_dir = dir.path().join("pack");
    let out = run(
        dir.path(),
        &[
            "process",
            scan.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = std::fs::read_to_string(out_dir.join("study-pack.md")).unwrap();
    assert!(md.contains("cell"), "the OCR'd text made it into the pack");
    assert!(md.contains("## Flashcards"));
}

#[test]
fn bad_files_get_a_clear_error_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pdf");
    std::fs::write(&empty, b"").unwrap();
    let broken = dir.path().join("broken.pdf");
    std::fs::write(&broken, b"%PDF-1.7\n% nothing useful here\n").unwrap();
    let cases = [
        (empty.to_str().unwrap().to_string(), "empty"),
        (broken.to_str().unwrap().to_string(), "pdf"),
        (
            dir.path().join("missing.pdf").to_str().unwrap().to_string(),
            "cannot read",
        ),
    ];
    for (file, expected) in &cases {
        let out = run(dir.path(), &["process", file]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).to_lowercase().contains(expected),
            "{file}: {}",
            text(&out.stderr)
        );
    }
    let out = run(dir.path(), &["process", SAMPLE, "--provider", "gpt"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(dir.path(), &["process", SAMPLE, "--provider", "openai"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "openai without configuration is a usage error"
    );
}

fn spawn_process(dir: &Path, fake: &FakeOpenAi, out_dir: &Path) -> Child {
    learnflow(dir)
        .args(["process", SAMPLE, "--provider", "openai", "--out"])
        .arg(out_dir)
        .env("LEARNFLOW_OPENAI_BASE_URL", &fake.base_url)
        .env("LEARNFLOW_OPENAI_MODEL", "fake-model")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("learnflow starts")
}

/// Requests the fake received, per JSON Schema name (architect = `plan`).
fn requests_by_task(fake: &FakeOpenAi) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in fake.requests() {
        if let Some(name) = r
            .pointer("/response_format/json_schema/name")
            .and_then(Value::as_str)
        {
            *out.entry(name.to_string()).or_default() += 1;
        }
    }
    out
}

/// Completed steps of the document's run, read from the database after the kill.
async fn completed_steps(db: &Path) -> Vec<String> {
    let store = SqliteStore::open(db).unwrap();
    let page = store
        .list_runs(&RunFilter {
            function_id: Some("process-document".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let Some(run) = page.runs.first() else {
        return Vec::new();
    };
    let detail = store.get_run(&run.id).await.unwrap().unwrap();
    detail
        .steps
        .into_iter()
        .filter(|s| s.status == StepStatus::Completed)
        .map(|s| s.step_id)
        .collect()
}

fn schema_of(step: &str) -> String {
    match step {
        "architect" => "plan".into(),
        s => s.trim_start_matches("agent-").replace('-', "_"),
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never saw: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_process_and_running_it_again_resumes_without_redoing_steps() {
    let fake = FakeOpenAi::start(FakeConfig {
        chat_delay: Duration::from_millis(400),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("learnflow.db");
    let out_dir: PathBuf = dir.path().join("pack");

    // SIGKILL while the agents run (the architect is recorded by then).
    let mut child = spawn_process(dir.path(), &fake, &out_dir);
    wait_until("agents in flight", || {
        let r = requests_by_task(&fake);
        r.contains_key("plan") && r.len() >= 4
    })
    .await;
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    let recorded = completed_steps(&db).await;
    assert!(recorded.contains(&"architect".to_string()), "{recorded:?}");
    let before = requests_by_task(&fake);

    // Ctrl-C while it resumes: it stops cleanly with exit code 130.
    let child = spawn_process(dir.path(), &fake, &out_dir);
    let pid = child.id().to_string();
    let seen = fake.requests().len();
    wait_until("the resumed run at work", || fake.requests().len() > seen).await;
    let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "Ctrl-C exits with 130");
    let recorded_after_int = completed_steps(&db).await;
    let before_int = requests_by_task(&fake);

    // Finally it completes.
    let out = spawn_process(dir.path(), &fake, &out_dir)
        .wait_with_output()
        .unwrap();
    assert!(out.status.success());
    assert!(out_dir.join("study-pack.md").exists());
    let after = requests_by_task(&fake);
    assert_eq!(
        after.get("plan"),
        Some(&1),
        "the recorded architect step never ran again"
    );
    for (snapshot, counts) in [(&recorded, &before), (&recorded_after_int, &before_int)] {
        for step in snapshot.iter().filter(|s| s.starts_with("agent-")) {
            let name = schema_of(step);
            assert_eq!(
                after.get(&name),
                counts.get(&name),
                "{step} was recorded before the interruption and was requested again"
            );
        }
    }
    assert_eq!(after.len(), 16, "the architect and all 15 agents ran: {after:?}");
    assert!(
        after.values().all(|n| *n <= 3),
        "no step ran more than once per process lifetime: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_process_again_after_a_failure_replays_from_the_failed_step() {
    let broken = FakeOpenAi::start(FakeConfig {
        fail_schemas: vec![("plan".into(), 400)],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("pack");
    let out = spawn_process(dir.path(), &broken, &out_dir)
        .wait_with_output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a provider failure is a failed job, not bad input"
    );

    let working = FakeOpenAi::start(FakeConfig::default()).await.unwrap();
    let mut child = learnflow(dir.path());
    child
        .args(["process", SAMPLE, "--provider", "openai", "--out"])
        .arg(&out_dir)
        .env("LEARNFLOW_OPENAI_BASE_URL", &working.base_url)
        .env("LEARNFLOW_OPENAI_MODEL", "fake-model");
    let out = child.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("replaying it from the failed step"),
        "{}",
        text(&out.stderr)
    );
    assert!(out_dir.join("study-pack.md").exists());

    let store = SqliteStore::open(dir.path().join("learnflow.db")).unwrap();
    let runs = store
        .list_runs(&RunFilter {
            function_id: Some("process-document".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .runs;
    assert_eq!(runs.len(), 2);
    let (replay, first) = (&runs[0], &runs[1]);
    assert_eq!(replay.replay_of.as_ref(), Some(&first.id));
    let first_steps = store.get_run(&first.id).await.unwrap().unwrap().steps;
    let replay_steps = store.get_run(&replay.id).await.unwrap().unwrap().steps;
    let extract =
        |steps: &[learnflow_engine::StepRecord]| steps.iter().find(|s| s.step_id == "extract").cloned();
    assert_eq!(
        extract(&replay_steps).map(|s| s.started_at),
        extract(&first_steps).map(|s| s.started_at),
        "extract was reused, not run again"
    );
    assert!(!replay_steps.iter().any(|s| s.step_id == "mark-failed"));
}
