//! Identifiers: runs and nodes are ULIDs (sortable by creation time).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id of one run: a ULID, so ids sort by creation time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        RunId(ulid::Ulid::new().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RunId {
    fn from(s: &str) -> Self {
        RunId(s.to_string())
    }
}

/// The id of one engine process (a node) sharing a store; it owns leases on runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl NodeId {
    /// A fresh node id.
    pub fn generate() -> Self {
        NodeId(ulid::Ulid::new().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fresh ULID as text (event ids, wait ids).
pub fn new_ulid() -> String {
    ulid::Ulid::new().to_string()
}
