//! TextRank: PageRank over a weighted undirected graph, used for sentences
//! (similarity = cosine of tf-idf vectors) and for words (co-occurrence in a window).

use super::tfidf::{cosine, SparseVec};

/// PageRank with damping 0.85 over a weighted undirected graph given as adjacency
/// lists `(neighbour, weight)`. Returns one score per node (mean 1.0).
pub fn pagerank(adj: &[Vec<(usize, f32)>], iterations: usize) -> Vec<f64> {
    let n = adj.len();
    if n == 0 {
        return Vec::new();
    }
    let out_w: Vec<f64> = adj
        .iter()
        .map(|ns| ns.iter().map(|x| f64::from(x.1)).sum())
        .collect();
    let d = 0.85;
    let mut score = vec![1.0f64; n];
    let mut next = vec![0.0f64; n];
    for _ in 0..iterations {
        // dangling nodes spread evenly
        let dangling: f64 = (0..n).filter(|&i| out_w[i] == 0.0).map(|i| score[i]).sum::<f64>() / n as f64;
        for v in next.iter_mut() {
            *v = (1.0 - d) + d * dangling;
        }
        for (u, ns) in adj.iter().enumerate() {
            if out_w[u] == 0.0 {
                continue;
            }
            let share = d * score[u] / out_w[u];
            for &(v, w) in ns {
                next[v] += share * f64::from(w);
            }
        }
        let delta: f64 = score.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum();
        std::mem::swap(&mut score, &mut next);
        if delta < 1e-6 * n as f64 {
            break;
        }
    }
    score
}

/// Sentence graph: an edge where cosine similarity ≥ `min_sim`. For more than
/// `window * 2` sentences only pairs at most `window` apart are compared, so the
/// cost stays bounded on very long documents.
pub fn sentence_graph(vecs: &[SparseVec], min_sim: f32, window: usize) -> Vec<Vec<(usize, f32)>> {
    let n = vecs.len();
    let mut adj: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    for i in 0..n {
        if vecs[i].is_empty() {
            continue;
        }
        let hi = if n > window * 2 { (i + window).min(n) } else { n };
        for j in i + 1..hi {
            let s = cosine(&vecs[i], &vecs[j]);
            if s >= min_sim {
                adj[i].push((j, s));
                adj[j].push((i, s));
            }
        }
    }
    adj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_gets_highest_score() {
        // star: 0 connected to 1..4
        let mut adj = vec![Vec::new(); 5];
        for i in 1..5 {
            adj[0].push((i, 1.0));
            adj[i].push((0, 1.0));
        }
        let s = pagerank(&adj, 50);
        assert!(s[0] > s[1] * 2.0);
        assert!((s.iter().sum::<f64>() - 5.0).abs() < 1e-3);
    }
}
