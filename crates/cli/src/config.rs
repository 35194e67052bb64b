//! One [`Config`] for the whole binary: flags override `LEARNFLOW_*` environment
//! variables, which override the TOML file given with `--config`, which overrides the
//! defaults.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use learnflow_store_sqlite::Durability;
use serde::Deserialize;

/// The settings every command shares.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Holds the SQLite database, blobs and model caches.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` (default: `DATA_DIR/learnflow.db`) or `postgres://…`.
    pub database_url: Option<String>,
    /// Connections each PostgreSQL pool keeps (store, library, server tables).
    pub pg_pool_size: usize,
    /// The engine's timing.
    pub engine: EngineSection,
    /// Where uploaded files go: `file:///path` or `s3://bucket/prefix` (default: DATA_DIR/blobs).
    pub blob_url: Option<String>,
    /// SQLite commit durability.
    pub sqlite_durability: Durability,
    /// Language models and embeddings.
    pub ai: AiConfig,
    /// Extraction.
    pub ingest: IngestConfig,
    /// How long a run under review waits for `plan.approved`.
    pub review_timeout: std::time::Duration,
    /// `learnflow serve` settings.
    pub server: ServerSection,
}

/// `[engine]`: leases and polling, which matter when several nodes share a database.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// How long a node's claim on a run lasts without a heartbeat: a killed node's runs
    /// are taken over by the others this long after its last heartbeat (env
    /// `LEARNFLOW_LEASE_TTL_SECS`; heartbeats every sixth of it).
    pub lease_ttl_secs: u64,
    /// How often a node looks for work queued by other nodes, in milliseconds (env
    /// `LEARNFLOW_POLL_MS`).
    pub poll_ms: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            lease_ttl_secs: 30,
            poll_ms: 1000,
        }
    }
}

/// Where the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

/// `[server]`: the HTTP API.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on (env `LEARNFLOW_LISTEN`).
    pub listen: String,
    /// Requests per second per user (env `LEARNFLOW_RATE_LIMIT`).
    pub rate_limit: f64,
    /// Burst above the rate (env `LEARNFLOW_RATE_BURST`).
    pub rate_burst: u32,
    /// Seconds running steps may go on after SIGTERM (env `LEARNFLOW_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace_secs: u64,
    /// First webhook retry delay in milliseconds, doubling (env `LEARNFLOW_WEBHOOK_BACKOFF_MS`).
    pub webhook_backoff_ms: u64,
    /// Retries per webhook delivery (env `LEARNFLOW_WEBHOOK_RETRIES`).
    pub webhook_retries: u32,
    /// Whether webhooks may target loopback/private addresses (env `LEARNFLOW_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// Serve Inngest SDK apps in dev mode: `/fn/register`, `/e/{key}` and `/dev` accept
    /// any caller, like `inngest dev` (env `LEARNFLOW_INNGEST_DEV`).
    pub inngest_dev: bool,
    /// Serve Inngest SDK apps in cloud mode: calls are signed with this key
    /// (`signkey-<env>-<hex>`), answers verified, syncs need its bearer token (env
    /// `LEARNFLOW_INNGEST_SIGNING_KEY`).
    pub inngest_signing_key: Option<String>,
    /// Event keys `/e/{key}` accepts, comma-separated in the environment (env
    /// `LEARNFLOW_INNGEST_EVENT_KEYS`).
    pub inngest_event_keys: Vec<String>,
    /// Every this many seconds, synced Inngest apps are re-read from the database (syncs
    /// made through other nodes) and asked whether they still answer (env
    /// `LEARNFLOW_INNGEST_CHECK_SECS`).
    pub inngest_check_secs: u64,
    /// The first wait before a failed step of an Inngest SDK function is tried again,
    /// doubling up to 2 h, as Inngest does (env `LEARNFLOW_INNGEST_RETRY_BASE_MS`).
    pub inngest_retry_base_ms: u64,
    /// Most calls in flight to one Inngest app (0: no limit); more wait their turn
    /// (env `LEARNFLOW_INNGEST_MAX_CALLS_PER_APP`).
    pub inngest_max_calls_per_app: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:7878".into(),
            rate_limit: 50.0,
            rate_burst: 100,
            shutdown_grace_secs: 10,
            webhook_backoff_ms: 2_000,
            webhook_retries: 8,
            webhook_allow_private: true,
            inngest_dev: false,
            inngest_signing_key: None,
            inngest_event_keys: Vec::new(),
            inngest_check_secs: 10,
            inngest_retry_base_ms: 15_000,
            inngest_max_calls_per_app: 0,
        }
    }
}

/// Language-model and embedding settings (`[ai]` in the file, `LEARNFLOW_*` in the
/// environment).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// `local` (offline, the default) or `openai`.
    pub provider: String,
    /// OpenAI-compatible base URL, up to `/v1`.
    pub openai_base_url: String,
    /// Its API key (empty for servers without one; also read from `OPENAI_API_KEY`).
    pub openai_api_key: String,
    /// Its chat model.
    pub openai_model: String,
    /// Per-request timeout, seconds.
    pub openai_timeout_secs: u64,
    /// Price per million prompt tokens, US dollars (enables cost figures).
    pub price_input_per_million: Option<f64>,
    /// Price per million generated tokens.
    pub price_output_per_million: Option<f64>,
    /// `auto` (MiniLM int8, else MiniLM fp32, else the hash embedder when no model can be
    /// had), `minilm-int8`, `minilm`, `hash` or `openai`.
    pub embedder: String,
    /// Embedding model of the OpenAI-compatible endpoint.
    pub embed_model: String,
    /// Embeddings base URL (default: `openai_base_url`).
    pub embed_base_url: Option<String>,
    /// Where model files are cached (default: `DATA_DIR/models`).
    pub models_dir: Option<PathBuf>,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            provider: "local".into(),
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_api_key: String::new(),
            openai_model: "gpt-4o-mini".into(),
            openai_timeout_secs: 120,
            price_input_per_million: None,
            price_output_per_million: None,
            embedder: "auto".into(),
            embed_model: "text-embedding-3-small".into(),
            embed_base_url: None,
            models_dir: None,
        }
    }
}

/// Extraction settings (`[ingest]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Tesseract language(s), such as `eng` or `eng+fra`.
    pub ocr_language: String,
    /// Largest upload, MiB.
    pub max_file_mb: u64,
    /// Most pages.
    pub max_pages: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            ocr_language: "eng".into(),
            max_file_mb: 50,
            max_pages: 500,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PipelineFile {
    review_timeout: Option<String>,
}

/// The TOML file's shape (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    pg_pool_size: Option<usize>,
    blob_url: Option<String>,
    sqlite_durability: Option<String>,
    #[serde(default)]
    engine: Option<EngineSection>,
    #[serde(default)]
    ai: Option<AiConfig>,
    #[serde(default)]
    ingest: Option<IngestConfig>,
    #[serde(default)]
    pipeline: PipelineFile,
    #[serde(default)]
    server: Option<ServerSection>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_parse<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("environment variable {name}={v:?} is not a valid value")),
    }
}

/// Values from flags and the environment (clap fills both).
#[derive(Debug, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub sqlite_durability: Option<String>,
}

fn parse_durability(s: &str) -> anyhow::Result<Durability> {
    match s.to_ascii_lowercase().as_str() {
        "full" => Ok(Durability::Full),
        "normal" => Ok(Durability::Normal),
        other => bail!("sqlite durability must be 'full' or 'normal', not '{other}'"),
    }
}

impl Config {
    /// Layers the file (if any), then `over`, on the defaults.
    pub fn load(file: Option<&Path>, over: Overrides) -> anyhow::Result<Config> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let durability = over
            .sqlite_durability
            .or(from_file.sqlite_durability)
            .map(|s| parse_durability(&s))
            .transpose()?
            .unwrap_or_default();
        let mut ai = from_file.ai.unwrap_or_default();
        if let Some(v) = env("LEARNFLOW_PROVIDER") {
            ai.provider = v;
        }
        if let Some(v) = env("LEARNFLOW_OPENAI_BASE_URL") {
            ai.openai_base_url = v;
        }
        if let Some(v) = env("LEARNFLOW_OPENAI_API_KEY").or_else(|| env("OPENAI_API_KEY")) {
            ai.openai_api_key = v;
        }
        if let Some(v) = env("LEARNFLOW_OPENAI_MODEL") {
            ai.openai_model = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_OPENAI_TIMEOUT_SECS")? {
            ai.openai_timeout_secs = v;
        }
        if let Some(v) = env("LEARNFLOW_EMBEDDER") {
            ai.embedder = v;
        }
        if let Some(v) = env("LEARNFLOW_EMBED_MODEL") {
            ai.embed_model = v;
        }
        if let Some(v) = env("LEARNFLOW_EMBED_BASE_URL") {
            ai.embed_base_url = Some(v);
        }
        if let Some(v) = env("LEARNFLOW_MODELS_DIR") {
            ai.models_dir = Some(PathBuf::from(v));
        }
        if !["local", "openai"].contains(&ai.provider.as_str()) {
            bail!("provider must be 'local' or 'openai', not '{}'", ai.provider);
        }
        if !["auto", "minilm-int8", "minilm", "hash", "openai"].contains(&ai.embedder.as_str()) {
            bail!(
                "embedder must be 'auto', 'minilm-int8', 'minilm', 'hash' or 'openai', not '{}'",
                ai.embedder
            );
        }
        let mut ingest = from_file.ingest.unwrap_or_default();
        if let Some(v) = env("LEARNFLOW_OCR_LANGUAGE") {
            ingest.ocr_language = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_MAX_FILE_MB")? {
            ingest.max_file_mb = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_MAX_PAGES")? {
            ingest.max_pages = v;
        }
        let review = env("LEARNFLOW_REVIEW_TIMEOUT").or(from_file.pipeline.review_timeout);
        let review_timeout = match review {
            Some(t) => {
                learnflow_engine::duration::parse(&t).map_err(|e| anyhow::anyhow!("review timeout: {e}"))?
            }
            None => std::time::Duration::from_secs(24 * 3600),
        };
        let mut server = from_file.server.unwrap_or_default();
        if let Some(v) = env("LEARNFLOW_LISTEN") {
            server.listen = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_RATE_LIMIT")? {
            server.rate_limit = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_RATE_BURST")? {
            server.rate_burst = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_SHUTDOWN_GRACE_SECS")? {
            server.shutdown_grace_secs = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_WEBHOOK_BACKOFF_MS")? {
            server.webhook_backoff_ms = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_WEBHOOK_RETRIES")? {
            server.webhook_retries = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_WEBHOOK_ALLOW_PRIVATE")? {
            server.webhook_allow_private = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_INNGEST_DEV")? {
            server.inngest_dev = v;
        }
        if let Some(v) = env("LEARNFLOW_INNGEST_SIGNING_KEY") {
            server.inngest_signing_key = Some(v);
        }
        if let Some(v) = env("LEARNFLOW_INNGEST_EVENT_KEYS") {
            server.inngest_event_keys = v
                .split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect();
        }
        if let Some(v) = env_parse("LEARNFLOW_INNGEST_CHECK_SECS")? {
            server.inngest_check_secs = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_INNGEST_RETRY_BASE_MS")? {
            server.inngest_retry_base_ms = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_INNGEST_MAX_CALLS_PER_APP")? {
            server.inngest_max_calls_per_app = v;
        }
        let mut engine = from_file.engine.unwrap_or_default();
        if let Some(v) = env_parse("LEARNFLOW_LEASE_TTL_SECS")? {
            engine.lease_ttl_secs = v;
        }
        if let Some(v) = env_parse("LEARNFLOW_POLL_MS")? {
            engine.poll_ms = v;
        }
        if engine.lease_ttl_secs < 2 {
            bail!("engine lease_ttl_secs must be at least 2");
        }
        if engine.poll_ms == 0 {
            bail!("engine poll_ms must be at least 1");
        }
        let pg_pool_size = env_parse("LEARNFLOW_PG_POOL_SIZE")?
            .or(from_file.pg_pool_size)
            .unwrap_or(16);
        if pg_pool_size == 0 {
            bail!("pg_pool_size must be at least 1");
        }
        if !server.rate_limit.is_finite() || server.rate_limit <= 0.0 {
            bail!("server rate_limit must be a positive number of requests per second");
        }
        Ok(Config {
            server,
            data_dir: over
                .data_dir
                .or(from_file.data_dir)
                .unwrap_or_else(|| PathBuf::from("learnflow-data")),
            database_url: over.database_url.or(from_file.database_url),
            pg_pool_size,
            engine,
            blob_url: env("LEARNFLOW_BLOB_URL").or(from_file.blob_url),
            sqlite_durability: durability,
            ai,
            ingest,
            review_timeout,
        })
    }

    /// Where model files are cached.
    pub fn models_dir(&self) -> PathBuf {
        self.ai
            .models_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// Where the store lives: `sqlite://PATH`, `postgres://…` (or `postgresql://…`),
    /// or by default the SQLite file `DATA_DIR/learnflow.db`.
    pub fn database(&self) -> anyhow::Result<Database> {
        match self.database_url.as_deref().map(str::trim) {
            None | Some("") => Ok(Database::Sqlite(self.data_dir.join("learnflow.db"))),
            Some(url) => {
                if let Some(path) = url.strip_prefix("sqlite://") {
                    if path.is_empty() {
                        bail!("database URL '{url}' names no file (use sqlite://path/to/file.db)");
                    }
                    Ok(Database::Sqlite(PathBuf::from(path)))
                } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    Ok(Database::Postgres(url.to_string()))
                } else {
                    bail!(
                        "unsupported database URL '{url}': expected sqlite://PATH or postgres://USER@HOST/DB"
                    )
                }
            }
        }
    }

    /// The engine's settings from `[engine]`.
    pub fn engine_config(&self) -> learnflow_engine::EngineConfig {
        let ttl = std::time::Duration::from_secs(self.engine.lease_ttl_secs);
        learnflow_engine::EngineConfig {
            lease_ttl: ttl,
            heartbeat_interval: ttl / 6,
            poll_interval: std::time::Duration::from_millis(self.engine.poll_ms),
            ..learnflow_engine::EngineConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_env_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lf.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nsqlite_durability = \"normal\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), Overrides::default()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.sqlite_durability, Durability::Normal);
        let c = Config::load(
            Some(&file),
            Overrides {
                data_dir: Some("/from/flag".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("learnflow-data"));
        assert_eq!(
            c.database().unwrap(),
            Database::Sqlite(PathBuf::from("learnflow-data/learnflow.db"))
        );
        let c = Config::load(
            None,
            Overrides {
                database_url: Some("postgres://u@h:5433/db".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.database().unwrap(),
            Database::Postgres("postgres://u@h:5433/db".into())
        );
    }

    #[test]
    fn bad_config_is_rejected_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lf.toml");
        std::fs::write(&file, "data_dri = \"x\"\n").unwrap();
        let err = format!(
            "{:#}",
            Config::load(Some(&file), Overrides::default()).unwrap_err()
        );
        assert!(err.contains("unknown field `data_dri`"), "{err}");
        let err = Config::load(
            None,
            Overrides {
                sqlite_durability: Some("fast".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("'full' or 'normal'"));
        let c = Config::load(
            None,
            Overrides {
                database_url: Some("mysql://x".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(c
            .database()
            .unwrap_err()
            .to_string()
            .contains("unsupported database URL"));
    }
}
