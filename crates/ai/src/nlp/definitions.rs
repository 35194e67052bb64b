//! Definition sentences: "X is a/an/the …", "X refers to …", "X is defined as …",
//! "X means …", "… is called X", "X, also called Y, …" and glossary-style lines
//! "X: …". Every match keeps the term exactly as it is written in the sentence, so a
//! term always occurs literally in the sentence (and so in its chunk).

use serde::Serialize;

use super::stopwords::{is_common_verb, is_generic, is_stopword};
use super::text::{capitalize_first, word_count};

/// Which pattern matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefinitionPattern {
    /// "X is a/an/the …", "X are … that …".
    Copula,
    /// "X refers to …".
    RefersTo,
    /// "X is defined as …".
    DefinedAs,
    /// "X means …", "X denotes …", "X stands for …".
    Means,
    /// "… is called X", "… is known as X".
    Called,
    /// "X, also called Y, …".
    AlsoCalled,
    /// "X: …" or "X – …" (a glossary-style line).
    Colon,
}

/// A definition found in one sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefinitionMatch {
    /// The defined term exactly as written (determiner removed).
    pub term: String,
    /// Byte offset of the term in the sentence.
    pub term_start: usize,
    /// What the sentence says the term is (capitalised, without final period).
    pub definition: String,
    /// Another name given for the term ("also called Y").
    pub alias: Option<String>,
    /// The pattern that matched.
    pub pattern: DefinitionPattern,
}

const PRONOUN_HEADS: &[&str] = &[
    "this",
    "that",
    "these",
    "those",
    "it",
    "there",
    "he",
    "she",
    "they",
    "we",
    "you",
    "i",
    "one",
    "each",
    "what",
    "which",
    "who",
    "such",
    "here",
    "both",
    "all",
    "some",
    "any",
    "another",
    "its",
    "their",
    "his",
    "her",
    "our",
    "my",
    "your",
    "everything",
    "nothing",
    "something",
    "none",
    "most",
    "many",
    "few",
];

const BAD_PREDICATE_SECOND: &[&str] = &[
    "most", "best", "worst", "same", "opposite", "case", "reason", "result", "answer", "main", "only",
    "first", "last", "second", "third", "more", "less", "better", "worse", "key", "problem", "point", "idea",
];

const DETERMINERS: &[&str] = &["the ", "a ", "an ", "The ", "A ", "An "];

/// Strips a leading determiner; returns the rest and how many bytes were removed.
fn strip_det(s: &str) -> (&str, usize) {
    for d in DETERMINERS {
        if let Some(rest) = s.strip_prefix(d) {
            return (rest, d.len());
        }
    }
    (s, 0)
}

/// True when `term` looks like a name for something: 1–6 words, not a pronoun, no
/// common verb, head word not generic, at most 60 characters.
pub fn is_term_like(term: &str) -> bool {
    let words: Vec<&str> = term.split_whitespace().collect();
    if words.is_empty() || words.len() > 6 || term.chars().count() > 60 {
        return false;
    }
    if !term.chars().next().is_some_and(char::is_alphanumeric) || !term.chars().any(char::is_alphabetic) {
        return false;
    }
    if term.contains([',', ';', ':', '(', ')', '"', '“', '”', '?', '!']) {
        return false;
    }
    let lw: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    if PRONOUN_HEADS.contains(&lw[0].as_str()) || is_stopword(&lw[0]) || is_generic(&lw[0]) {
        return false;
    }
    let last = lw[lw.len() - 1].as_str();
    if is_stopword(last) || is_generic(last) {
        return false;
    }
    for w in &lw {
        if is_common_verb(w)
            && !matches!(
                w.as_str(),
                "sort"
                    | "merge"
                    | "form"
                    | "rule"
                    | "power"
                    | "place"
                    | "work"
                    | "set"
                    | "store"
                    | "split"
                    | "run"
                    | "pass"
                    | "check"
                    | "act"
                    | "end"
                    | "start"
                    | "vote"
                    | "fall"
                    | "rise"
                    | "swap"
                    | "help"
                    | "use"
            )
        {
            return false;
        }
        if is_stopword(w) && !matches!(w.as_str(), "of" | "the" | "and" | "de" | "for" | "in") {
            return false;
        }
    }
    true
}

fn find_word(hay: &str, needle: &str, from: usize) -> Option<usize> {
    // needle includes surrounding spaces, e.g. " is "
    hay.get(from..)?.find(needle).map(|p| p + from)
}

fn clean_def(s: &str) -> String {
    let t = s.trim().trim_end_matches(['.', ';', ':', ',', '!']).trim();
    capitalize_first(t)
}

fn intro_offsets(s: &str) -> Vec<usize> {
    let mut v = vec![0];
    if let Some(p) = s.find(", ") {
        let head = &s[..p];
        let hw = head.split_whitespace().count();
        let starts = [
            "In ",
            "Formally",
            "Simply",
            "Technically",
            "Broadly",
            "Put simply",
            "Strictly",
            "Informally",
            "Biologically",
            "Historically",
            "Put another way",
            "In short",
        ];
        if hw <= 5 && starts.iter().any(|x| head.starts_with(x)) {
            v.push(p + 2);
        }
    }
    v
}

/// Looks for a definition in one sentence.
pub fn find_definition(sentence: &str) -> Option<DefinitionMatch> {
    let s = sentence.trim();
    if word_count(s) < 5 || s.ends_with('?') {
        return None;
    }
    for off in intro_offsets(s) {
        if let Some(m) = match_at(s, off) {
            return Some(m);
        }
    }
    None
}

fn subject_term(s: &str, off: usize, end: usize) -> Option<(String, usize)> {
    let raw = s.get(off..end)?;
    let (t, mut cut) = strip_det(raw.trim_start());
    let lead = raw.len() - raw.trim_start().len();
    let mut t = t.trim_end();
    for p in ["term ", "word ", "concept ", "phrase "] {
        if let Some(rest) = t.strip_prefix(p) {
            cut += p.len();
            t = rest.trim_start_matches(['"', '“', '\'']);
            cut += rest.len() - t.len();
            t = t.trim_end_matches(['"', '”', '\'']);
            break;
        }
    }
    if !is_term_like(t) {
        return None;
    }
    Some((t.to_string(), off + lead + cut))
}

fn match_at(s: &str, off: usize) -> Option<DefinitionMatch> {
    // D: "X, also called Y, rest"
    for marker in [", also called ", ", also known as ", ", also termed ", ", or "] {
        if let Some(p) = find_word(s, marker, off) {
            if let Some((term, ts)) = subject_term(s, off, p) {
                let after = p + marker.len();
                if let Some(q) = s[after..].find(", ") {
                    let alias_raw = &s[after..after + q];
                    let (alias, _) = strip_det(alias_raw);
                    let rest = &s[after + q + 2..];
                    if is_term_like(alias)
                        && word_count(rest) >= 3
                        && (marker != ", or " || word_count(alias) <= 3)
                    {
                        let rest_clean = rest.trim_start_matches("is ").trim_start_matches("are ");
                        return Some(DefinitionMatch {
                            term,
                            term_start: ts,
                            definition: clean_def(rest_clean),
                            alias: Some(alias.to_string()),
                            pattern: DefinitionPattern::AlsoCalled,
                        });
                    }
                }
            }
        }
    }
    // B: explicit definers
    let definers: [(&str, DefinitionPattern); 11] = [
        (" refers to ", DefinitionPattern::RefersTo),
        (" refer to ", DefinitionPattern::RefersTo),
        (" is defined as ", DefinitionPattern::DefinedAs),
        (" are defined as ", DefinitionPattern::DefinedAs),
        (" can be defined as ", DefinitionPattern::DefinedAs),
        (" may be defined as ", DefinitionPattern::DefinedAs),
        (" is the term for ", DefinitionPattern::DefinedAs),
        (" means ", DefinitionPattern::Means),
        (" denotes ", DefinitionPattern::Means),
        (" stands for ", DefinitionPattern::Means),
        (" is short for ", DefinitionPattern::Means),
    ];
    for (marker, pat) in definers {
        if let Some(p) = find_word(s, marker, off) {
            if let Some((term, ts)) = subject_term(s, off, p) {
                let pred = &s[p + marker.len()..];
                if word_count(pred) >= 3 && !pred.starts_with("that ") {
                    return Some(DefinitionMatch {
                        term,
                        term_start: ts,
                        definition: clean_def(pred),
                        alias: None,
                        pattern: pat,
                    });
                }
            }
        }
    }
    // C: "… is called X" (X at the end of the sentence or clause)
    for marker in [
        " is called ",
        " are called ",
        " is known as ",
        " are known as ",
        " is termed ",
        " are termed ",
        " is referred to as ",
        " are referred to as ",
        " was called ",
        " was known as ",
    ] {
        if let Some(p) = find_word(s, marker, off) {
            let head = &s[off..p];
            if word_count(head) < 3 || head.contains(", ") {
                continue;
            }
            let after = p + marker.len();
            let tail = &s[after..];
            let end = tail.find([',', ';', '.', '(', ':']).unwrap_or(tail.len());
            let raw_term = tail[..end].trim();
            let (term, cut) = strip_det(raw_term);
            let term = term.trim_end();
            let rest_after = tail[end..].trim_start_matches(['.', ' ']);
            let clause_end = tail[end..].starts_with([',', ';']);
            let lower_head = head.to_lowercase();
            let head_first = lower_head.split_whitespace().next().unwrap_or("");
            if is_term_like(term)
                && (rest_after.is_empty() || clause_end)
                && !PRONOUN_HEADS.contains(&head_first)
            {
                let ts = after + (tail[..end].len() - tail[..end].trim_start().len()) + cut;
                return Some(DefinitionMatch {
                    term: term.to_string(),
                    term_start: ts,
                    definition: clean_def(head),
                    alias: None,
                    pattern: DefinitionPattern::Called,
                });
            }
        }
    }
    // A: copula
    let mut best: Option<(usize, &str)> = None;
    for cop in [" is ", " are ", " was ", " were "] {
        if let Some(p) = find_word(s, cop, off) {
            if best.is_none_or(|(bp, _)| p < bp) {
                best = Some((p, cop));
            }
        }
    }
    if let Some((p, cop)) = best {
        if let Some((term, ts)) = subject_term(s, off, p) {
            let pred = &s[p + cop.len()..];
            let pl = pred.to_lowercase();
            let words: Vec<&str> = pl.split_whitespace().collect();
            if words.len() >= 4 {
                let det_start = matches!(words[0], "a" | "an" | "the" | "any") || pl.starts_with("one of ");
                let second_ok =
                    !BAD_PREDICATE_SECOND.contains(&words[1].trim_matches(|c: char| !c.is_alphanumeric()));
                let plural_ok = matches!(cop, " are " | " were ")
                    && !is_stopword(words[0])
                    && !is_common_verb(words[0])
                    && !words[0].ends_with("ly")
                    && !words[0].ends_with("ed")
                    && words
                        .iter()
                        .take(8)
                        .any(|w| matches!(*w, "that" | "which" | "who" | "where" | "of" | "used" | "in"));
                if (det_start && second_ok) || plural_ok {
                    return Some(DefinitionMatch {
                        term,
                        term_start: ts,
                        definition: clean_def(pred),
                        alias: None,
                        pattern: DefinitionPattern::Copula,
                    });
                }
            }
        }
    }
    // C2: "… a sugar called RuBP." at the end of the sentence: the sentence is the definition
    for marker in [" called ", " known as ", " termed "] {
        if let Some(p) = s.rfind(marker) {
            if p < off || word_count(&s[off..p]) < 4 {
                continue;
            }
            let tail = &s[p + marker.len()..];
            let raw_term = tail.trim_end_matches(['.', '!']).trim();
            let (term, cut) = strip_det(raw_term);
            if is_term_like(term)
                && !tail.trim_end_matches(['.', '!']).contains([',', ';'])
                && word_count(term) <= 4
            {
                return Some(DefinitionMatch {
                    term: term.to_string(),
                    term_start: p + marker.len() + (tail.len() - tail.trim_start().len()) + cut,
                    definition: clean_def(&s[off..]),
                    alias: None,
                    pattern: DefinitionPattern::Called,
                });
            }
        }
    }
    // E: "Term: definition" / "Term – definition"
    for sep in [": ", " – ", " — ", " - "] {
        if let Some(p) = s[off..].find(sep).map(|x| x + off) {
            let head = &s[off..p];
            let rest = &s[p + sep.len()..];
            if word_count(head) <= 5 && word_count(rest) >= 4 {
                let (t, cut) = strip_det(head.trim());
                if is_term_like(t) && !t.to_lowercase().starts_with("note") {
                    return Some(DefinitionMatch {
                        term: t.to_string(),
                        term_start: off + (head.len() - head.trim_start().len()) + cut,
                        definition: clean_def(rest),
                        alias: None,
                        pattern: DefinitionPattern::Colon,
                    });
                }
            }
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(s: &str) -> Option<(String, String, DefinitionPattern)> {
        find_definition(s).map(|m| {
            assert_eq!(&s[m.term_start..m.term_start + m.term.len()], m.term);
            (m.term, m.definition, m.pattern)
        })
    }

    #[test]
    fn copula_definitions() {
        let (t, d, p) =
            td("Photosynthesis is the process by which plants convert light into chemical energy.").unwrap();
        assert_eq!(t, "Photosynthesis");
        assert_eq!(
            d,
            "The process by which plants convert light into chemical energy"
        );
        assert_eq!(p, DefinitionPattern::Copula);
        let (t, _, _) = td("A chloroplast is an organelle found in the cells of plants.").unwrap();
        assert_eq!(t, "chloroplast");
        let (t, _, _) = td("Chloroplasts are organelles that capture light energy in plant cells.").unwrap();
        assert_eq!(t, "Chloroplasts");
        let (t, _, _) = td("In biology, a cell is the basic unit of all living things.").unwrap();
        assert_eq!(t, "cell");
    }

    #[test]
    fn other_patterns() {
        assert_eq!(
            td("The term sans-culottes refers to the urban working people of Paris.")
                .unwrap()
                .0,
            "sans-culottes"
        );
        assert_eq!(
            td("Sans-culottes refers to the urban working people of Paris.")
                .unwrap()
                .0,
            "Sans-culottes"
        );
        assert_eq!(
            td("A stable sort is defined as one that keeps equal keys in order.")
                .unwrap()
                .0,
            "stable sort"
        );
        assert_eq!(
            td("The process by which plants make their own food is called photosynthesis.")
                .unwrap()
                .0,
            "photosynthesis"
        );
        let m = find_definition(
            "The Calvin cycle, also called the light-independent reactions, takes place in the stroma.",
        )
        .unwrap();
        assert_eq!(m.term, "Calvin cycle");
        assert_eq!(m.alias.as_deref(), Some("light-independent reactions"));
        assert_eq!(
            td("Bubble sort: repeatedly swaps adjacent elements that are out of order.")
                .unwrap()
                .0,
            "Bubble sort"
        );
    }

    #[test]
    fn rejects_non_definitions() {
        assert!(td("This is a very important point for the exam.").is_none());
        assert!(td("It was the most violent period of the revolution.").is_none());
        assert!(td("The result is the same for both lists of items.").is_none());
        assert!(td("What is photosynthesis and why is it important?").is_none());
        assert!(td("The king was executed in January 1793 after a trial.").is_none());
    }
}
