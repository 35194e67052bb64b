//! A deterministic, non-neural fallback embedder based on feature hashing.

use std::collections::HashMap;

use super::{check_non_empty, l2_normalize, EmbedError, Embedder};

/// Vector length of [`HashEmbedder`].
const HASH_DIMENSIONS: usize = 384;

/// Very common English words that carry no topic; they are left out of the features so
/// that two unrelated passages do not look alike just because both use "the" and "of".
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "do", "does", "for", "from",
    "had", "has", "have", "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "of", "on",
    "or", "our", "she", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "those", "to", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why",
    "will", "with", "would", "you", "your",
];

/// A deterministic embedder that needs neither model files nor network access.
///
/// Each text is lower-cased and split into words (runs of letters and digits); common
/// English stopwords are dropped (unless nothing else is left). Every word unigram and
/// every pair of neighbouring words (bigram) is hashed (FNV-1a, 64 bit) to one of 384
/// dimensions and a sign, weighted by the sublinear term frequency `1 + ln(count)`, and the
/// vector is L2-normalised. Texts sharing topic words therefore score high; it knows
/// nothing about synonyms. Its id is "hash-384".
#[derive(Clone, Debug, Default)]
pub struct HashEmbedder;

impl HashEmbedder {
    /// Creates the embedder (it has no state).
    pub fn new() -> Self {
        HashEmbedder
    }

    /// Embeds one text synchronously. The text must not be empty or only whitespace
    /// (an all-zero vector would be returned for it).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let lowered = text.to_lowercase();
        let all: Vec<&str> = lowered
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let content: Vec<&str> = all.iter().copied().filter(|w| !STOPWORDS.contains(w)).collect();
        let words = if content.is_empty() { all } else { content };

        let mut counts: HashMap<u64, u32> = HashMap::new();
        if words.is_empty() {
            // Only punctuation or symbols: use the trimmed text itself as the one feature.
            *counts.entry(fnv1a(&[lowered.trim().as_bytes()])).or_default() += 1;
        }
        for w in &words {
            *counts.entry(fnv1a(&[b"u:", w.as_bytes()])).or_default() += 1;
        }
        for pair in words.windows(2) {
            *counts
                .entry(fnv1a(&[b"b:", pair[0].as_bytes(), b" ", pair[1].as_bytes()]))
                .or_default() += 1;
        }

        let mut v = vec![0.0f32; HASH_DIMENSIONS];
        for (h, count) in counts {
            let dim = (h % HASH_DIMENSIONS as u64) as usize;
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            v[dim] += sign * (1.0 + (count as f32).ln());
        }
        l2_normalize(&mut v);
        v
    }
}

/// FNV-1a over the concatenation of `parts`: stable across platforms and Rust versions,
/// unlike `std`'s default hasher.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // Mix the high bits down so that `% 384` and the sign bit both see all of the input.
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

#[async_trait::async_trait]
impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        "hash-384"
    }

    fn dimensions(&self) -> usize {
        HASH_DIMENSIONS
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        check_non_empty(texts)?;
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::cosine;

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let e = HashEmbedder::new();
        for text in ["Photosynthesis turns light into sugar.", "the of and", "!!!", "x"] {
            let v = e.embed_one(text);
            assert_eq!(v.len(), 384);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{text:?} has norm {norm}");
            assert_eq!(v, e.embed_one(text));
        }
    }

    #[test]
    fn case_and_punctuation_do_not_matter() {
        let e = HashEmbedder::new();
        let a = e.embed_one("Mitochondria produce ATP.");
        let b = e.embed_one("mitochondria, produce atp");
        assert!((cosine(&a, &b) - 1.0).abs() < 1e-6);
    }
}
