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
    /// `sqlite://PATH` (default: `DATA_DIR/learnflow.db`).
    pub database_url: Option<String>,
    /// SQLite commit durability.
    pub sqlite_durability: Durability,
}

/// The TOML file's shape (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    sqlite_durability: Option<String>,
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
        Ok(Config {
            data_dir: over
                .data_dir
                .or(from_file.data_dir)
                .unwrap_or_else(|| PathBuf::from("learnflow-data")),
            database_url: over.database_url.or(from_file.database_url),
            sqlite_durability: durability,
        })
    }

    /// The SQLite file the store lives in.
    pub fn sqlite_path(&self) -> anyhow::Result<PathBuf> {
        match self.database_url.as_deref() {
            None | Some("") => Ok(self.data_dir.join("learnflow.db")),
            Some(url) => {
                if let Some(path) = url.strip_prefix("sqlite://") {
                    if path.is_empty() {
                        bail!("database URL '{url}' names no file (use sqlite://path/to/file.db)");
                    }
                    Ok(PathBuf::from(path))
                } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    bail!("this build of learnflow has no PostgreSQL store yet; use sqlite://PATH or leave the database URL unset")
                } else {
                    bail!("unsupported database URL '{url}': expected sqlite://PATH")
                }
            }
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
            c.sqlite_path().unwrap(),
            PathBuf::from("learnflow-data/learnflow.db")
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
            .sqlite_path()
            .unwrap_err()
            .to_string()
            .contains("unsupported database URL"));
    }
}
