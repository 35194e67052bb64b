//! Retrieval-augmented generation: [`chunk`] splits a document's pages into passages
//! that are embedded ([`crate::embed`]), retrieved (the library's hybrid search) and
//! cited; [`crate::studio::answer`] writes the cited answer.

pub mod chunk;
