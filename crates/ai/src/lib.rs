//! # learnflow-ai
//!
//! The AI side of LearnFlow, with no dependency on the engine: providers, agents,
//! schema-checked outputs, embeddings, chunking and retrieval.

pub mod doc;
pub mod provider;
pub mod record;
pub mod runner;
pub mod schema;
#[cfg(feature = "fake-server")]
pub mod testing;
