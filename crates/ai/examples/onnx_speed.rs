//! Prints embedding throughput for ~800-character chunks: the int8 ONNX MiniLM against the fp32
//! candle MiniLM, on the same chunks.
//!
//! Run: `cargo run --release --example onnx_speed [n_chunks] [rounds]`. The files are resolved
//! like the tests do (`LEARNFLOW_EMBED_MODEL_DIR`, `LEARNFLOW_ORT_DYLIB`,
//! `LEARNFLOW_EMBED_ONNX_MODEL`, else `LEARNFLOW_MODELS_DIR`, default `/work/.cache/models`,
//! downloading once if needed).

use std::path::PathBuf;
use std::time::Instant;

use learnflow_ai::embed::{cosine, EmbedError, Embedder, MiniLmEmbedder, ModelStore, OnnxMiniLmEmbedder};

const SENTENCES: [&str; 12] = [
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The French Revolution reshaped the political order of Europe at the end of the eighteenth century.",
    "A binary search tree supports lookup, insertion and deletion in logarithmic time on average.",
    "Mitochondria generate most of the cell's ATP through oxidative phosphorylation.",
    "Supply and demand determine the market price of a good in a competitive market.",
    "Newton's second law states that force equals mass times acceleration.",
    "The mitochondrial membrane potential drives the ATP synthase enzyme.",
    "Quarterly revenue grew by ten percent as sales increased across all regions.",
    "Ownership and borrowing let Rust programs manage memory without a garbage collector.",
    "Rising sea levels threaten coastal cities and low-lying island nations.",
    "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
    "Enzymes lower the activation energy of chemical reactions in living cells.",
];

/// `n` chunks of about 800 characters, each made of whole sentences in a varying order.
fn chunks(n: usize) -> Vec<String> {
    (0..n)
        .map(|c| {
            let mut text = String::new();
            let mut k = 0;
            while text.len() < 760 {
                let sentence = SENTENCES[(c * 5 + k * 7 + k * k) % SENTENCES.len()];
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(sentence);
                k += 1;
            }
            text
        })
        .collect()
}

/// Embeds all `texts` once with `embedder`; returns chunks per second.
async fn round(embedder: &dyn Embedder, texts: &[String]) -> Result<f64, EmbedError> {
    let start = Instant::now();
    embedder.embed(texts).await?;
    Ok(texts.len() as f64 / start.elapsed().as_secs_f64())
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), EmbedError> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256).max(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3).max(1);

    let texts = chunks(n);
    let avg = texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / texts.len() as f64;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "{} chunks of {avg:.0} characters on average, {cores} cores",
        texts.len()
    );

    let models_dir = std::env::var_os("LEARNFLOW_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/.cache/models"));
    let files = ModelStore::new(models_dir).ensure_onnx_minilm().await?;

    if let Ok(mut tokenizer) = tokenizers::Tokenizer::from_file(&files.tokenizer) {
        tokenizer.with_padding(None);
        if tokenizer.with_truncation(None).is_ok() {
            let tokens: usize = texts
                .iter()
                .filter_map(|t| tokenizer.encode(t.as_str(), true).ok())
                .map(|e| e.get_ids().len())
                .sum();
            println!(
                "{:.0} tokens per chunk on average (before the 256-token cut)",
                tokens as f64 / texts.len() as f64
            );
        }
    }

    let start = Instant::now();
    let onnx = OnnxMiniLmEmbedder::from_files(&files)?;
    println!("int8 onnx load:    {:>7.2} s", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let fp32_dir = files.tokenizer.parent().map(PathBuf::from).unwrap_or_default();
    let fp32 = MiniLmEmbedder::load(&fp32_dir)?;
    println!("fp32 candle load:  {:>7.2} s", start.elapsed().as_secs_f64());

    // Warm up, then alternate the two embedders round by round so that a change in machine
    // load affects both alike.
    onnx.embed(&texts[..texts.len().min(8)]).await?;
    fp32.embed(&texts[..texts.len().min(8)]).await?;
    let (mut int8_rates, mut fp32_rates) = (Vec::new(), Vec::new());
    for r in 1..=rounds {
        let int8 = round(&onnx, &texts).await?;
        let fp = round(&fp32, &texts).await?;
        println!(
            "round {r}: {} {int8:>6.1} chunks/s, {} {fp:>6.1} chunks/s ({:.2}x)",
            onnx.model_id(),
            fp32.model_id(),
            int8 / fp
        );
        int8_rates.push(int8);
        fp32_rates.push(fp);
    }
    let (int8_rate, fp32_rate) = (median(int8_rates), median(fp32_rates));
    println!(
        "median: int8 {int8_rate:.1} chunks/s, fp32 {fp32_rate:.1} chunks/s, speed-up {:.2}x",
        int8_rate / fp32_rate
    );

    // For comparison: short sentences embedded one call each (where fixed costs dominate).
    let mut per_sentence = Vec::new();
    for embedder in [&onnx as &dyn Embedder, &fp32] {
        let start = Instant::now();
        for sentence in SENTENCES.iter().cycle().take(48) {
            embedder.embed(&[sentence.to_string()]).await?;
        }
        per_sentence.push(start.elapsed().as_secs_f64() * 1e3 / 48.0);
    }
    println!(
        "single sentences, one per call: int8 {:.1} ms, fp32 {:.1} ms ({:.2}x)",
        per_sentence[0],
        per_sentence[1],
        per_sentence[1] / per_sentence[0]
    );

    let a = onnx.embed(&texts[..texts.len().min(16)]).await?;
    let b = fp32.embed(&texts[..texts.len().min(16)]).await?;
    let min_cos = a
        .iter()
        .zip(&b)
        .map(|(x, y)| cosine(x, y))
        .fold(f32::MAX, f32::min);
    println!(
        "lowest cos(int8, fp32) over the first {} chunks: {min_cos:.5}",
        a.len()
    );
    Ok(())
}
