//! How the library ranks passages, shared by both stores so that the same document
//! and the same question give the same passages in the same order on SQLite and on
//! PostgreSQL: the words a question is searched by, the terms SQLite's FTS5
//! `porter unicode61` tokenizer makes of a text, BM25 exactly as FTS5's `bm25()`
//! computes it, cosine similarity, and reciprocal-rank fusion. Ties are broken by the
//! chunk's position in the document, never left to a database.

use std::collections::HashMap;

use learnflow_ai::doc::Chunk;
use rusqlite::{params, Connection};

use super::{LibraryError, Passage};

/// Reciprocal-rank fusion constant.
const RRF_K: f64 = 60.0;

/// Question words that find nothing worth ranking.
const STOPWORDS: &[&str] = &[
    "the", "a", "an", "of", "to", "in", "on", "and", "or", "is", "are", "was", "were", "what", "which",
    "who", "how", "why", "when", "where", "does", "do", "did", "it", "its", "this", "that", "for", "with",
    "as", "by", "be", "about", "from", "at", "can", "me", "tell",
];

/// How many hits of each kind (vector, text) are fused for the top `k`.
pub(crate) fn depth(k: usize) -> usize {
    (k * 4).max(20)
}

/// The words a question is searched by: runs of letters and digits, lowercased, longer
/// than one character, stopwords dropped, in question order (repeats kept: each is
/// one phrase of the FTS5 query, and FTS5 scores each).
pub(crate) fn query_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Cosine similarity; 0 for vectors of different lengths, empty or all-zero vectors.
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// The vector hits: most similar first, ties in document order, at most `depth`.
pub(crate) fn rank_by_similarity(mut scored: Vec<(f64, &Chunk)>, depth: usize) -> Vec<&Chunk> {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.index.cmp(&b.1.index)));
    scored.into_iter().take(depth).map(|(_, c)| c).collect()
}

/// The text hits: lowest `bm25` first (FTS5's sign: more negative is more relevant),
/// ties in document order, at most `depth`.
pub(crate) fn rank_by_bm25(mut scored: Vec<(f64, &Chunk)>, depth: usize) -> Vec<&Chunk> {
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.index.cmp(&b.1.index)));
    scored.into_iter().take(depth).map(|(_, c)| c).collect()
}

/// Reciprocal-rank fusion of the two rankings; the top `k`, best first, ties in
/// document order.
pub(crate) fn fuse(vector: &[&Chunk], text: &[&Chunk], k: usize) -> Vec<Passage> {
    let mut fused: HashMap<&str, Passage> = HashMap::new();
    for (rank, ch) in vector.iter().enumerate() {
        let p = fused.entry(&ch.id).or_insert_with(|| passage(ch));
        p.vector_rank = Some(rank + 1);
        p.score += 1.0 / (RRF_K + rank as f64 + 1.0);
    }
    for (rank, ch) in text.iter().enumerate() {
        let p = fused.entry(&ch.id).or_insert_with(|| passage(ch));
        p.text_rank = Some(rank + 1);
        p.score += 1.0 / (RRF_K + rank as f64 + 1.0);
    }
    let mut out: Vec<Passage> = fused.into_values().collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.chunk.index.cmp(&b.chunk.index))
    });
    out.truncate(k);
    out
}

fn passage(ch: &Chunk) -> Passage {
    Passage {
        chunk: ch.clone(),
        score: 0.0,
        vector_rank: None,
        text_rank: None,
    }
}

/// The longest term kept whole, in bytes: PostgreSQL's lexemes stop at 2,047 bytes.
/// Longer terms (a run of letters and digits that long) are cut on a character
/// boundary, in documents and questions alike.
pub(crate) const MAX_TERM_BYTES: usize = 2046;

/// The terms SQLite's FTS5 `porter unicode61` tokenizer makes of each text, in order:
/// exactly what the SQLite library indexes, because it is that tokenizer (run on an
/// in-memory database), not an imitation of it. PostgreSQL's own parsers and
/// stemmers (Snowball's Porter2, stopword lists, hyphenated words, numbers) split and
/// stem differently, which would find and rank other passages.
pub(crate) fn fts5_terms(texts: &[&str]) -> Result<Vec<Vec<String>>, LibraryError> {
    let fail = |e: rusqlite::Error| LibraryError::Database(format!("tokenizing text: {e}"));
    let mut out = vec![Vec::new(); texts.len()];
    if texts.is_empty() {
        return Ok(out);
    }
    let mut conn = Connection::open_in_memory().map_err(fail)?;
    conn.execute_batch(
        "CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'porter unicode61');
         CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance');",
    )
    .map_err(fail)?;
    let tx = conn.transaction().map_err(fail)?;
    {
        let mut insert = tx
            .prepare("INSERT INTO t (rowid, text) VALUES (?1, ?2)")
            .map_err(fail)?;
        for (i, text) in texts.iter().enumerate() {
            insert.execute(params![i as i64, text]).map_err(fail)?;
        }
        let mut terms = tx
            .prepare("SELECT doc, term FROM v ORDER BY doc, \"offset\"")
            .map_err(fail)?;
        let rows = terms
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(fail)?;
        for row in rows {
            let (doc, mut term) = row.map_err(fail)?;
            if term.len() > MAX_TERM_BYTES {
                let mut cut = MAX_TERM_BYTES;
                while !term.is_char_boundary(cut) {
                    cut -= 1;
                }
                term.truncate(cut);
            }
            if let Some(terms) = usize::try_from(doc).ok().and_then(|d| out.get_mut(d)) {
                terms.push(term);
            }
        }
    }
    Ok(out)
}

/// FTS5's inverse document frequency of a phrase found in `hits` of `rows` rows.
pub(crate) fn bm25_idf(rows: i64, hits: i64) -> f64 {
    let idf = (((rows - hits) as f64 + 0.5) / (hits as f64 + 0.5)).ln();
    if idf <= 0.0 {
        1e-6
    } else {
        idf
    }
}

/// FTS5's `bm25()` of a row: `idf[i]` and `freq[i]` per phrase of the query, the row's
/// size in terms and the table's average size; negative, more negative is better.
/// The arithmetic is FTS5's, in its order, so the values are the same to the bit.
pub(crate) fn bm25(idf: &[f64], freq: &[f64], size: f64, avgdl: f64) -> f64 {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    let mut score = 0.0;
    for (idf, f) in idf.iter().zip(freq) {
        score += idf * ((f * (K1 + 1.0)) / (f + K1 * (1.0 - B + B * size / avgdl)));
    }
    -score
}

/// How often `phrase` occurs in `terms` (overlapping occurrences count, as FTS5's
/// instances do); 0 for an empty phrase.
pub(crate) fn phrase_count(terms: &[String], phrase: &[String]) -> usize {
    if phrase.is_empty() || phrase.len() > terms.len() {
        return 0;
    }
    terms.windows(phrase.len()).filter(|w| *w == phrase).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words_drop_stopwords_and_single_letters() {
        assert_eq!(
            query_words("What is the Calvin cycle? (a b)"),
            ["calvin", "cycle"]
        );
        assert_eq!(query_words("cell, cell"), ["cell", "cell"]);
        assert!(query_words("what is it?").is_empty());
    }

    #[test]
    fn terms_are_fts5_porter_terms() {
        let t = fts5_terms(&[
            "Cells and photosynthesis: light-dependent reactions!",
            "",
            "Running",
        ])
        .unwrap();
        assert_eq!(
            t[0],
            ["cell", "and", "photosynthesi", "light", "depend", "reaction"]
        );
        assert!(t[1].is_empty());
        assert_eq!(t[2], ["run"]);
        let long = "x".repeat(3000);
        assert_eq!(fts5_terms(&[&long]).unwrap()[0][0].len(), MAX_TERM_BYTES);
    }

    #[test]
    fn phrases_are_counted_like_fts5_instances() {
        let terms: Vec<String> = ["a", "a", "a", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(phrase_count(&terms, &["a".into(), "a".into()]), 2);
        assert_eq!(phrase_count(&terms, &["b".into()]), 1);
        assert_eq!(phrase_count(&terms, &[]), 0);
    }

    /// BM25 computed here from the terms equals SQLite's `bm25()` to the bit.
    #[test]
    fn bm25_equals_fts5() {
        let texts = [
            "The cell wall protects the cell.",
            "Light reactions make ATP in the thylakoid membrane of the chloroplast.",
            "The Calvin cycle fixes carbon; carbon fixation needs ATP and NADPH.",
            "Cells divide. Cell division is mitosis or meiosis.",
            "Nothing here about biology at all, only words and more words.",
        ];
        let query = "cell carbon ATP thylakoid cell";
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE VIRTUAL TABLE f USING fts5(text, tokenize = 'porter unicode61')")
            .unwrap();
        for t in texts {
            c.execute("INSERT INTO f (text) VALUES (?1)", [t]).unwrap();
        }
        let words = query_words(query);
        let fts: String = words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut st = c
            .prepare("SELECT rowid - 1, bm25(f) FROM f WHERE f MATCH ?1 ORDER BY rowid")
            .unwrap();
        let expected: Vec<(i64, f64)> = st
            .query_map([fts], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(expected.len(), 4);

        let terms = fts5_terms(&texts).unwrap();
        let word_refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let phrases = fts5_terms(&word_refs).unwrap();
        let rows = terms.len() as i64;
        let avgdl = terms.iter().map(Vec::len).sum::<usize>() as f64 / rows as f64;
        let idf: Vec<f64> = phrases
            .iter()
            .map(|p| {
                bm25_idf(
                    rows,
                    terms.iter().filter(|t| phrase_count(t, p) > 0).count() as i64,
                )
            })
            .collect();
        let mut got = Vec::new();
        for (i, t) in terms.iter().enumerate() {
            let freq: Vec<f64> = phrases.iter().map(|p| phrase_count(t, p) as f64).collect();
            if freq.iter().any(|f| *f > 0.0) {
                got.push((i as i64, bm25(&idf, &freq, t.len() as f64, avgdl)));
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn similarity_ties_and_fusion_follow_document_order() {
        let ch = |i: usize| Chunk {
            id: format!("c{i}"),
            index: i,
            page: 1,
            text: String::new(),
            heading: None,
        };
        let (c0, c1, c2) = (ch(0), ch(1), ch(2));
        let v = rank_by_similarity(vec![(0.5, &c2), (0.9, &c1), (0.5, &c0)], 2);
        assert_eq!(v.iter().map(|c| c.index).collect::<Vec<_>>(), [1, 0]);
        let t = rank_by_bm25(vec![(-1.0, &c2), (-1.0, &c0), (-3.0, &c1)], 20);
        assert_eq!(t.iter().map(|c| c.index).collect::<Vec<_>>(), [1, 0, 2]);
        let fused = fuse(&v, &t, 3);
        assert_eq!(fused.iter().map(|p| p.chunk.index).collect::<Vec<_>>(), [1, 0, 2]);
        assert_eq!(fused[2].vector_rank, None);
        assert_eq!(fused[2].text_rank, Some(3));
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
    }
}
