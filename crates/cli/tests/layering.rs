//! The core knows nothing of its edges: the engine crate must not depend on HTTP,
//! SQL or AI crates, nor on any other LearnFlow crate.

use std::process::Command;

#[test]
fn the_engine_depends_on_no_http_sql_or_ai_crate() {
    let names = tree("learnflow-engine");
    assert!(names.iter().any(|n| n == "tokio"), "the tree was read: {names:?}");
    for banned in [
        "axum",
        "hyper",
        "reqwest",
        "sqlx",
        "rusqlite",
        "libsqlite3-sys",
        "tokio-postgres",
        "postgres",
        "learnflow-store-sqlite",
        "learnflow-ai",
        "learnflow-ingest",
        "learnflow-pipeline",
        "learnflow-server",
    ] {
        assert!(
            !names.iter().any(|n| n == banned),
            "learnflow-engine depends on {banned}"
        );
    }
}

fn tree(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-e",
            "normal",
            "-p",
            package,
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn ai_and_ingest_do_not_depend_on_the_engine() {
    for package in ["learnflow-ai", "learnflow-ingest"] {
        let names = tree(package);
        assert!(
            names.iter().any(|n| n == package),
            "the tree of {package} was read"
        );
        for banned in ["learnflow-engine", "learnflow-pipeline", "learnflow-store-sqlite"] {
            assert!(
                !names.iter().any(|n| n == banned),
                "{package} depends on {banned}"
            );
        }
    }
}
