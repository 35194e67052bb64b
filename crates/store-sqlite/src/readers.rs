//! A small pool of read connections (WAL lets them read while the writer writes).
use std::path::PathBuf;
use std::sync::Mutex;

use learnflow_engine::store::StoreError;
use rusqlite::Connection;

use crate::Durability;

pub(crate) struct Pool {
    path: PathBuf,
    durability: Durability,
    max: usize,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    pub fn new(path: PathBuf, durability: Durability, max: usize) -> Self {
        Pool {
            path,
            durability,
            max,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn get(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        crate::connect(&self.path, self.durability, false)
    }

    pub fn put(&self, conn: Connection) {
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < self.max {
                v.push(conn);
            }
        }
    }
}
