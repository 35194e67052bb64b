//! all-MiniLM-L6-v2 sentence embeddings from an int8 ONNX export, run on the CPU by
//! onnxruntime (a shared library loaded at run time through the `ort` crate).
//!
//! Compared with the fp32 candle model ([`super::MiniLmEmbedder`]) on 2 cores: about 2 times
//! the throughput on ~800-character chunks (about 40 against 18–20 chunks/s) and nearly 4 times
//! on single short sentences, with nearly the same vectors (cosine 0.999 or more to fp32). The
//! vectors still differ, so they carry their own model id and must not be mixed with fp32 ones.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use ort::environment::Environment;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use tokenizers::Tokenizer;

use super::error::{ONNX_MODEL_ENV, ORT_DYLIB_ENV};
use super::minilm::load_tokenizer;
use super::store::OnnxFiles;
use super::{embed_in_batches, l2_normalize, EmbedError, Embedder, MINILM_DIMENSIONS};

/// The model id stored with int8 ONNX MiniLM vectors (never mixed with fp32 "minilm-l6-v2").
pub const ONNX_MINILM_MODEL_ID: &str = "minilm-l6-v2-int8";
/// How many texts go through onnxruntime in one run. Small batches of similar length were
/// about 10–15% faster than 32 for ~800-character chunks on 2 cores (cache-friendlier).
pub const ONNX_MINILM_BATCH_SIZE: usize = 8;

/// The onnxruntime environment: one per process, created by the first successful load and
/// shared by every session after it. onnxruntime can be loaded from only one library file per
/// process, so `path` is the one every later load uses.
struct OrtRuntime {
    path: PathBuf,
    env: Environment,
}

static ORT_RUNTIME: OnceLock<OrtRuntime> = OnceLock::new();
/// Serialises the first initialisation (a failed attempt leaves [`ORT_RUNTIME`] empty, so a
/// later call with a good path can still succeed).
static ORT_INIT: Mutex<()> = Mutex::new(());

/// Returns the process's onnxruntime environment, loading the library at `dylib` the first time.
fn ort_runtime(dylib: &Path) -> Result<&'static OrtRuntime, EmbedError> {
    let runtime = match ORT_RUNTIME.get() {
        Some(runtime) => runtime,
        None => {
            let _guard = ORT_INIT.lock().unwrap_or_else(PoisonError::into_inner);
            match ORT_RUNTIME.get() {
                Some(runtime) => runtime,
                None => {
                    let unusable = |detail: String| EmbedError::OnnxFileUnavailable {
                        path: dylib.to_path_buf(),
                        env_var: ORT_DYLIB_ENV,
                        detail,
                    };
                    let builder = ort::init_from(dylib)
                        .map_err(|e| unusable(format!("onnxruntime cannot be loaded from it: {e}")))?;
                    let env = builder
                        .with_name("learnflow")
                        .with_telemetry(false)
                        .build()
                        .map_err(|e| unusable(format!("the onnxruntime environment failed: {e}")))?;
                    tracing::debug!(library = %dylib.display(), "onnxruntime loaded");
                    ORT_RUNTIME.get_or_init(|| OrtRuntime {
                        path: dylib.to_path_buf(),
                        env,
                    })
                }
            }
        }
    };
    if !same_file(&runtime.path, dylib) {
        tracing::warn!(
            loaded = %runtime.path.display(),
            requested = %dylib.display(),
            "onnxruntime is already loaded in this process from another file; using that one"
        );
    }
    Ok(runtime)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The int8 all-MiniLM-L6-v2 sentence embedder run by onnxruntime (384 dimensions, mean
/// pooling, L2-normalised).
///
/// Tokenisation is the same as [`super::MiniLmEmbedder`]'s (padding to the longest text of each
/// batch, truncation at [`super::MINILM_MAX_TOKENS`], pooling over the attention mask). Texts are
/// sorted by length and run [`ONNX_MINILM_BATCH_SIZE`] at a time in
/// `tokio::task::spawn_blocking` (so it needs a Tokio runtime), with as many intra-op threads
/// as the machine has cores. Cloning is cheap: the session sits behind an `Arc`, and runs
/// of one embedder are serialised. Results are deterministic and do not depend on how texts
/// are batched (up to float rounding).
#[derive(Clone)]
pub struct OnnxMiniLmEmbedder {
    inner: Arc<Inner>,
}

struct Inner {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    /// Whether the model takes a `token_type_ids` input (all zeros for single texts).
    takes_type_ids: bool,
    output_name: String,
}

impl std::fmt::Debug for OnnxMiniLmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxMiniLmEmbedder")
            .field("model_id", &ONNX_MINILM_MODEL_ID)
            .field("output", &self.inner.output_name)
            .finish_non_exhaustive()
    }
}

impl OnnxMiniLmEmbedder {
    /// Loads the int8 model `model_onnx` with the MiniLM `tokenizer_json`, running it on the
    /// onnxruntime library `ort_dylib` (ONNX Runtime 1.24 or newer).
    ///
    /// The library is loaded once per process, by the first successful call; later calls reuse
    /// it (a different `ort_dylib` is then only logged). This reads the files only; it does
    /// not check their checksums (use [`super::ModelStore::ensure_onnx_minilm`] for that). It
    /// is blocking (about 0.1–0.5 s); call it from `spawn_blocking` inside async code if that
    /// matters.
    pub fn load(model_onnx: &Path, tokenizer_json: &Path, ort_dylib: &Path) -> Result<Self, EmbedError> {
        if !ort_dylib.is_file() {
            return Err(EmbedError::OnnxFileUnavailable {
                path: ort_dylib.to_path_buf(),
                env_var: ORT_DYLIB_ENV,
                detail: "the onnxruntime library does not exist".into(),
            });
        }
        if !model_onnx.is_file() {
            return Err(EmbedError::OnnxFileUnavailable {
                path: model_onnx.to_path_buf(),
                env_var: ONNX_MODEL_ENV,
                detail: "the int8 MiniLM model does not exist".into(),
            });
        }
        if !tokenizer_json.is_file() {
            return Err(EmbedError::ModelFilesMissing {
                path: tokenizer_json.to_path_buf(),
                detail: "the MiniLM tokenizer.json does not exist".into(),
            });
        }
        let runtime = ort_runtime(ort_dylib)?;
        let tokenizer = load_tokenizer(tokenizer_json)?;

        let model_unusable = |detail: String| EmbedError::OnnxFileUnavailable {
            path: model_onnx.to_path_buf(),
            env_var: ONNX_MODEL_ENV,
            detail,
        };
        let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let session = Session::builder(&runtime.env)
            .map_err(|e| model_unusable(format!("cannot create an onnxruntime session: {e}")))?
            .with_intra_threads(threads)
            .map_err(|e| model_unusable(format!("cannot set {threads} intra-op threads: {e}")))?
            .commit_from_file(model_onnx)
            .map_err(|e| model_unusable(format!("onnxruntime cannot load it: {e}")))?;

        let input_names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in ["input_ids", "attention_mask"] {
            if !input_names.contains(&required) {
                return Err(model_unusable(format!(
                    "the model has no `{required}` input (its inputs: {input_names:?})"
                )));
            }
        }
        if let Some(other) = input_names
            .iter()
            .find(|n| !["input_ids", "attention_mask", "token_type_ids"].contains(n))
        {
            return Err(model_unusable(format!(
                "the model wants an unexpected input `{other}`"
            )));
        }
        let takes_type_ids = input_names.contains(&"token_type_ids");
        let output_names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        let output_name = match output_names.iter().find(|n| **n == "last_hidden_state") {
            Some(name) => (*name).to_string(),
            None => match output_names.first() {
                Some(name) => (*name).to_string(),
                None => return Err(model_unusable("the model has no outputs".into())),
            },
        };

        Ok(OnnxMiniLmEmbedder {
            inner: Arc::new(Inner {
                session: Mutex::new(session),
                tokenizer,
                takes_type_ids,
                output_name,
            }),
        })
    }

    /// [`OnnxMiniLmEmbedder::load`] with the files resolved by
    /// [`super::ModelStore::ensure_onnx_minilm`].
    pub fn from_files(files: &OnnxFiles) -> Result<Self, EmbedError> {
        Self::load(&files.model, &files.tokenizer, &files.runtime)
    }
}

fn inference(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Inference(e.to_string())
}

impl Inner {
    /// Tokenises and embeds one batch; returns one normalised vector per text.
    fn embed_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self.tokenizer.encode_batch(texts, true).map_err(inference)?;
        let batch = encodings.len();
        let seq = encodings.first().map_or(0, |e| e.get_ids().len());
        if batch == 0 || seq == 0 {
            return Err(EmbedError::Inference("the tokenizer produced no tokens".into()));
        }
        let mut ids = Vec::with_capacity(batch * seq);
        let mut mask = Vec::with_capacity(batch * seq);
        for enc in &encodings {
            if enc.get_ids().len() != seq {
                return Err(EmbedError::Inference(
                    "batch encodings have different lengths".into(),
                ));
            }
            ids.extend(enc.get_ids().iter().map(|&x| i64::from(x)));
            mask.extend(enc.get_attention_mask().iter().map(|&x| i64::from(x)));
        }

        let tensor = |data: Vec<i64>| -> Result<SessionInputValue<'static>, EmbedError> {
            Ok(Tensor::from_array(([batch, seq], data))
                .map_err(inference)?
                .into())
        };
        let mut inputs = vec![
            ("input_ids", tensor(ids)?),
            ("attention_mask", tensor(mask.clone())?),
        ];
        if self.takes_type_ids {
            inputs.push(("token_type_ids", tensor(vec![0; batch * seq])?));
        }

        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(inputs).map_err(inference)?;
        let hidden = outputs.get(&self.output_name).ok_or_else(|| {
            EmbedError::Inference(format!("the model returned no `{}` output", self.output_name))
        })?;
        let (shape, data) = hidden.try_extract_tensor::<f32>().map_err(inference)?;
        let expected = [batch as i64, seq as i64, MINILM_DIMENSIONS as i64];
        if shape[..] != expected[..] || data.len() != batch * seq * MINILM_DIMENSIONS {
            return Err(EmbedError::Inference(format!(
                "the model returned shape {shape}, expected {expected:?}"
            )));
        }

        // Mean over the real tokens (attention mask 1), then L2-normalise.
        let vectors = data
            .chunks_exact(seq * MINILM_DIMENSIONS)
            .zip(mask.chunks_exact(seq))
            .map(|(rows, row_mask)| {
                let mut sum = vec![0.0f32; MINILM_DIMENSIONS];
                let mut count = 0.0f32;
                for (row, &m) in rows.chunks_exact(MINILM_DIMENSIONS).zip(row_mask) {
                    if m != 0 {
                        count += 1.0;
                        for (s, x) in sum.iter_mut().zip(row) {
                            *s += x;
                        }
                    }
                }
                let count = count.max(1e-9);
                for s in &mut sum {
                    *s /= count;
                }
                l2_normalize(&mut sum);
                sum
            })
            .collect();
        Ok(vectors)
    }
}

#[async_trait::async_trait]
impl Embedder for OnnxMiniLmEmbedder {
    fn model_id(&self) -> &str {
        ONNX_MINILM_MODEL_ID
    }

    fn dimensions(&self) -> usize {
        MINILM_DIMENSIONS
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inner = Arc::clone(&self.inner);
        embed_in_batches(texts, ONNX_MINILM_BATCH_SIZE, move |batch| {
            inner.embed_batch(batch)
        })
        .await
    }
}
