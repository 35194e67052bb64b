//! The study pack as files: one readable Markdown file with every material
//! (`study-pack.md`), the structured JSON (`study-pack.json`), and an Anki deck in
//! Anki's TSV import format (`anki-deck.txt`: flashcards and cloze cards, with the
//! header lines Anki reads for separator, HTML and tags).

mod anki;
mod markdown;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub use anki::anki_tsv;
pub use markdown::render_markdown;

use crate::library::{DocumentRecord, MaterialRecord};

/// The structured pack.
pub fn pack_json(doc: &DocumentRecord, materials: &[MaterialRecord]) -> Value {
    json!({
        "document": {
            "id": doc.id, "title": doc.title, "fileName": doc.file_name, "pages": doc.pages,
            "kind": doc.kind, "purpose": doc.purpose,
        },
        "materials": materials.iter().map(|m| json!({
            "agent": m.agent, "status": m.status, "priority": m.priority, "focus": m.focus,
            "content": m.content, "error": m.error,
        })).collect::<Vec<_>>(),
    })
}

/// Writes the pack into `dir` (created if needed); returns the files written.
pub fn write_pack(
    dir: &Path,
    doc: &DocumentRecord,
    materials: &[MaterialRecord],
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let md = dir.join("study-pack.md");
    std::fs::write(&md, render_markdown(doc, materials))?;
    let js = dir.join("study-pack.json");
    let text = serde_json::to_string_pretty(&pack_json(doc, materials)).map_err(std::io::Error::other)?;
    std::fs::write(&js, text)?;
    let anki = dir.join("anki-deck.txt");
    std::fs::write(&anki, anki_tsv(doc, materials))?;
    Ok(vec![md, js, anki])
}
