//! Test helpers: load the text fixtures into a `DocumentText`, cut it into chunks
//! (a simple stand-in for the pipeline's chunker), generate a large synthetic
//! document, and validate JSON against a schema.
#![allow(dead_code)]

use learnflow_ai::doc::{Chunk, DocumentText, PageText};

/// Names of the fixtures in tests/fixtures (without ".txt").
pub const FIXTURES: [&str; 3] = ["french_revolution", "photosynthesis", "sorting"];

/// Reads a fixture: "Title: …" then pages separated by "=== page ===" lines; lines
/// starting with '#' are headings (kept in the page text without the hashes).
pub fn parse_fixture(src: &str) -> DocumentText {
    let mut title = String::new();
    let mut pages: Vec<PageText> = Vec::new();
    let mut cur: Option<PageText> = None;
    for line in src.lines() {
        if let Some(t) = line.strip_prefix("Title: ") {
            title = t.trim().to_string();
            continue;
        }
        if line.starts_with("=== page") {
            if let Some(p) = cur.take() {
                pages.push(p);
            }
            cur = Some(PageText {
                number: pages.len() as u32 + 1,
                text: String::new(),
                headings: Vec::new(),
            });
            continue;
        }
        let Some(p) = cur.as_mut() else { continue };
        if line.starts_with('#') {
            let h = line.trim_start_matches('#').trim().to_string();
            p.headings.push(h.clone());
            p.text.push_str(&h);
        } else {
            p.text.push_str(line);
        }
        p.text.push('\n');
    }
    if let Some(p) = cur.take() {
        pages.push(p);
    }
    for p in pages.iter_mut() {
        p.text = p.text.trim().to_string();
    }
    DocumentText { title, pages }
}

/// Loads a fixture by name.
pub fn load(name: &str) -> DocumentText {
    let path = format!("{}/tests/fixtures/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    parse_fixture(&src)
}

/// Cuts pages into chunks of about `target` characters at paragraph boundaries
/// (long paragraphs at sentence boundaries). Each chunk is a trimmed substring of its
/// page; its heading is the last heading line at or before its start.
pub fn chunk_document(doc: &DocumentText, target: usize) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    let mut heading: Option<String> = None;
    for page in &doc.pages {
        let text = &page.text;
        // paragraph spans
        let mut paras: Vec<(usize, usize)> = Vec::new();
        let mut start: Option<usize> = None;
        let mut off = 0;
        for line in text.split('\n') {
            let end = off + line.len();
            if line.trim().is_empty() {
                if let Some(s) = start.take() {
                    paras.push((s, off.saturating_sub(1).max(s)));
                }
            } else if start.is_none() {
                start = Some(off);
            }
            off = end + 1;
        }
        if let Some(s) = start {
            paras.push((s, text.len()));
        }
        // split long paragraphs at sentence ends
        let mut pieces: Vec<(usize, usize)> = Vec::new();
        for (s, e) in paras {
            let mut a = s;
            while e - a > target + target / 4 {
                let window = &text[a..(a + target).min(e)];
                match window.rfind(". ") {
                    Some(p) if p > target / 3 => {
                        pieces.push((a, a + p + 1));
                        a = a + p + 2;
                    }
                    _ => break,
                }
            }
            pieces.push((a, e));
        }
        // group pieces
        let mut group: Option<(usize, usize)> = None;
        let mut groups: Vec<(usize, usize)> = Vec::new();
        for (s, e) in pieces {
            let piece = &text[s..e];
            let is_heading = page.headings.iter().any(|h| h == piece.trim());
            match group {
                None => group = Some((s, e)),
                Some((gs, ge)) => {
                    let g_is_heading = page.headings.iter().any(|h| h == text[gs..ge].trim());
                    if is_heading || (e - gs > target && !g_is_heading) {
                        groups.push((gs, ge));
                        group = Some((s, e));
                    } else {
                        group = Some((gs, e));
                    }
                }
            }
        }
        if let Some(g) = group {
            groups.push(g);
        }
        for (s, e) in groups {
            let raw = &text[s..e];
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            // headings inside this chunk: the first one at its start becomes its heading
            if let Some(first) = trimmed.lines().next() {
                if page.headings.iter().any(|h| h == first.trim()) {
                    heading = Some(first.trim().to_string());
                }
            }
            let id = out.len();
            out.push(Chunk {
                id: format!("c{id}"),
                index: id,
                page: page.number,
                text: trimmed.to_string(),
                heading: heading.clone(),
            });
            // a heading later in the chunk applies to the next chunks
            for line in trimmed.lines().skip(1) {
                if page.headings.iter().any(|h| h == line.trim()) {
                    heading = Some(line.trim().to_string());
                }
            }
        }
    }
    out
}

/// The same document without any heading (headings removed from text and lists).
pub fn without_headings(doc: &DocumentText) -> DocumentText {
    let mut d = doc.clone();
    for p in d.pages.iter_mut() {
        let lines: Vec<&str> = p
            .text
            .lines()
            .filter(|l| !p.headings.iter().any(|h| h == l.trim()))
            .collect();
        p.text = lines.join("\n").trim().to_string();
        p.headings.clear();
    }
    d
}

/// A deterministic synthetic document of `pages` pages of about 500 words each, with
/// headings, definitions, dates, lists and examples.
pub fn synthetic(pages: usize) -> DocumentText {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| -> usize {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let concepts = [
        "membrane transport",
        "signal cascade",
        "enzyme kinetics",
        "protein folding",
        "gene expression",
        "cell division",
        "energy budget",
        "trade policy",
        "market equilibrium",
        "price elasticity",
        "monetary policy",
        "fiscal deficit",
        "heat engine",
        "entropy",
        "wave interference",
        "orbital motion",
        "data structure",
        "hash table",
        "binary tree",
        "graph traversal",
        "feudal system",
        "trade route",
        "city state",
        "river valley",
        "coastal erosion",
        "plate tectonics",
        "volcanic arc",
        "ocean current",
    ];
    let people = [
        "Ada Lovelace",
        "Henri Poincaré",
        "Marie Curie",
        "Ibn Sina",
        "Emmy Noether",
        "Alan Turing",
        "Rosalind Franklin",
        "Adam Smith",
    ];
    let places = [
        "Vienna",
        "Cairo",
        "Lisbon",
        "Kyoto",
        "Edinburgh",
        "Samarkand",
        "Bologna",
        "Quito",
    ];
    let verbs = [
        "shapes",
        "limits",
        "explains",
        "drives",
        "depends on",
        "balances",
        "controls",
        "reflects",
    ];
    let adjs = [
        "central",
        "gradual",
        "measurable",
        "complex",
        "stable",
        "local",
        "global",
        "repeated",
    ];
    let mut pages_out = Vec::new();
    for p in 0..pages {
        let mut text = String::new();
        let mut headings = Vec::new();
        let h = format!("Part {}: {}", p + 1, concepts[next(concepts.len())]);
        headings.push(h.clone());
        text.push_str(&h);
        text.push_str("\n\n");
        let mut words = 0;
        let mut para = 0;
        while words < 480 {
            let c1 = concepts[next(concepts.len())];
            let c2 = concepts[next(concepts.len())];
            let s = match next(9) {
                0 => format!(
                    "The {c1} is a {} process that {} the {c2} in most settings. ",
                    adjs[next(adjs.len())],
                    verbs[next(verbs.len())]
                ),
                1 => format!(
                    "In {} {} described how the {c1} {} the {c2}. ",
                    1500 + next(500),
                    people[next(people.len())],
                    verbs[next(verbs.len())]
                ),
                2 => format!(
                    "Researchers in {} showed that the {c1} {} the {c2}, for example in long studies. ",
                    places[next(places.len())],
                    verbs[next(verbs.len())]
                ),
                3 => format!(
                    "Three factors matter here: the {c1}, the {c2} and the {}. ",
                    concepts[next(concepts.len())]
                ),
                4 => format!(
                    "Because the {c1} is {}, the {c2} changes slowly over time. ",
                    adjs[next(adjs.len())]
                ),
                5 => format!(
                    "On {} March {} a meeting in {} discussed the {c1}. ",
                    1 + next(28),
                    1600 + next(400),
                    places[next(places.len())]
                ),
                6 => format!(
                    "The {c1} refers to the way a system {} the {c2} under pressure. ",
                    verbs[next(verbs.len())]
                ),
                7 => format!("Many textbooks link the {c1} with the {c2}, such as in models of change. "),
                _ => format!(
                    "{} argued that the {c1} {} the {c2}. ",
                    people[next(people.len())],
                    verbs[next(verbs.len())]
                ),
            };
            words += s.split_whitespace().count();
            text.push_str(&s);
            para += 1;
            if para % 5 == 0 {
                text.push_str("\n\n");
            }
        }
        pages_out.push(PageText {
            number: p as u32 + 1,
            text: text.trim().to_string(),
            headings,
        });
    }
    DocumentText {
        title: "Synthetic survey".into(),
        pages: pages_out,
    }
}

/// Validates `value` against a JSON Schema given as text; returns all error messages.
pub fn schema_errors(schema: &str, value: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = match serde_json::from_str(schema) {
        Ok(s) => s,
        Err(e) => return vec![format!("schema is not JSON: {e}")],
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => return vec![format!("schema does not compile: {e}")],
    };
    validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Collapses whitespace and lower-cases.
pub fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}
