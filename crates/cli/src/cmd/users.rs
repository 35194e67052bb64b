//! `learnflow users`: API users and their tokens.

use std::process::ExitCode;

use clap::Subcommand;

use super::open_server_db;
use crate::config::Config;
use crate::UsageError;

/// User commands.
#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; its API token is printed alone on the last line.
    Create {
        /// A unique name.
        name: String,
        /// May see everyone's runs and the metrics.
        #[arg(long)]
        admin: bool,
    },
}

/// Runs a users command.
pub async fn run(config: &Config, cmd: UsersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UsersCommand::Create { name, admin } => {
            std::fs::create_dir_all(&config.data_dir)?;
            let db = open_server_db(config).await?;
            let (user, token) = db.create_user(&name, admin).await.map_err(|e| match e {
                learnflow_server::db::DbError::Conflict(m) => anyhow::Error::new(UsageError(m)),
                e => anyhow::Error::new(e),
            })?;
            println!(
                "Created {} '{}' ({}). Its API token, shown only now:",
                if user.admin { "admin" } else { "user" },
                user.name,
                user.id
            );
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
