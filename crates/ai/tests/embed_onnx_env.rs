//! The ONNX embedder's environment variables, read by `ModelStore::new`. Needs neither the
//! model nor the network.
//!
//! This file is its own test process with a single test, so setting variables cannot race
//! with other tests.

use learnflow_ai::embed::{
    EmbedError, ModelStore, OnnxMiniLmEmbedder, FETCH_COMMAND, ONNX_MODEL_ENV, ORT_DYLIB_ENV,
};

#[tokio::test]
async fn missing_files_named_by_the_env_vars_give_clear_errors_and_nothing_is_downloaded() {
    let models = tempfile::tempdir().unwrap();
    let missing_lib = models.path().join("no-such-dir/libonnxruntime.so");
    let missing_model = models.path().join("no-such-dir/model.onnx");

    // A missing library in LEARNFLOW_ORT_DYLIB.
    std::env::set_var(ORT_DYLIB_ENV, &missing_lib);
    std::env::remove_var(ONNX_MODEL_ENV);
    let err = ModelStore::new(models.path())
        .ensure_onnx_minilm()
        .await
        .unwrap_err();
    match &err {
        EmbedError::OnnxFileUnavailable { path, env_var, .. } => {
            assert_eq!(path, &missing_lib);
            assert_eq!(*env_var, ORT_DYLIB_ENV);
        }
        other => panic!("expected OnnxFileUnavailable, got {other:?}"),
    }
    let text = err.to_string();
    eprintln!("missing-library error as shown to users: {text}");
    assert!(
        text.contains(ORT_DYLIB_ENV) && text.contains(FETCH_COMMAND),
        "{text}"
    );
    assert!(text.contains(&missing_lib.display().to_string()), "{text}");
    assert!(!err.is_transient());

    // A missing model in LEARNFLOW_EMBED_ONNX_MODEL.
    std::env::remove_var(ORT_DYLIB_ENV);
    std::env::set_var(ONNX_MODEL_ENV, &missing_model);
    let err = ModelStore::new(models.path())
        .ensure_onnx_minilm()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EmbedError::OnnxFileUnavailable { path, env_var, .. } if path == &missing_model && *env_var == ONNX_MODEL_ENV),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(ONNX_MODEL_ENV) && text.contains(FETCH_COMMAND),
        "{text}"
    );

    // Empty variables are ignored, like LEARNFLOW_EMBED_MODEL_DIR.
    std::env::set_var(ORT_DYLIB_ENV, "");
    std::env::set_var(ONNX_MODEL_ENV, "");
    let store = ModelStore::new(models.path());
    assert!(
        format!("{store:?}").contains("ort_dylib_override: None"),
        "{store:?}"
    );

    // Nothing was downloaded into the models folder.
    assert_eq!(std::fs::read_dir(models.path()).unwrap().count(), 0);

    // The embedder itself reports a missing library the same way.
    let tokenizer = models.path().join("tokenizer.json");
    std::fs::write(&tokenizer, b"{}").unwrap();
    let model = models.path().join("model.onnx");
    std::fs::write(&model, b"x").unwrap();
    let err = OnnxMiniLmEmbedder::load(&model, &tokenizer, &missing_lib).unwrap_err();
    assert!(
        matches!(&err, EmbedError::OnnxFileUnavailable { path, env_var, .. } if path == &missing_lib && *env_var == ORT_DYLIB_ENV),
        "{err:?}"
    );
    assert!(err.to_string().contains(ORT_DYLIB_ENV));

    // A file that is not a shared library is refused when onnxruntime is first loaded.
    let not_a_lib = models.path().join("libonnxruntime.so");
    std::fs::write(&not_a_lib, b"not a library").unwrap();
    let err = OnnxMiniLmEmbedder::load(&model, &tokenizer, &not_a_lib).unwrap_err();
    assert!(
        matches!(&err, EmbedError::OnnxFileUnavailable { path, env_var, .. } if path == &not_a_lib && *env_var == ORT_DYLIB_ENV),
        "{err:?}"
    );
    eprintln!("bad-library error as shown to users: {err}");
}
