//! Co-occurrence of key terms: two keyphrases are related when they occur in the same
//! sentence; the edge weight counts such sentences and keeps them as evidence.

use std::collections::HashMap;

use super::terms::TermHit;

/// A relation between two key terms.
#[derive(Clone, Debug, PartialEq)]
pub struct CoEdge {
    /// Term index (`Analysis::terms`) of the term that comes first in most sentences.
    pub a: usize,
    /// The other term index.
    pub b: usize,
    /// Number of sentences holding both.
    pub weight: f64,
    /// Those sentences, ascending.
    pub sentences: Vec<usize>,
}

/// The co-occurrence graph over the top keyphrases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoGraph {
    /// Term indices of the nodes (top keyphrases, best first).
    pub nodes: Vec<usize>,
    /// Edges, heaviest first.
    pub edges: Vec<CoEdge>,
}

impl CoGraph {
    /// Number of nodes that have at least one edge.
    pub fn related_concepts(&self) -> usize {
        self.nodes
            .iter()
            .filter(|&&n| self.edges.iter().any(|e| e.a == n || e.b == n))
            .count()
    }

    /// Edges touching a term.
    pub fn edges_of(&self, term: usize) -> impl Iterator<Item = &CoEdge> {
        self.edges.iter().filter(move |e| e.a == term || e.b == term)
    }
}

/// Builds the graph over `nodes` (term indices) from the per-sentence hits. A hit
/// inside a longer node hit in the same sentence ("cycle" inside "Calvin cycle") is
/// not counted.
pub fn build(nodes: &[usize], hits: &[Vec<TermHit>]) -> CoGraph {
    let is_node: HashMap<usize, usize> = nodes.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    // (a, b) unordered → (weight, sentences, a-first count)
    let mut acc: HashMap<(usize, usize), (f64, Vec<usize>, i64)> = HashMap::new();
    for (si, hs) in hits.iter().enumerate() {
        let mine: Vec<&TermHit> = hs.iter().filter(|h| is_node.contains_key(&h.term)).collect();
        if mine.len() < 2 {
            continue;
        }
        let kept: Vec<&TermHit> = mine
            .iter()
            .filter(|h| {
                !mine.iter().any(|o| {
                    o.term != h.term
                        && o.start <= h.start
                        && o.end >= h.end
                        && (o.end - o.start) > (h.end - h.start)
                })
            })
            .copied()
            .collect();
        // first position per term
        let mut first: Vec<(usize, usize)> = Vec::new();
        for h in kept {
            match first.iter_mut().find(|x| x.0 == h.term) {
                Some(x) => x.1 = x.1.min(h.start),
                None => first.push((h.term, h.start)),
            }
        }
        for i in 0..first.len() {
            for j in i + 1..first.len() {
                let (x, y) = (first[i], first[j]);
                let key = (x.0.min(y.0), x.0.max(y.0));
                let e = acc.entry(key).or_insert((0.0, Vec::new(), 0));
                e.0 += 1.0;
                e.1.push(si);
                let lower_first = if x.0 < y.0 { x.1 < y.1 } else { y.1 < x.1 };
                e.2 += if lower_first { 1 } else { -1 };
            }
        }
    }
    let mut edges: Vec<CoEdge> = acc
        .into_iter()
        .map(|((p, q), (w, s, dir))| {
            let (a, b) = if dir >= 0 { (p, q) } else { (q, p) };
            CoEdge {
                a,
                b,
                weight: w,
                sentences: s,
            }
        })
        .collect();
    edges.sort_by(|x, y| {
        y.weight
            .total_cmp(&x.weight)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    CoGraph {
        nodes: nodes.to_vec(),
        edges,
    }
}
