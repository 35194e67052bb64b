//! Prints embedding throughput for ~800-character chunks.
//!
//! Run: `cargo run --release --example speed [n_chunks]`. The MiniLM files are resolved like
//! the tests do (`LEARNFLOW_EMBED_MODEL_DIR`, else `LEARNFLOW_MODELS_DIR`, default
//! `/work/.cache/models`, downloading once if needed).

use std::path::PathBuf;
use std::time::Instant;

use learnflow_ai::doc::{DocumentText, PageText};
use learnflow_ai::embed::{EmbedError, Embedder, HashEmbedder, MiniLmEmbedder, ModelStore};
use learnflow_ai::rag::chunk::{chunk_document, ChunkOptions};

const SENTENCES: [&str; 8] = [
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The French Revolution reshaped the political order of Europe at the end of the eighteenth century.",
    "A binary search tree supports lookup, insertion and deletion in logarithmic time on average.",
    "Mitochondria generate most of the cell's ATP through oxidative phosphorylation.",
    "Supply and demand determine the market price of a good in a competitive market.",
    "Newton's second law states that force equals mass times acceleration.",
    "The mitochondrial membrane potential drives the ATP synthase enzyme.",
    "Quarterly revenue grew by ten percent as sales increased across all regions.",
];

/// A synthetic document whose pages chunk into pieces of about 800 characters.
fn document(pages: usize) -> DocumentText {
    let pages = (0..pages)
        .map(|p| {
            let paragraphs: Vec<String> = (0..9)
                .map(|q| {
                    (0..3)
                        .map(|k| SENTENCES[(p * 7 + q * 3 + k) % SENTENCES.len()])
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            PageText {
                number: p as u32 + 1,
                text: paragraphs.join("\n\n"),
                headings: vec![],
            }
        })
        .collect();
    DocumentText {
        title: "speed".into(),
        pages,
    }
}

#[tokio::main]
async fn main() -> Result<(), EmbedError> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);

    let doc = document(n / 3 + 1);
    let start = Instant::now();
    let chunks = chunk_document(&doc, &ChunkOptions::default());
    let chunk_secs = start.elapsed().as_secs_f64();
    let texts: Vec<String> = chunks.into_iter().take(n).map(|c| c.text).collect();
    let avg = texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / texts.len().max(1) as f64;
    println!(
        "chunking: {} pages in {:.1} ms; using {} chunks of {avg:.0} chars on average",
        doc.pages.len(),
        chunk_secs * 1e3,
        texts.len()
    );

    let hash = HashEmbedder::new();
    let start = Instant::now();
    hash.embed(&texts).await?;
    println!(
        "hash-384:     {:>8.0} chunks/s",
        texts.len() as f64 / start.elapsed().as_secs_f64()
    );

    let models_dir = std::env::var_os("LEARNFLOW_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/.cache/models"));
    let dir = ModelStore::new(models_dir).ensure_minilm().await?;
    let start = Instant::now();
    let minilm = MiniLmEmbedder::load(&dir)?;
    println!("minilm load:  {:>8.2} s", start.elapsed().as_secs_f64());

    minilm.embed(&texts[..texts.len().min(8)]).await?; // warm-up
    for round in 1..=3 {
        let start = Instant::now();
        minilm.embed(&texts).await?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "minilm-l6-v2: {:>8.1} chunks/s (round {round}: {} chunks in {secs:.2} s)",
            texts.len() as f64 / secs,
            texts.len()
        );
    }
    Ok(())
}
