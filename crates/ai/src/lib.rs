//! # learnflow-ai
//!
//! The AI side of LearnFlow, with no dependency on the engine: providers, agents,
//! schema-checked outputs, embeddings, chunking and retrieval.

pub mod agents;
pub mod answer;
pub mod cpu;
pub mod doc;
pub mod embed;
pub mod nlp;
pub mod provider;
pub mod rag;
pub mod record;
pub mod runner;
pub mod schema;
pub mod studio;
#[cfg(feature = "fake-server")]
pub mod testing;
