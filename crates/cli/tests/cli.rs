//! The binary's contract: exit codes and clear errors for bad input, and the demo
//! and run verbs working end to end on a fresh data directory.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_learnflow");

fn learnflow(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("LEARNFLOW_CONFIG")
        .output()
        .expect("learnflow runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_usage_and_bad_input_exit_with_2_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["demo", "--runs", "0"], "--runs must be between 1 and 100000"),
        (&["--sqlite-durability", "fast", "demo"], "'full' or 'normal'"),
        (
            &["--database-url", "mysql://db", "demo"],
            "unsupported database URL",
        ),
        (&["runs", "show", "01NOSUCHRUN"], "run '01NOSUCHRUN' not found"),
        (
            &["runs", "list", "--status", "paused"],
            "unknown run status 'paused'",
        ),
        (&["bench", "engine", "--steps", "0"], "must be at least 1"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, expected) in cases {
        let out = learnflow(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: expected '{expected}' in {}",
            stderr(&out)
        );
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "data_dir = [1, 2]\n").unwrap();
    let out = learnflow(dir.path(), &["--config", bad.to_str().unwrap(), "demo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid config file"), "{}", stderr(&out));
}

#[test]
fn the_demo_runs_a_durable_pipeline_and_the_run_verbs_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = learnflow(
        dir.path(),
        &["demo", "--step-ms", "5", "--sleep-ms", "50", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json_end = stdout.rfind(']').expect("JSON journal printed");
    let details: serde_json::Value = serde_json::from_str(&stdout[..=json_end]).unwrap();
    let run = &details[0];
    assert_eq!(run["run"]["status"], "completed");
    assert_eq!(
        run["run"]["output"],
        serde_json::json!({ "pages": 3, "concepts": 24 })
    );
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "extract",
            "analyze-1",
            "analyze-2",
            "analyze-3",
            "cool-down",
            "summarize"
        ]
    );
    let summarize = &run["steps"][5];
    assert_eq!(
        summarize["attempts"].as_array().unwrap().len(),
        2,
        "the first attempt failed and was retried"
    );
    assert!(stdout.contains("1 run(s): 1 completed"));

    let id = run["run"]["id"].as_str().unwrap();
    let out = learnflow(dir.path(), &["runs", "list", "--function", "demo-pipeline"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(id));
    let out = learnflow(dir.path(), &["runs", "show", id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("completed") && text.contains("cool-down") && text.contains("RetryAfterError"),
        "{text}"
    );
    let out = learnflow(dir.path(), &["runs", "cancel", id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("it is completed"), "{}", stderr(&out));
    let out = learnflow(dir.path(), &["runs", "replay", id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot replay"), "{}", stderr(&out));
}
