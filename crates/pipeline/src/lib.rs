//! # learnflow-pipeline
//!
//! The main job of LearnFlow: a student's document goes in, a study pack comes out,
//! durably. [`steps::process_document`] is the engine function `process-document`
//! (on `document.uploaded`); [`library`] keeps documents, text, chunks, vectors,
//! materials and question threads; [`blobs`] keeps the uploaded files; [`ask`]
//! answers questions with citations; [`pack`] renders a study pack as Markdown, JSON
//! and an Anki deck.
//!
//! | module | owns |
//! |---|---|
//! | [`steps`] | the function and its steps in run order: extract, architect, review, agents, embed, store, notify |
//! | [`library`] | the `Library` trait, its SQLite (FTS5, exact vectors) and PostgreSQL (pgvector HNSW, `tsvector`) stores, ranking alike |
//! | [`blobs`] | uploaded files through `object_store` |
//! | [`services`] | what the steps share: providers, embedder, ingest options, analysis cache |
//! | [`ask`] | retrieval and cited answers with conversation memory |
//! | [`pack`] | study pack files |
//! | [`upload`] | taking in a file: blob, document record, the event |

pub mod ask;
pub mod blobs;
pub mod library;
pub mod pack;
pub mod services;
pub mod steps;
pub mod upload;
