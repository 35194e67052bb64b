//! Text primitives: tokenisation, lemma-light normalisation (a light English stemmer),
//! sentence splitting that respects abbreviations, initials and decimals, and
//! condensing a sentence for display.

use super::stopwords::is_stopword;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Letters (possibly with inner hyphens, apostrophes or digits: "light-dependent", "CO2").
    Word,
    /// Starts with a digit: "1789", "3.14", "1,000", "1920s", "18th".
    Number,
    /// Any other single non-space character.
    Punct,
}

/// A token of a text: its kind, byte span and normalised form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Word, number or punctuation.
    pub kind: TokenKind,
    /// Byte offset of the first character in the tokenised text.
    pub start: usize,
    /// Byte offset just after the last character.
    pub end: usize,
    /// Lower-cased, lightly stemmed form for words; lower-cased text otherwise.
    pub norm: String,
}

impl Token {
    /// The token's text in `source` (the string that was tokenised).
    pub fn text<'s>(&self, source: &'s str) -> &'s str {
        source.get(self.start..self.end).unwrap_or("")
    }

    /// True for a word or number token.
    pub fn is_wordlike(&self) -> bool {
        self.kind != TokenKind::Punct
    }
}

fn is_joiner(c: char) -> bool {
    matches!(c, '-' | '\'' | '’')
}

/// Splits `text` into word, number and punctuation tokens. A possessive "'s" is dropped
/// ("Robespierre's" gives "Robespierre"); inner hyphens and apostrophes stay inside
/// words; numbers keep inner "." and "," between digits and a glued suffix ("1920s").
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let byte_at = |i: usize| if i < n { chars[i].0 } else { text.len() };
    let mut out = Vec::with_capacity(n / 5 + 1);
    let mut i = 0;
    while i < n {
        let c = chars[i].1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_alphanumeric() {
            let start = i;
            let numeric = c.is_ascii_digit();
            let mut j = i + 1;
            while j < n {
                let d = chars[j].1;
                if d.is_alphanumeric() {
                    j += 1;
                    continue;
                }
                let next = chars.get(j + 1).map(|x| x.1);
                if numeric && matches!(d, '.' | ',') && next.is_some_and(|x| x.is_ascii_digit()) {
                    j += 1;
                    continue;
                }
                if is_joiner(d) && next.is_some_and(|x| x.is_alphanumeric()) {
                    // possessive 's / ’s ends the word
                    if matches!(d, '\'' | '’')
                        && matches!(next, Some('s') | Some('S'))
                        && chars.get(j + 2).is_none_or(|x| !x.1.is_alphanumeric())
                    {
                        break;
                    }
                    j += 1;
                    continue;
                }
                break;
            }
            let s = byte_at(start);
            let e = byte_at(j);
            let raw = &text[s..e];
            let kind = if numeric {
                TokenKind::Number
            } else {
                TokenKind::Word
            };
            let norm = if numeric {
                raw.to_lowercase()
            } else {
                normalize(raw)
            };
            out.push(Token {
                kind,
                start: s,
                end: e,
                norm,
            });
            // skip a possessive suffix
            if j < n
                && matches!(chars[j].1, '\'' | '’')
                && matches!(chars.get(j + 1).map(|x| x.1), Some('s') | Some('S'))
            {
                let after = chars.get(j + 2).map(|x| x.1);
                if after.is_none_or(|x| !x.is_alphanumeric()) {
                    j += 2;
                }
            }
            i = j;
            continue;
        }
        let s = byte_at(i);
        let e = byte_at(i + 1);
        out.push(Token {
            kind: TokenKind::Punct,
            start: s,
            end: e,
            norm: text[s..e].to_string(),
        });
        i += 1;
    }
    out
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

fn has_vowel(s: &str) -> bool {
    s.bytes().any(|b| is_vowel(b) || b == b'y')
}

/// Lower-cases a word and strips common inflections so that "cells"/"cell",
/// "studies"/"study", "sorting"/"sort", "stored"/"store" share one key. This is a
/// light, predictable stemmer (plural, -ing, -ed and a final -e), not a lemmatiser;
/// keys are for matching only and are never shown to a student.
pub fn normalize(word: &str) -> String {
    let lower: String = word
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == '’' { '\'' } else { c })
        .collect();
    if !lower.is_ascii() || lower.len() <= 3 || lower.bytes().any(|b| b.is_ascii_digit()) {
        return lower;
    }
    if let Some(pos) = lower.rfind('-') {
        // stem only the last part of a hyphenated compound
        let (head, tail) = lower.split_at(pos + 1);
        return format!("{head}{}", stem_light(tail));
    }
    stem_light(&lower)
}

fn stem_light(w: &str) -> String {
    let mut s = w.to_string();
    if s.len() <= 3 {
        return s;
    }
    // plurals
    if s.ends_with("sses") {
        s.truncate(s.len() - 2);
    } else if s.ends_with("ies") && s.len() > 4 {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if (s.ends_with("ches") || s.ends_with("shes") || s.ends_with("xes")) && s.len() > 4 {
        s.truncate(s.len() - 2);
    } else if s.ends_with('s')
        && !s.ends_with("ss")
        && !s.ends_with("us")
        && !s.ends_with("is")
        && !s.ends_with("ous")
        && !s.ends_with("'s")
    {
        s.truncate(s.len() - 1);
    }
    // -ing / -ed
    let mut stripped = false;
    if s.ends_with("ing") && s.len() > 5 && has_vowel(&s[..s.len() - 3]) {
        s.truncate(s.len() - 3);
        stripped = true;
    } else if s.ends_with("ied") && s.len() > 4 {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if s.ends_with("ed") && !s.ends_with("eed") && s.len() > 4 && has_vowel(&s[..s.len() - 2]) {
        s.truncate(s.len() - 2);
        stripped = true;
    }
    if stripped {
        let b = s.as_bytes();
        let l = b.len();
        if l >= 2 && b[l - 1] == b[l - 2] && !matches!(b[l - 1], b'l' | b's' | b'z') && !is_vowel(b[l - 1]) {
            s.truncate(l - 1);
        }
    }
    if s.len() > 4 && s.ends_with('e') && !s.ends_with("ee") {
        s.truncate(s.len() - 1);
    }
    s
}

/// Collapses every run of whitespace to one space and trims.
pub fn squash_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// Number of word or number tokens, counted cheaply by whitespace.
pub fn word_count(s: &str) -> usize {
    s.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// A sentence found in a text, with its byte span and flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentenceSpan {
    /// The sentence with whitespace collapsed (list markers removed).
    pub text: String,
    /// Byte offset of the sentence start in the split text.
    pub start: usize,
    /// Byte offset just after its end.
    pub end: usize,
    /// It is an item of a bulleted or numbered list.
    pub list_item: bool,
    /// A short line without final punctuation that looks like a heading or caption.
    pub heading_like: bool,
}

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "gen", "col", "capt", "lt", "sgt", "rev", "hon", "mt",
    "ft", "fig", "figs", "no", "nos", "vol", "vols", "pp", "p", "ch", "chap", "sec", "eq", "eqs", "approx",
    "ca", "c", "cf", "vs", "viz", "al", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e", "u.s", "u.k", "ed", "eds", "est", "op", "dept",
    "univ", "assn", "bros", "mme", "mlle", "messrs",
];

fn is_abbreviation(word: &str) -> bool {
    let w: String = word
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    if w.is_empty() {
        return false;
    }
    if ABBREVIATIONS.contains(&w.as_str()) {
        return true;
    }
    // a single capital letter is an initial ("J. K. Rowling", "John F. Kennedy")
    let mut cs = word.chars().filter(|c| c.is_alphanumeric());
    if let (Some(first), None) = (cs.next(), cs.next()) {
        return first.is_uppercase();
    }
    // dotted abbreviations such as "U.S" or "e.g" (segments of at most two letters)
    w.contains('.')
        && w.split('.')
            .all(|seg| seg.len() <= 2 && seg.chars().all(char::is_alphabetic))
}

fn list_marker_len(line: &str) -> Option<usize> {
    let t = line.trim_start();
    let lead = line.len() - t.len();
    for m in ["- ", "* ", "• ", "– ", "· ", "◦ ", "▪ "] {
        if t.starts_with(m) {
            return Some(lead + m.len());
        }
    }
    // "1. ", "12) ", "a) ", "(b) ", "iv. "
    let bytes = t.as_bytes();
    let mut k = 0;
    if bytes.first() == Some(&b'(') {
        k = 1;
    }
    let start = k;
    while k < bytes.len() && k - start < 4 && bytes[k].is_ascii_alphanumeric() {
        k += 1;
    }
    if k == start || k + 1 >= bytes.len() {
        return None;
    }
    let label = &t[start..k];
    let numeric = label.bytes().all(|b| b.is_ascii_digit());
    let letter = label.len() == 1 && label.bytes().all(|b| b.is_ascii_lowercase());
    let roman = label.bytes().all(|b| matches!(b, b'i' | b'v' | b'x')) && label.len() <= 4;
    if !(numeric || letter || roman) {
        return None;
    }
    let closer = bytes[k];
    if (closer == b'.' || closer == b')') && bytes[k + 1] == b' ' {
        return Some(lead + k + 2);
    }
    None
}

fn ends_with_terminal(s: &str) -> bool {
    let t =
        s.trim_end_matches(|c: char| matches!(c, '"' | '\'' | ')' | '”' | '’' | ']') || c.is_whitespace());
    t.ends_with(['.', '!', '?', ':', ';', ',', '…'])
}

/// Splits a text into sentences. Blank lines and list items always end a sentence;
/// a short line without final punctuation followed by more text is a heading-like
/// unit. Inside a paragraph a sentence ends at ".", "!" or "?" followed by space and
/// an upper-case letter, digit or opening quote, except after abbreviations ("Dr.",
/// "e.g."), initials ("J. K.") and inside decimals ("3.14").
pub fn split_sentences(text: &str) -> Vec<SentenceSpan> {
    // 1. lines with offsets
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut off = 0;
    for line in text.split('\n') {
        lines.push((off, line));
        off += line.len() + 1;
    }
    // 2. units: (start, end, list_item, heading_like)
    let mut units: Vec<(usize, usize, bool, bool)> = Vec::new();
    let mut cur: Option<(usize, usize, bool)> = None;
    let flush = |cur: &mut Option<(usize, usize, bool)>, units: &mut Vec<(usize, usize, bool, bool)>| {
        if let Some((s, e, li)) = cur.take() {
            units.push((s, e, li, false));
        }
    };
    for (idx, &(lo, line)) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush(&mut cur, &mut units);
            continue;
        }
        let line_end = lo + line.trim_end().len();
        if let Some(m) = list_marker_len(line) {
            flush(&mut cur, &mut units);
            if lo + m < line_end {
                cur = Some((lo + m, line_end, true));
            }
            continue;
        }
        let next_nonblank = lines.get(idx + 1).is_some_and(|(_, l)| !l.trim().is_empty());
        let prev_blank_or_start = cur.is_none();
        let short = trimmed.split_whitespace().count() <= 12;
        if prev_blank_or_start && short && !ends_with_terminal(trimmed) && next_nonblank {
            let start = lo + (line.len() - line.trim_start().len());
            units.push((start, line_end, false, true));
            continue;
        }
        match cur.as_mut() {
            Some((_, e, _)) => *e = line_end,
            None => cur = Some((lo + (line.len() - line.trim_start().len()), line_end, false)),
        }
    }
    flush(&mut cur, &mut units);

    // a whole paragraph that is one short line without final punctuation is a heading
    for u in units.iter_mut() {
        let t = text[u.0..u.1].trim();
        if !u.2
            && !u.3
            && !t.contains('\n')
            && t.split_whitespace().count() <= 10
            && !ends_with_terminal(t)
            && t.chars().next().is_some_and(char::is_uppercase)
        {
            u.3 = true;
        }
    }
    let mut out = Vec::new();
    for (us, ue, list_item, heading_like) in units {
        if heading_like {
            let t = squash_ws(&text[us..ue]);
            if !t.is_empty() {
                out.push(SentenceSpan {
                    text: t,
                    start: us,
                    end: ue,
                    list_item,
                    heading_like: true,
                });
            }
            continue;
        }
        split_unit(text, us, ue, list_item, &mut out);
    }
    out
}

fn split_unit(text: &str, us: usize, ue: usize, list_item: bool, out: &mut Vec<SentenceSpan>) {
    let unit = &text[us..ue];
    let chars: Vec<(usize, char)> = unit.char_indices().collect();
    let n = chars.len();
    let mut sent_start = 0usize; // char index
    let mut i = 0;
    let push = |out: &mut Vec<SentenceSpan>, a: usize, b: usize| {
        let sa = if a < n { chars[a].0 } else { unit.len() };
        let sb = if b < n { chars[b].0 } else { unit.len() };
        let raw = &unit[sa..sb];
        let t = squash_ws(raw);
        if t.chars().any(char::is_alphanumeric) {
            let lead = raw.len() - raw.trim_start().len();
            let trail = raw.len() - raw.trim_end().len();
            out.push(SentenceSpan {
                text: t,
                start: us + sa + lead,
                end: us + sb - trail,
                list_item,
                heading_like: false,
            });
        }
    };
    while i < n {
        let c = chars[i].1;
        if !matches!(c, '.' | '!' | '?' | '…') {
            i += 1;
            continue;
        }
        // extend over closing punctuation
        let mut j = i + 1;
        while j < n
            && matches!(
                chars[j].1,
                '.' | '!' | '?' | ')' | '"' | '\'' | '”' | '’' | ']' | '…'
            )
        {
            j += 1;
        }
        if j >= n {
            break;
        }
        if !chars[j].1.is_whitespace() {
            i = j;
            continue;
        }
        let mut k = j;
        while k < n && chars[k].1.is_whitespace() {
            k += 1;
        }
        if k >= n {
            break;
        }
        let next = chars[k].1;
        let starts_ok = next.is_uppercase()
            || next.is_ascii_digit()
            || matches!(next, '"' | '“' | '\'' | '‘' | '(' | '[');
        if !starts_ok {
            i = j;
            continue;
        }
        if c == '.' {
            // word before the period
            let mut b = i;
            while b > sent_start && !chars[b - 1].1.is_whitespace() && chars[b - 1].1 != '(' {
                b -= 1;
            }
            let word: String = chars[b..i].iter().map(|x| x.1).collect();
            if is_abbreviation(&word) {
                i = j;
                continue;
            }
        }
        push(out, sent_start, j);
        sent_start = k;
        i = k;
    }
    push(out, sent_start, n);
}

const LEADING_CONNECTIVES: &[&str] = &[
    "however",
    "moreover",
    "furthermore",
    "in addition",
    "additionally",
    "therefore",
    "thus",
    "also",
    "finally",
    "indeed",
    "in fact",
    "as a result",
    "consequently",
    "in other words",
    "in turn",
    "then",
    "meanwhile",
    "similarly",
    "likewise",
    "nevertheless",
    "nonetheless",
    "in short",
    "overall",
    "first",
    "second",
    "third",
    "next",
    "lastly",
    "importantly",
    "crucially",
    "in practice",
    "of course",
    "still",
    "instead",
    "hence",
];

/// Capitalises the first letter of `s`.
pub fn capitalize_first(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(f) => f.to_uppercase().chain(cs).collect(),
        None => String::new(),
    }
}

/// Makes a sentence shorter for display: drops a leading connective ("However, "),
/// and if it is longer than `max_chars` cuts it at the last clause boundary (", ",
/// "; ", " – ") in the second half of the budget, else at a word boundary, adding "…".
pub fn condense(sentence: &str, max_chars: usize) -> String {
    let mut s = squash_ws(sentence);
    let lower = s.to_lowercase();
    for c in LEADING_CONNECTIVES {
        if let Some(rest) = lower.strip_prefix(c) {
            if rest.starts_with(", ") {
                let cut = c.len() + 2;
                if s.is_char_boundary(cut) && s.len() > cut + 20 {
                    s = capitalize_first(&s[cut..]);
                }
                break;
            }
        }
    }
    truncate_chars(&s, max_chars)
}

/// Shortens `s` to at most `max_chars` characters (counting the added "…"), preferring
/// a clause boundary, then a word boundary.
pub fn truncate_chars(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    if max_chars < 2 {
        return s.chars().take(max_chars).collect();
    }
    let budget = max_chars - 1;
    let cut_byte = s.char_indices().nth(budget).map(|x| x.0).unwrap_or(s.len());
    let head = &s[..cut_byte];
    let min_clause = head.len() / 2;
    let clause = ["; ", ", ", " – ", " — ", ": "]
        .iter()
        .filter_map(|sep| head.rfind(sep))
        .filter(|&p| p >= min_clause)
        .max();
    let cut = match clause {
        Some(p) => p,
        None => head.rfind(' ').filter(|&p| p > 0).unwrap_or(head.len()),
    };
    let mut out = head[..cut]
        .trim_end_matches([',', ';', ':', ' ', '–', '—'])
        .to_string();
    out.push('…');
    out
}

/// Content words of a text: normalised word tokens that are not stopwords and have at
/// least two characters.
pub fn content_norms(text: &str) -> Vec<String> {
    tokenize(text)
        .into_iter()
        .filter(|t| t.kind != TokenKind::Punct)
        .filter(|t| {
            t.norm.chars().count() >= 2 && !is_stopword(&t.norm) && !is_stopword(&t.text(text).to_lowercase())
        })
        .map(|t| t.norm)
        .collect()
}

/// True when `needle` occurs in `haystack` ignoring case and treating any run of
/// whitespace as one space.
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    let n = squash_ws(needle).to_lowercase();
    if n.is_empty() {
        return false;
    }
    squash_ws(haystack).to_lowercase().contains(&n)
}

/// True when `needle` occurs in `haystack` as whole words (ignoring case and
/// whitespace runs): "cell" is in "the cell wall" but not in "cellular".
pub fn contains_word_ci(haystack: &str, needle: &str) -> bool {
    let n = squash_ws(needle).to_lowercase();
    if n.is_empty() {
        return false;
    }
    let h = squash_ws(haystack).to_lowercase();
    let mut from = 0;
    while let Some(p) = h[from..].find(&n) {
        let a = from + p;
        let b = a + n.len();
        let before_ok = h[..a].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let after_ok = h[b..].chars().next().is_none_or(|c| !c.is_alphanumeric());
        if before_ok && after_ok {
            return true;
        }
        from = a + h[a..].chars().next().map(char::len_utf8).unwrap_or(1);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split_sentences(s).into_iter().map(|x| x.text).collect()
    }

    #[test]
    fn splits_on_periods_but_not_abbreviations() {
        let t = "Dr. Smith met Mr. J. K. Rowling in the U.S. in 1999. It cost 3.5 million dollars! Was it worth it? Yes.";
        assert_eq!(
            texts(t),
            vec![
                "Dr. Smith met Mr. J. K. Rowling in the U.S. in 1999.",
                "It cost 3.5 million dollars!",
                "Was it worth it?",
                "Yes."
            ]
        );
    }

    #[test]
    fn eg_and_lowercase_continuations_do_not_split() {
        let t =
            "Some sorts, e.g. Merge sort, are stable. Others, i.e. quicksort, are not. See p. 4 for details.";
        assert_eq!(texts(t).len(), 3);
    }

    #[test]
    fn headings_and_lists_are_units() {
        let t = "The Three Estates\nFrench society was divided into three orders:\n- the clergy\n- the nobility\n- the commoners\n\nNext paragraph here.";
        let s = split_sentences(t);
        assert!(s[0].heading_like);
        assert_eq!(s[1].text, "French society was divided into three orders:");
        assert!(s[2].list_item && s[2].text == "the clergy");
        assert_eq!(s.len(), 6);
        for x in &s {
            assert_eq!(squash_ws(&t[x.start..x.end]).trim_start_matches("- "), x.text);
        }
    }

    #[test]
    fn stems_are_light_and_consistent() {
        assert_eq!(normalize("Cells"), normalize("cell"));
        assert_eq!(normalize("studies"), "study");
        assert_eq!(normalize("processes"), "process");
        assert_eq!(normalize("sorting"), normalize("sort"));
        assert_eq!(normalize("stored"), normalize("store"));
        assert_eq!(normalize("running"), "run");
        assert_eq!(normalize("analysis"), "analysis");
        assert_eq!(normalize("light-dependent"), "light-dependent");
    }

    #[test]
    fn tokenizer_handles_possessives_numbers_and_hyphens() {
        let t = "Robespierre's Committee met 3.14 times in the 1920s; light-dependent, 1,000.";
        let toks = tokenize(t);
        let words: Vec<&str> = toks.iter().map(|x| x.text(t)).collect();
        assert_eq!(
            words,
            vec![
                "Robespierre",
                "Committee",
                "met",
                "3.14",
                "times",
                "in",
                "the",
                "1920s",
                ";",
                "light-dependent",
                ",",
                "1,000",
                "."
            ]
        );
    }

    #[test]
    fn condense_drops_connectives_and_cuts_at_clauses() {
        assert_eq!(
            condense("However, the king refused to accept the reforms.", 200),
            "The king refused to accept the reforms."
        );
        let long = "The assembly met in the tennis court, where the deputies swore an oath, and they promised not to separate until a constitution was written";
        let c = condense(long, 80);
        assert!(c.chars().count() <= 80, "{c}");
        assert!(c.ends_with('…'));
    }

    #[test]
    fn word_containment() {
        assert!(contains_word_ci("The Cell wall", "cell"));
        assert!(!contains_word_ci("cellular respiration", "cell"));
        assert!(contains_ci("A  French\nRevolution", "french revolution"));
    }
}
