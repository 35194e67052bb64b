//! Classic, offline NLP for study materials. This module owns everything that reads
//! the text: sentence splitting and tokenisation ([`text`]), word lists
//! ([`stopwords`]), TF-IDF over chunks ([`tfidf`]), TextRank ([`rank`]), terms,
//! their kinds and keyphrase scores ([`terms`]), definition sentences
//! ([`definitions`]), date expressions ([`dates`]), term co-occurrence ([`cooccur`])
//! and document structure, examples and lists ([`structure`]).
//!
//! [`Analysis::new`] runs all of it once per document; agents only read the result.
//! Everything is deterministic: the same input gives the same analysis.

pub mod cooccur;
pub mod dates;
pub mod definitions;
pub mod rank;
pub mod stopwords;
pub mod structure;
pub mod terms;
pub mod text;
pub mod tfidf;

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::doc::{Chunk, Citation, DocumentText};

pub use cooccur::{CoEdge, CoGraph};
pub use dates::{DateExpr, DatePrecision};
pub use definitions::DefinitionPattern;
pub use structure::{ExampleMention, ListMention, Section};
pub use terms::{Term, TermHit, TermKind};
pub use text::{Token, TokenKind};
pub use tfidf::{SparseVec, TfIdf};

/// A sentence of the document with where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    /// Position in `Analysis::sentences`.
    pub index: usize,
    /// Id of the chunk it is in ("c3").
    pub chunk: String,
    /// Position of that chunk in `Analysis::chunks`.
    pub chunk_index: usize,
    /// Page number.
    pub page: u32,
    /// The sentence, whitespace collapsed (a substring of the chunk up to whitespace).
    pub text: String,
    /// Tokens of `text`.
    pub tokens: Vec<Token>,
    /// An item of a bulleted or numbered list.
    pub list_item: bool,
    /// Probably cut by a chunk boundary (starts in lower case or lacks final punctuation).
    pub fragment: bool,
    /// Index into `Analysis::sections`.
    pub section: usize,
    /// Number of words.
    pub words: usize,
}

impl Sentence {
    /// Where the sentence comes from.
    pub fn citation(&self) -> Citation {
        Citation {
            chunk: self.chunk.clone(),
            page: self.page,
        }
    }

    /// A full sentence that reads well alone: not a fragment, not a list item, 6–60 words.
    pub fn is_good(&self) -> bool {
        !self.fragment && !self.list_item && (6..=60).contains(&self.words) && !self.text.ends_with('?')
    }
}

/// A definition found in the document.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    /// The term as written in the sentence.
    pub term: String,
    /// Normalised key of the term (same scheme as `Term::key`).
    pub key: String,
    /// What the term is, capitalised ("The process by which …").
    pub definition: String,
    /// Another name the sentence gives ("also called …").
    pub alias: Option<String>,
    /// Which pattern matched.
    pub pattern: DefinitionPattern,
    /// Sentence index.
    pub sentence: usize,
    /// Index into `Analysis::terms`.
    pub term_index: Option<usize>,
}

/// A date expression in a sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct DateMention {
    /// The expression with its key and precision.
    pub expr: DateExpr,
    /// Sentence index.
    pub sentence: usize,
}

/// Everything the local agents need to know about one document, computed once.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Document title.
    pub title: String,
    /// Number of pages.
    pub page_count: usize,
    /// Words in the analysed sentences.
    pub word_count: usize,
    /// The chunks the analysis was built from (copied; citations refer to them).
    pub chunks: Vec<Chunk>,
    /// Sentence index range of each chunk (same order as `chunks`).
    pub chunk_sentences: Vec<Range<usize>>,
    /// All sentences in reading order (heading lines excluded).
    pub sentences: Vec<Sentence>,
    /// TextRank importance of each sentence (≥ 0, larger is more central).
    pub sentence_scores: Vec<f64>,
    /// TF-IDF statistics over chunks.
    pub tfidf: TfIdf,
    /// TF-IDF vector of each sentence.
    pub sentence_vectors: Vec<SparseVec>,
    /// All terms (names, concepts, dates, numbers).
    pub terms: Vec<Term>,
    /// Term occurrences per sentence.
    pub hits: Vec<Vec<TermHit>>,
    /// Keyphrases: indices into `terms`, best first.
    pub keyphrases: Vec<usize>,
    /// Definitions, one per term, in document order.
    pub definitions: Vec<Definition>,
    /// Date expressions in document order (life spans excluded).
    pub dates: Vec<DateMention>,
    /// Co-occurrence graph of the top keyphrases.
    pub cooccurrence: CoGraph,
    /// Sections (from headings or derived).
    pub sections: Vec<Section>,
    /// Headings of the document with their page, in order.
    pub headings: Vec<(String, u32)>,
    /// Example sentences.
    pub examples: Vec<ExampleMention>,
    /// Lists of 3+ items.
    pub lists: Vec<ListMention>,
    chunk_by_id: HashMap<String, usize>,
}

/// How many keyphrases become nodes of the co-occurrence graph.
const GRAPH_NODES: usize = 40;

impl Analysis {
    /// Analyses a document given its chunks. Cost is roughly linear in the text, plus
    /// a pairwise sentence comparison (bounded to a window on very long documents).
    pub fn new(doc: &DocumentText, chunks: &[Chunk]) -> Analysis {
        let heading_set: HashSet<String> = doc
            .pages
            .iter()
            .flat_map(|p| p.headings.iter())
            .map(|h| text::squash_ws(h).to_lowercase())
            .collect();
        let headings: Vec<(String, u32)> = doc
            .pages
            .iter()
            .flat_map(|p| p.headings.iter().map(move |h| (text::squash_ws(h), p.number)))
            .collect();

        // 1. sentences
        let mut sentences: Vec<Sentence> = Vec::new();
        let mut chunk_sentences = Vec::with_capacity(chunks.len());
        for (ci, c) in chunks.iter().enumerate() {
            let start = sentences.len();
            let spans = text::split_sentences(&c.text);
            let last = spans.len().saturating_sub(1);
            for (k, sp) in spans.into_iter().enumerate() {
                let line_start = c.text[..sp.start].rfind('\n').map(|p| p + 1).unwrap_or(0);
                let line = text::squash_ws(&c.text[line_start..sp.end]).to_lowercase();
                if sp.heading_like
                    || heading_set.contains(&sp.text.to_lowercase())
                    || heading_set.contains(&line)
                {
                    continue;
                }
                let first_alpha = sp.text.chars().find(|ch| ch.is_alphabetic());
                let starts_lower = first_alpha.is_some_and(char::is_lowercase)
                    && sp.text.chars().next().is_some_and(|ch| ch.is_alphabetic());
                let unterminated = k == last
                    && !sp
                        .text
                        .trim_end_matches(['"', '\'', ')', '”', '’'])
                        .ends_with(['.', '!', '?', ':', '…']);
                let fragment = !sp.list_item && (starts_lower || unterminated);
                let tokens = text::tokenize(&sp.text);
                let words = tokens.iter().filter(|t| t.is_wordlike()).count();
                sentences.push(Sentence {
                    index: sentences.len(),
                    chunk: c.id.clone(),
                    chunk_index: ci,
                    page: c.page,
                    text: sp.text,
                    tokens,
                    list_item: sp.list_item,
                    fragment,
                    section: 0,
                    words,
                });
            }
            chunk_sentences.push(start..sentences.len());
        }
        let word_count = sentences.iter().map(|s| s.words).sum();

        // 2. dates
        let per_sentence_dates: Vec<Vec<DateExpr>> =
            sentences.iter().map(|s| dates::find_dates(&s.text)).collect();

        // 3. terms and hits
        let (mut terms, hits) = terms::extract_terms(&sentences, &per_sentence_dates);
        let mut all_heads: Vec<String> = headings.iter().map(|h| h.0.clone()).collect();
        all_heads.push(doc.title.clone());
        terms::mark_in_headings(&mut terms, &all_heads);

        // 4. definitions (first per key), linked to terms
        let key_index: HashMap<String, usize> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key.clone(), i))
            .collect();
        let mut definitions: Vec<Definition> = Vec::new();
        let mut defined_keys: HashSet<String> = HashSet::new();
        for (si, s) in sentences.iter().enumerate() {
            if s.fragment {
                continue;
            }
            if let Some(m) = definitions::find_definition(&s.text) {
                let key = text::tokenize(&m.term)
                    .into_iter()
                    .map(|t| t.norm)
                    .collect::<Vec<_>>()
                    .join(" ");
                if key.is_empty() || !defined_keys.insert(key.clone()) {
                    continue;
                }
                let term_index = key_index.get(&key).copied();
                if let Some(ti) = term_index {
                    terms[ti].definition = Some(definitions.len());
                    // show the term the way the definition writes it
                    let t = &mut terms[ti];
                    let all_caps = m
                        .term
                        .chars()
                        .filter(|c| c.is_alphabetic())
                        .all(char::is_uppercase);
                    t.text = if t.kind == TermKind::Concept && !all_caps && m.term_start == 0 {
                        let mut cs = m.term.chars();
                        cs.next()
                            .map(|f| f.to_lowercase().chain(cs).collect())
                            .unwrap_or_default()
                    } else if t.kind == TermKind::Concept && !all_caps && m.term_start > 0 {
                        m.term.clone()
                    } else {
                        t.text.clone()
                    };
                    t.words = t.text.split_whitespace().count();
                }
                definitions.push(Definition {
                    term: m.term,
                    key,
                    definition: m.definition,
                    alias: m.alias,
                    pattern: m.pattern,
                    sentence: si,
                    term_index,
                });
            }
        }

        // 5. tf-idf and sentence vectors
        let content: Vec<Vec<&str>> = sentences.iter().map(content_words).collect();
        let mut chunk_words: Vec<Vec<&str>> = vec![Vec::new(); chunks.len()];
        for (s, ws) in sentences.iter().zip(&content) {
            chunk_words[s.chunk_index].extend(ws.iter().copied());
        }
        let tfidf = TfIdf::build(&chunk_words);
        let sentence_vectors: Vec<SparseVec> = content
            .iter()
            .map(|ws| tfidf.vector(ws.iter().copied()))
            .collect();

        // 6. keyphrases
        let word_scores = terms::word_rank(&sentences);
        let keyphrases = terms::score_keyphrases(&mut terms, &word_scores, chunks.len());

        // 7. sentence TextRank with adjustments
        let graph = rank::sentence_graph(&sentence_vectors, 0.05, 1000);
        let pr = rank::pagerank(&graph, 40);
        let top_kp: HashSet<usize> = keyphrases.iter().take(30).copied().collect();
        let defined_sentences: HashSet<usize> = definitions.iter().map(|d| d.sentence).collect();
        let sentence_scores: Vec<f64> = sentences
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut x = pr.get(i).copied().unwrap_or(0.0);
                if s.words < 6 {
                    x *= 0.3;
                } else if s.words > 60 {
                    x *= 0.6;
                }
                if s.fragment {
                    x *= 0.3;
                }
                if s.list_item {
                    x *= 0.5;
                }
                if s.text.ends_with('?') {
                    x *= 0.5;
                }
                if defined_sentences.contains(&i) {
                    x *= 1.3;
                }
                let mut kp: Vec<usize> = hits[i]
                    .iter()
                    .map(|h| h.term)
                    .filter(|t| top_kp.contains(t))
                    .collect();
                kp.sort_unstable();
                kp.dedup();
                x * (1.0 + 0.15 * kp.len().min(3) as f64)
            })
            .collect();

        // 8. dates (no life spans), co-occurrence
        let mut date_list = Vec::new();
        for (si, ds) in per_sentence_dates.into_iter().enumerate() {
            for d in ds {
                if !d.lifespan {
                    date_list.push(DateMention {
                        expr: d,
                        sentence: si,
                    });
                }
            }
        }
        let nodes: Vec<usize> = keyphrases.iter().take(GRAPH_NODES).copied().collect();
        let cooccurrence = cooccur::build(&nodes, &hits);

        let mut a = Analysis {
            title: doc.title.clone(),
            page_count: doc.pages.len(),
            word_count,
            chunks: chunks.to_vec(),
            chunk_sentences,
            sentences,
            sentence_scores,
            tfidf,
            sentence_vectors,
            terms,
            hits,
            keyphrases,
            definitions,
            dates: date_list,
            cooccurrence,
            sections: Vec::new(),
            headings,
            examples: Vec::new(),
            lists: Vec::new(),
            chunk_by_id: chunks
                .iter()
                .enumerate()
                .map(|(i, c)| (c.id.clone(), i))
                .collect(),
        };
        a.sections = a.build_sections();
        for (k, sec) in a.sections.clone().iter().enumerate() {
            for si in sec.sentences.clone() {
                a.sentences[si].section = k;
            }
        }
        a.examples = structure::find_examples(&a.sentences);
        let titles: Vec<String> = a
            .sentences
            .iter()
            .map(|s| {
                a.sections
                    .get(s.section)
                    .map(|x| x.title.clone())
                    .unwrap_or_default()
            })
            .collect();
        a.lists = structure::find_lists(&a.sentences, |i| titles.get(i).cloned().unwrap_or_default());
        a
    }

    fn build_sections(&self) -> Vec<Section> {
        let n = self.chunks.len();
        if n == 0 {
            return Vec::new();
        }
        let has_headings = self.chunks.iter().any(|c| c.heading.is_some());
        let has_parts = self.headings.iter().any(|h| {
            let l = h.0.to_lowercase();
            l.starts_with("part ") || l.starts_with("book ")
        });
        let mut bounds: Vec<(usize, String, bool)> = Vec::new(); // (first chunk, title, derived)
        if has_headings {
            let mut prev: Option<&Option<String>> = None;
            for (i, c) in self.chunks.iter().enumerate() {
                if prev != Some(&c.heading) {
                    let title = match &c.heading {
                        Some(h) => text::squash_ws(h),
                        None => "Introduction".to_string(),
                    };
                    bounds.push((i, title, c.heading.is_none()));
                }
                prev = Some(&c.heading);
            }
        } else {
            for start in self.topic_segments() {
                bounds.push((start, String::new(), true));
            }
        }
        let mut out = Vec::new();
        for (k, (first, title, derived)) in bounds.iter().enumerate() {
            let last = bounds.get(k + 1).map(|b| b.0).unwrap_or(n);
            let s0 = self.chunk_sentences[*first].start;
            let s1 = self.chunk_sentences[last - 1].end;
            let title = if title.is_empty() {
                self.derived_title(s0..s1)
            } else {
                title.clone()
            };
            let level = if *derived {
                1
            } else {
                structure::heading_level(&title, has_parts)
            };
            out.push(Section {
                title,
                level,
                page: self.chunks[*first].page,
                last_page: self.chunks[last - 1].page,
                chunks: *first..last,
                sentences: s0..s1,
                derived: *derived,
            });
        }
        out
    }

    /// Start chunks of topic segments: a new segment where the similarity of
    /// neighbouring chunks drops clearly below the document's average.
    fn topic_segments(&self) -> Vec<usize> {
        let n = self.chunks.len();
        let vecs: Vec<SparseVec> = self
            .chunk_sentences
            .iter()
            .map(|r| {
                let mut v: SparseVec = Vec::new();
                for si in r.clone() {
                    v = tfidf::add_into(&v, &self.sentence_vectors[si]);
                }
                tfidf::normalize_vec(&mut v);
                v
            })
            .collect();
        if n < 4 {
            return vec![0];
        }
        let sims: Vec<f32> = (0..n - 1)
            .map(|i| tfidf::cosine(&vecs[i], &vecs[i + 1]))
            .collect();
        let mean = sims.iter().sum::<f32>() / sims.len() as f32;
        let var = sims.iter().map(|s| (s - mean) * (s - mean)).sum::<f32>() / sims.len() as f32;
        let cut = mean - 0.5 * var.sqrt();
        let min_len = 2.max(n / 12);
        let mut starts = vec![0];
        for (i, s) in sims.iter().enumerate() {
            let b = i + 1;
            let last = starts.last().copied().unwrap_or(0);
            let local_min = (i == 0 || sims[i - 1] >= *s) && sims.get(i + 1).is_none_or(|nx| nx >= s);
            if *s < cut && local_min && b - last >= min_len && n - b >= min_len {
                starts.push(b);
            }
        }
        starts
    }

    fn derived_title(&self, range: Range<usize>) -> String {
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for si in range {
            for h in &self.hits[si] {
                if self.terms[h.term].score > 0.0 {
                    *counts.entry(h.term).or_insert(0) += 1;
                }
            }
        }
        let mut v: Vec<(usize, f64)> = counts
            .into_iter()
            .map(|(t, c)| (t, c as f64 * (0.3 + self.terms[t].score)))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let names: Vec<String> = v
            .iter()
            .take(2)
            .map(|(t, _)| self.terms[*t].text.clone())
            .collect();
        match names.len() {
            0 => "Part of the document".to_string(),
            1 => text::capitalize_first(&names[0]),
            _ => format!("{} and {}", text::capitalize_first(&names[0]), names[1]),
        }
    }

    /// The chunk with this id.
    pub fn chunk(&self, id: &str) -> Option<&Chunk> {
        self.chunk_by_id.get(id).map(|&i| &self.chunks[i])
    }

    /// Citation of a sentence.
    pub fn cite(&self, sentence: usize) -> Citation {
        self.sentences
            .get(sentence)
            .map(Sentence::citation)
            .unwrap_or(Citation {
                chunk: String::new(),
                page: 0,
            })
    }

    /// The text of a term occurrence in a sentence, if the term occurs there.
    pub fn surface_in(&self, sentence: usize, term: usize) -> Option<&str> {
        let s = self.sentences.get(sentence)?;
        self.hits[sentence]
            .iter()
            .find(|h| h.term == term)
            .and_then(|h| s.text.get(h.start..h.end))
    }

    /// Distinct terms occurring in a sentence.
    pub fn terms_in(&self, sentence: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .hits
            .get(sentence)
            .map(|hs| hs.iter().map(|h| h.term).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The best sentence about a term: its definition sentence if any, else the
    /// highest-ranked good sentence containing it, else any sentence containing it.
    pub fn best_sentence_for(&self, term: usize) -> Option<usize> {
        let t = self.terms.get(term)?;
        if let Some(d) = t.definition {
            return Some(self.definitions[d].sentence);
        }
        let good = t
            .sentences
            .iter()
            .copied()
            .filter(|&s| self.sentences[s].is_good())
            .max_by(|&a, &b| {
                self.sentence_scores[a]
                    .total_cmp(&self.sentence_scores[b])
                    .then(b.cmp(&a))
            });
        good.or_else(|| t.sentences.first().copied())
    }

    /// Normalised content words of a focus string ("Calvin cycle, ATP" → ["calvin", "cycl", "atp"]).
    pub fn focus_words(focus: Option<&str>) -> Vec<String> {
        focus.map(text::content_norms).unwrap_or_default()
    }

    /// 1.0, or more when the sentence mentions focus words (up to 2.0).
    pub fn focus_boost(&self, sentence: usize, focus: &[String]) -> f64 {
        if focus.is_empty() {
            return 1.0;
        }
        let s = &self.sentences[sentence];
        let n = focus
            .iter()
            .filter(|f| s.tokens.iter().any(|t| &t.norm == *f))
            .count();
        1.0 + (n as f64 / focus.len() as f64).min(1.0)
    }

    /// Keyphrases as `(term index, score)`, best first.
    pub fn top_keyphrases(&self, n: usize) -> Vec<(usize, f64)> {
        self.keyphrases
            .iter()
            .take(n)
            .map(|&t| (t, self.terms[t].score))
            .collect()
    }

    /// Distinct dated sentences that are not life spans.
    pub fn dated_event_count(&self) -> usize {
        let mut seen: HashSet<(usize, i64)> = HashSet::new();
        for d in &self.dates {
            seen.insert((d.sentence, d.expr.key()));
        }
        seen.len()
    }
}

fn content_words(s: &Sentence) -> Vec<&str> {
    s.tokens
        .iter()
        .filter(|t| t.kind != TokenKind::Punct)
        .filter(|t| {
            let raw = t.text(&s.text);
            t.norm.chars().count() >= 2 && !stopwords::is_stopword(&raw.to_lowercase())
        })
        .map(|t| t.norm.as_str())
        .collect()
}
