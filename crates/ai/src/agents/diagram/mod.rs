//! Diagram agent: a concept map from the co-occurrence of key terms, grown from the
//! most central term so that it is connected, rendered as a Mermaid flowchart (`n1["…"]`
//! nodes; `-->|"verb"|` when a short verb phrase links the two terms in a sentence,
//! `---` when they are only mentioned together) plus the same nodes and edges as
//! structured JSON with citations. Also owns the Mermaid grammar check
//! ([`check_mermaid_flowchart`]).

mod mermaid;

use std::collections::HashSet;
use std::fmt::Write;

use serde::Serialize;

pub use mermaid::check_mermaid_flowchart;

use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::stopwords::{is_common_verb, is_generic, is_stopword};
use crate::nlp::text::capitalize_first;
use crate::nlp::{Analysis, CoEdge};

/// Most nodes in a map.
const MAX_NODES: usize = 12;
/// Most edges in a map.
const MAX_EDGES: usize = 18;

/// Output of the diagram agent.
#[derive(Debug, Serialize)]
pub struct DiagramOutput {
    /// Map title.
    pub title: String,
    /// Mermaid flowchart source.
    pub mermaid: String,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Edges.
    pub edges: Vec<Edge>,
}

/// A concept in the map.
#[derive(Debug, Serialize)]
pub struct Node {
    /// "n1", "n2", …
    pub id: String,
    /// The concept.
    pub label: String,
    /// Its kind (concept, person, …).
    pub kind: &'static str,
    /// A passage that explains it.
    pub source: Citation,
}

/// A relation between two concepts.
#[derive(Debug, Serialize)]
pub struct Edge {
    /// Node id the relation starts from.
    pub from: String,
    /// Node id it points to.
    pub to: String,
    /// The linking words from the text ("absorbs"), when there are some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Number of sentences that mention both.
    pub weight: u32,
    /// A sentence that mentions both.
    pub source: Citation,
}

/// Removes characters that break Mermaid labels (quotes, brackets, braces, pipes,
/// semicolons, angle brackets, '#', '&', backticks), collapses spaces, and shortens.
pub fn sanitize_label(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if "\"[]{}|;<>#&`\\".contains(c) || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let squashed = crate::nlp::text::squash_ws(&cleaned);
    crate::nlp::text::truncate_chars(&squashed, 60)
}

/// The verb phrase between two terms in a sentence ("chlorophyll absorbs light" →
/// "absorbs"): 1–4 words right after the first term, starting with a verb, without
/// conjunctions, determiners or punctuation; trailing vague adjectives are dropped.
fn linking_words(a: &Analysis, s: usize, from: usize, to: usize) -> Option<String> {
    let sent = &a.sentences[s];
    let hs = &a.hits[s];
    let outer = |h: &&crate::nlp::TermHit| {
        !hs.iter().any(|o| {
            o.term != h.term && o.start <= h.start && o.end >= h.end && (o.end - o.start) > (h.end - h.start)
        })
    };
    let hf = hs
        .iter()
        .filter(|h| h.term == from)
        .filter(outer)
        .min_by_key(|h| h.start)?;
    let ht = hs
        .iter()
        .filter(|h| h.term == to && h.start >= hf.end)
        .filter(outer)
        .min_by_key(|h| h.start)?;
    let between = sent.text.get(hf.end..ht.start)?.trim();
    if between.is_empty() || between.contains([',', ';', ':', '(', ')', '"', '.', '–', '—']) {
        return None;
    }
    let mut words: Vec<String> = between.split_whitespace().map(str::to_lowercase).collect();
    while words
        .last()
        .is_some_and(|w| matches!(w.as_str(), "the" | "a" | "an") || is_generic(w))
    {
        words.pop();
    }
    if words.is_empty() || words.len() > 4 {
        return None;
    }
    const BLOCK: &[&str] = &[
        "and", "or", "but", "the", "a", "an", "their", "its", "his", "her", "each", "every", "this", "that",
        "these", "those", "which", "who", "whom", "whose", "not", "no", "when", "while", "if", "because",
    ];
    if words.iter().any(|w| BLOCK.contains(&w.as_str())) {
        return None;
    }
    let first = &words[0];
    let verb_first = is_common_verb(first)
        || (first.len() > 4 && first.ends_with("ed"))
        || (words.len() == 1
            && first.len() > 4
            && first.ends_with('s')
            && !first.ends_with("ss")
            && !is_stopword(first));
    let copula_only = words.len() == 1
        && matches!(
            first.as_str(),
            "is" | "are" | "was" | "were" | "be" | "has" | "have" | "had"
        );
    let tail_ok = words[1..].iter().all(|w| is_stopword(w) || is_common_verb(w));
    if !verb_first || copula_only || !tail_ok {
        return None;
    }
    let label = sanitize_label(&words.join(" "));
    (!label.is_empty()).then_some(label)
}

/// Chooses up to [`MAX_NODES`] key concepts that are related to at least one other
/// chosen concept, and the edges between them: first a maximum spanning forest (so
/// every node is linked), then the strongest remaining edges.
fn choose_nodes<'a>(a: &'a Analysis, focus: &[String]) -> (Vec<usize>, Vec<&'a CoEdge>) {
    let g = &a.cooccurrence;
    let cands: Vec<usize> = super::key_concepts::choose(a, 24, focus)
        .into_iter()
        .filter(|t| g.nodes.contains(t))
        .collect();
    let linked = |t: usize, set: &[usize]| {
        g.edges
            .iter()
            .any(|e| (e.a == t && set.contains(&e.b)) || (e.b == t && set.contains(&e.a)))
    };
    let mut nodes: Vec<usize> = cands.iter().copied().filter(|&t| linked(t, &cands)).collect();
    nodes.truncate(MAX_NODES);
    // drop nodes that lost their only partner in the cut
    let kept: Vec<usize> = nodes.iter().copied().filter(|&t| linked(t, &nodes)).collect();
    let nodes = kept;
    let mut inside: Vec<&CoEdge> = g
        .edges
        .iter()
        .filter(|e| nodes.contains(&e.a) && nodes.contains(&e.b))
        .collect();
    inside.sort_by(|x, y| {
        y.weight
            .total_cmp(&x.weight)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    // Kruskal with union-find over node positions
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn root(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let pos = |t: usize| nodes.iter().position(|&n| n == t).unwrap_or(0);
    let mut tree: Vec<&CoEdge> = Vec::new();
    let mut rest: Vec<&CoEdge> = Vec::new();
    for e in inside {
        let (ra, rb) = (root(&mut parent, pos(e.a)), root(&mut parent, pos(e.b)));
        if ra != rb {
            parent[ra] = rb;
            tree.push(e);
        } else {
            rest.push(e);
        }
    }
    for e in rest {
        if tree.len() >= MAX_EDGES {
            break;
        }
        if e.weight >= 2.0 {
            tree.push(e);
        }
    }
    (nodes, tree)
}

/// Builds the concept map.
pub fn build(input: &AgentInput<'_>) -> DiagramOutput {
    let a = input.analysis;
    let focus = Analysis::focus_words(input.focus);
    let (chosen, edges_used) = choose_nodes(a, &focus);
    let id_of = |t: usize| {
        chosen
            .iter()
            .position(|&x| x == t)
            .map(|i| format!("n{}", i + 1))
            .unwrap_or_default()
    };
    let nodes: Vec<Node> = chosen
        .iter()
        .enumerate()
        .filter_map(|(i, &t)| {
            let s = a.best_sentence_for(t)?;
            let term = &a.terms[t];
            Some(Node {
                id: format!("n{}", i + 1),
                label: capitalize_first(&sanitize_label(&term.text)),
                kind: term.kind.as_str(),
                source: a.cite(s),
            })
        })
        .collect();
    let mut edges: Vec<Edge> = Vec::new();
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    for e in edges_used {
        if !seen.insert((e.a.min(e.b), e.a.max(e.b))) {
            continue;
        }
        // evidence: a sentence with linking words, else the shortest sentence
        let mut label = None;
        let mut evidence = None;
        let mut from = e.a;
        let mut to = e.b;
        for &s in &e.sentences {
            if let Some(l) = linking_words(a, s, e.a, e.b) {
                label = Some(l);
                evidence = Some(s);
                break;
            }
            if let Some(l) = linking_words(a, s, e.b, e.a) {
                label = Some(l);
                evidence = Some(s);
                from = e.b;
                to = e.a;
                break;
            }
        }
        let evidence = evidence.or_else(|| {
            e.sentences
                .iter()
                .copied()
                .min_by_key(|&s| a.sentences[s].text.len())
        });
        let Some(ev) = evidence else { continue };
        edges.push(Edge {
            from: id_of(from),
            to: id_of(to),
            label,
            weight: e.weight as u32,
            source: a.cite(ev),
        });
    }
    let title = format!(
        "Concept map: {}",
        if a.title.is_empty() { "document" } else { &a.title }
    );
    let mermaid = render(&title, &nodes, &edges);
    DiagramOutput {
        title,
        mermaid,
        nodes,
        edges,
    }
}

/// Renders nodes and edges as a Mermaid flowchart.
pub fn render(title: &str, nodes: &[Node], edges: &[Edge]) -> String {
    let mut m = String::from("flowchart TD\n");
    let _ = writeln!(
        m,
        "    %% {} (links join terms mentioned in the same sentence)",
        sanitize_label(title)
    );
    for n in nodes {
        let _ = writeln!(m, "    {}[\"{}\"]", n.id, sanitize_label(&n.label));
    }
    for e in edges {
        match &e.label {
            Some(l) => {
                let _ = writeln!(m, "    {} -->|\"{}\"| {}", e.from, sanitize_label(l), e.to);
            }
            None => {
                let _ = writeln!(m, "    {} --- {}", e.from, e.to);
            }
        }
    }
    m
}
