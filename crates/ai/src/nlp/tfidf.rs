//! TF-IDF over chunks (each chunk is one "document" for the inverse document
//! frequency) and sparse, L2-normalised sentence vectors with cosine similarity.

use std::collections::HashMap;

/// A sparse vector: `(term id, weight)` sorted by term id.
pub type SparseVec = Vec<(u32, f32)>;

/// The vocabulary with inverse document frequencies over chunks.
#[derive(Clone, Debug, Default)]
pub struct TfIdf {
    /// Normalised word → id.
    pub vocab: HashMap<String, u32>,
    /// Inverse document frequency per id: `ln((N + 1) / (df + 1)) + 1`.
    pub idf: Vec<f32>,
    /// Number of chunks the statistics come from.
    pub documents: usize,
}

impl TfIdf {
    /// Builds the statistics from the content words of each chunk.
    pub fn build(chunk_words: &[Vec<&str>]) -> TfIdf {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut df: Vec<u32> = Vec::new();
        for words in chunk_words {
            let mut seen: Vec<u32> = Vec::with_capacity(words.len());
            for w in words {
                let id = match vocab.get(*w) {
                    Some(&id) => id,
                    None => {
                        let id = df.len() as u32;
                        vocab.insert((*w).to_string(), id);
                        df.push(0);
                        id
                    }
                };
                seen.push(id);
            }
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                df[id as usize] += 1;
            }
        }
        let n = chunk_words.len() as f32;
        let idf = df
            .iter()
            .map(|&d| ((n + 1.0) / (d as f32 + 1.0)).ln() + 1.0)
            .collect();
        TfIdf {
            vocab,
            idf,
            documents: chunk_words.len(),
        }
    }

    /// The idf of a normalised word, or the largest possible idf for an unseen word.
    pub fn idf_of(&self, word: &str) -> f32 {
        match self.vocab.get(word) {
            Some(&id) => self.idf[id as usize],
            None => ((self.documents as f32 + 1.0) / 1.0).ln() + 1.0,
        }
    }

    /// The L2-normalised tf-idf vector of some normalised words (unknown words ignored).
    pub fn vector<'w>(&self, words: impl IntoIterator<Item = &'w str>) -> SparseVec {
        let mut tf: HashMap<u32, f32> = HashMap::new();
        for w in words {
            if let Some(&id) = self.vocab.get(w) {
                *tf.entry(id).or_insert(0.0) += 1.0;
            }
        }
        let mut v: SparseVec = tf
            .into_iter()
            .map(|(id, c)| (id, c * self.idf[id as usize]))
            .collect();
        v.sort_unstable_by_key(|x| x.0);
        normalize_vec(&mut v);
        v
    }
}

/// Scales a sparse vector to unit length (no-op for the zero vector).
pub fn normalize_vec(v: &mut SparseVec) {
    let norm: f32 = v.iter().map(|x| x.1 * x.1).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            x.1 /= norm;
        }
    }
}

/// Dot product of two sparse vectors sorted by id (the cosine when both are unit length).
pub fn cosine(a: &SparseVec, b: &SparseVec) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0.0f32);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

/// Adds `b` into `a` (both sorted by id), keeping the result sorted.
pub fn add_into(a: &SparseVec, b: &SparseVec) -> SparseVec {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j >= b.len() || (i < a.len() && a[i].0 < b[j].0) {
            out.push(a[i]);
            i += 1;
        } else if i >= a.len() || b[j].0 < a[i].0 {
            out.push(b[j]);
            j += 1;
        } else {
            out.push((a[i].0, a[i].1 + b[j].1));
            i += 1;
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_identical_is_one_and_disjoint_zero() {
        let t = TfIdf::build(&[vec!["cell", "wall"], vec!["cell", "light"], vec!["king"]]);
        let a = t.vector(["cell", "wall"]);
        let b = t.vector(["wall", "cell"]);
        let c = t.vector(["king"]);
        assert!((cosine(&a, &b) - 1.0).abs() < 1e-5);
        assert_eq!(cosine(&a, &c), 0.0);
        assert!(t.idf_of("king") > t.idf_of("cell"));
    }
}
