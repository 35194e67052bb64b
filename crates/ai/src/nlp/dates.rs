//! Date and time expressions: years ("1789", "44 BC"), full dates ("14 July 1789",
//! "July 14, 1789", ISO "1789-07-14"), months ("July 1789"), decades ("the 1920s"),
//! centuries ("18th century", "the fifth century BC") and year ranges ("1789–1799"),
//! each with a sortable integer key `year * 10000 + month * 100 + day` (years before
//! the common era are negative).

use serde::Serialize;

use super::text::{tokenize, Token, TokenKind};

/// How precise a date expression is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatePrecision {
    /// A day: "14 July 1789".
    Day,
    /// A month of a year: "July 1789".
    Month,
    /// A year: "1789", "44 BC".
    Year,
    /// A range of years: "1789–1799" (keyed by its start).
    Range,
    /// A decade: "the 1920s".
    Decade,
    /// A century: "the 18th century".
    Century,
}

impl DatePrecision {
    /// Lower-case name ("day", "year", …).
    pub fn as_str(self) -> &'static str {
        match self {
            DatePrecision::Day => "day",
            DatePrecision::Month => "month",
            DatePrecision::Year => "year",
            DatePrecision::Range => "range",
            DatePrecision::Decade => "decade",
            DatePrecision::Century => "century",
        }
    }
}

/// A date expression found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateExpr {
    /// The expression as written ("14 July 1789").
    pub text: String,
    /// Byte offset in the scanned text.
    pub start: usize,
    /// Byte offset just after it.
    pub end: usize,
    /// Year (negative before the common era; the first year of a decade, century or range).
    pub year: i64,
    /// Month 1–12, or 0 when unknown.
    pub month: u8,
    /// Day 1–31, or 0 when unknown.
    pub day: u8,
    /// What the expression names.
    pub precision: DatePrecision,
    /// A life span in parentheses after a name, "(1758–1794)": not an event date.
    pub lifespan: bool,
}

impl DateExpr {
    /// Sortable key: `year * 10000 + month * 100 + day`.
    pub fn key(&self) -> i64 {
        self.year * 10000 + i64::from(self.month) * 100 + i64::from(self.day)
    }
}

const MONTHS: &[(&str, u8)] = &[
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("sept", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];

const ORDINAL_WORDS: &[(&str, i64)] = &[
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("fifth", 5),
    ("sixth", 6),
    ("seventh", 7),
    ("eighth", 8),
    ("ninth", 9),
    ("tenth", 10),
    ("eleventh", 11),
    ("twelfth", 12),
    ("thirteenth", 13),
    ("fourteenth", 14),
    ("fifteenth", 15),
    ("sixteenth", 16),
    ("seventeenth", 17),
    ("eighteenth", 18),
    ("nineteenth", 19),
    ("twentieth", 20),
    ("twenty-first", 21),
];

const YEAR_PREV_WORDS: &[&str] = &[
    "in",
    "of",
    "by",
    "since",
    "until",
    "till",
    "from",
    "to",
    "during",
    "after",
    "before",
    "around",
    "about",
    "circa",
    "c",
    "ca",
    "year",
    "early",
    "late",
    "mid",
    "spring",
    "summer",
    "autumn",
    "fall",
    "winter",
    "and",
    "or",
    "between",
    "through",
    "throughout",
    "on",
    "as",
    "than",
    "following",
    "that",
    "then",
];

const NOT_YEAR_PREV_WORDS: &[&str] = &[
    "page", "pages", "p", "pp", "chapter", "figure", "fig", "table", "section", "number", "no", "line",
    "step", "version", "room", "size", "length", "n", "value", "values", "index", "array",
];

const YEAR_NEXT_WORDS: &[&str] = &[
    "and", "to", "when", "the", "he", "she", "they", "it", "a", "an", "as", "with", "after", "before",
    "until", "in", "on", "at", "was", "were", "saw", "had", "is", "marked", "brought", "onward", "onwards",
];

fn month_of(word: &str) -> Option<u8> {
    let first_upper = word.chars().next().is_some_and(char::is_uppercase);
    if !first_upper {
        return None;
    }
    let l = word.to_lowercase();
    MONTHS.iter().find(|(m, _)| *m == l).map(|(_, n)| *n)
}

fn era_of(tokens: &[Token], text: &str, i: usize) -> Option<(bool, usize)> {
    // returns (is_bc, index after era)
    let t = tokens.get(i)?;
    if t.kind != TokenKind::Word {
        return None;
    }
    let w = t.text(text);
    let mut after = i + 1;
    // "B.C." → tokens B . C .
    let joined = if (w == "B" || w == "A") && tokens.get(i + 1).is_some_and(|x| x.text(text) == ".") {
        let second = tokens.get(i + 2).map(|x| x.text(text)).unwrap_or("");
        let s = format!("{w}{second}");
        after = i + 3;
        if tokens.get(after).is_some_and(|x| x.text(text) == ".") {
            after += 1;
        }
        s
    } else {
        w.to_string()
    };
    match joined.as_str() {
        "BC" | "BCE" => Some((true, after)),
        "AD" | "CE" => Some((false, after)),
        _ => None,
    }
}

fn parse_u(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 5 {
        return None;
    }
    s.parse().ok()
}

fn is_plausible_year(y: i64) -> bool {
    (1000..=2100).contains(&y)
}

/// Finds the date expressions of a text, left to right, without overlaps.
pub fn find_dates(text: &str) -> Vec<DateExpr> {
    let toks = tokenize(text);
    let mut out: Vec<DateExpr> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match scan_at(&toks, text, i) {
            Some((expr, next)) => {
                out.push(expr);
                i = next.max(i + 1);
            }
            None => i += 1,
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn mk(
    text: &str,
    toks: &[Token],
    a: usize,
    b: usize,
    year: i64,
    month: u8,
    day: u8,
    p: DatePrecision,
) -> DateExpr {
    let start = toks[a].start;
    let end = toks[b - 1].end;
    let lifespan = p == DatePrecision::Range
        && a > 0
        && toks[a - 1].text(text) == "("
        && toks.get(b).is_some_and(|t| t.text(text) == ")");
    DateExpr {
        text: text[start..end].to_string(),
        start,
        end,
        year,
        month,
        day,
        precision: p,
        lifespan,
    }
}

fn word_at<'t>(toks: &[Token], text: &'t str, i: usize) -> Option<&'t str> {
    toks.get(i)
        .filter(|t| t.kind != TokenKind::Punct)
        .map(|t| t.text(text))
}

fn scan_at(toks: &[Token], text: &str, i: usize) -> Option<(DateExpr, usize)> {
    let t = &toks[i];
    let raw = t.text(text);
    match t.kind {
        TokenKind::Number => scan_number(toks, text, i, raw),
        TokenKind::Word => {
            if let Some(m) = month_of(raw) {
                // Month day, year | Month year
                let mut j = i + 1;
                if toks.get(j).is_some_and(|x| x.text(text) == ".") {
                    j += 1;
                }
                let n1 = word_at(toks, text, j).and_then(parse_u)?;
                if (1..=31).contains(&n1) {
                    let mut k = j + 1;
                    if toks.get(k).is_some_and(|x| x.text(text) == ",") {
                        k += 1;
                    }
                    if let Some(y) = word_at(toks, text, k).and_then(parse_u) {
                        if is_plausible_year(y) {
                            return Some((
                                mk(text, toks, i, k + 1, y, m, n1 as u8, DatePrecision::Day),
                                k + 1,
                            ));
                        }
                    }
                    return None;
                }
                if is_plausible_year(n1) {
                    return Some((mk(text, toks, i, j + 1, n1, m, 0, DatePrecision::Month), j + 1));
                }
                return None;
            }
            // AD 800
            if raw == "AD" {
                let y = word_at(toks, text, i + 1).and_then(parse_u)?;
                if (1..=2100).contains(&y) {
                    return Some((mk(text, toks, i, i + 2, y, 0, 0, DatePrecision::Year), i + 2));
                }
            }
            // "eighteenth century"
            let l = raw.to_lowercase();
            if let Some((_, n)) = ORDINAL_WORDS.iter().find(|(w, _)| *w == l) {
                if word_at(toks, text, i + 1).is_some_and(|w| w.eq_ignore_ascii_case("century")) {
                    let (bc, end) = match era_of(toks, text, i + 2) {
                        Some((bc, e)) => (bc, e),
                        None => (false, i + 2),
                    };
                    let year = if bc { -(n * 100) } else { (n - 1) * 100 };
                    return Some((mk(text, toks, i, end, year, 0, 0, DatePrecision::Century), end));
                }
            }
            None
        }
        TokenKind::Punct => None,
    }
}

fn scan_number(toks: &[Token], text: &str, i: usize, raw: &str) -> Option<(DateExpr, usize)> {
    let bytes = raw.as_bytes();
    // ISO 1789-07-14
    if raw.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-' {
        let y = parse_u(&raw[0..4])?;
        let m = parse_u(&raw[5..7])?;
        let d = parse_u(&raw[8..10])?;
        if (1..=12).contains(&m) && (1..=31).contains(&d) {
            return Some((
                mk(text, toks, i, i + 1, y, m as u8, d as u8, DatePrecision::Day),
                i + 1,
            ));
        }
        return None;
    }
    // hyphenated range 1789-1799
    if let Some((a, b)) = raw.split_once('-') {
        let ya = parse_u(a)?;
        let yb = parse_u(b)?;
        if a.len() == 4 && is_plausible_year(ya) && (b.len() == 4 && yb >= ya || b.len() == 2) {
            return Some((mk(text, toks, i, i + 1, ya, 0, 0, DatePrecision::Range), i + 1));
        }
        return None;
    }
    // decade 1920s
    if raw.len() == 5 && raw.ends_with('s') {
        let y = parse_u(&raw[..4])?;
        if is_plausible_year(y) && y % 10 == 0 {
            let a = if i > 0 && toks[i - 1].text(text).eq_ignore_ascii_case("the") {
                i - 1
            } else {
                i
            };
            return Some((mk(text, toks, a, i + 1, y, 0, 0, DatePrecision::Decade), i + 1));
        }
        return None;
    }
    // ordinal century 18th century
    let lower = raw.to_lowercase();
    for suf in ["st", "nd", "rd", "th"] {
        if let Some(num) = lower.strip_suffix(suf) {
            let n = parse_u(num)?;
            if (1..=21).contains(&n)
                && word_at(toks, text, i + 1).is_some_and(|w| w.eq_ignore_ascii_case("century"))
            {
                let (bc, end) = match era_of(toks, text, i + 2) {
                    Some((bc, e)) => (bc, e),
                    None => (false, i + 2),
                };
                let year = if bc { -(n * 100) } else { (n - 1) * 100 };
                let a = if i > 0 && toks[i - 1].text(text).eq_ignore_ascii_case("the") {
                    i - 1
                } else {
                    i
                };
                return Some((mk(text, toks, a, end, year, 0, 0, DatePrecision::Century), end));
            }
            return None;
        }
    }
    let n = parse_u(raw)?;
    // day month year: 14 July 1789
    if (1..=31).contains(&n) {
        if let Some(m) = word_at(toks, text, i + 1).and_then(month_of) {
            if let Some(y) = word_at(toks, text, i + 2).and_then(parse_u) {
                if is_plausible_year(y) || era_of(toks, text, i + 3).is_some() {
                    let (year, end) = match era_of(toks, text, i + 3) {
                        Some((true, e)) => (-y, e),
                        Some((false, e)) => (y, e),
                        None => (y, i + 3),
                    };
                    return Some((mk(text, toks, i, end, year, m, n as u8, DatePrecision::Day), end));
                }
            }
        }
    }
    // era: 44 BC, 800 AD
    if let Some((bc, end)) = era_of(toks, text, i + 1) {
        if (1..=9999).contains(&n) {
            let year = if bc { -n } else { n };
            return Some((mk(text, toks, i, end, year, 0, 0, DatePrecision::Year), end));
        }
    }
    if raw.len() != 4 || !is_plausible_year(n) {
        return None;
    }
    // context checks for a bare year
    let prev = if i > 0 { Some(&toks[i - 1]) } else { None };
    let prev_text = prev.map(|p| p.text(text).to_lowercase());
    if let Some(p) = prev_text.as_deref() {
        if NOT_YEAR_PREV_WORDS.contains(&p) || matches!(p, "$" | "£" | "€" | "#" | "=" | "×" | "*" | "+")
        {
            return None;
        }
    }
    // range with dash or "to"
    if let Some(sep) = toks.get(i + 1) {
        let st = sep.text(text);
        if matches!(st, "–" | "—" | "-" | "to") {
            if let Some(y2) = word_at(toks, text, i + 2).and_then(parse_u) {
                if is_plausible_year(y2) && y2 >= n && y2 - n <= 300 && toks[i + 2].text(text).len() == 4 {
                    return Some((mk(text, toks, i, i + 3, n, 0, 0, DatePrecision::Range), i + 3));
                }
            }
        }
    }
    let prev_ok = match (prev, prev_text.as_deref()) {
        (None, _) => true,
        (Some(p), Some(pt)) => {
            (p.kind == TokenKind::Punct && matches!(pt, "(" | "," | "–" | "-" | ":" | ";"))
                || YEAR_PREV_WORDS.contains(&pt)
                || month_of(p.text(text)).is_some()
        }
        _ => false,
    };
    let next_ok = match toks.get(i + 1) {
        None => true,
        Some(nx) => {
            let nt = nx.text(text);
            if nx.kind == TokenKind::Punct {
                !matches!(nt, "%" | "×" | "*" | "+" | "=" | "/" | "°")
            } else {
                let nl = nt.to_lowercase();
                YEAR_NEXT_WORDS.contains(&nl.as_str())
                    || nt.chars().next().is_some_and(char::is_uppercase)
                    || super::stopwords::is_stopword(&nl)
            }
        }
    };
    if prev_ok && next_ok {
        return Some((mk(text, toks, i, i + 1, n, 0, 0, DatePrecision::Year), i + 1));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> Vec<(String, i64, DatePrecision)> {
        find_dates(s)
            .into_iter()
            .map(|d| (d.text.clone(), d.key(), d.precision))
            .collect()
    }

    #[test]
    fn finds_common_forms() {
        let k = keys("On 14 July 1789 the Bastille fell; in July 1789 Paris rose. By 1799, Napoleon ruled.");
        assert_eq!(
            k,
            vec![
                ("14 July 1789".into(), 17890714, DatePrecision::Day),
                ("July 1789".into(), 17890700, DatePrecision::Month),
                ("1799".into(), 17990000, DatePrecision::Year)
            ]
        );
    }

    #[test]
    fn finds_bc_decades_centuries_iso_and_ranges() {
        let k = keys("Caesar died in 44 BC. The 1920s roared. In the 18th century, on 1789-07-14, from 1792 to 1794, and 1789–1799.");
        let texts: Vec<&str> = k.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "44 BC",
                "The 1920s",
                "the 18th century",
                "1789-07-14",
                "1792 to 1794",
                "1789–1799"
            ]
        );
        assert_eq!(k[0].1, -440000);
        assert_eq!(k[2].1, 17000000);
        assert_eq!(k[4].2, DatePrecision::Range);
    }

    #[test]
    fn ignores_non_years() {
        assert!(find_dates("An array of 1000 elements needs 1024 bytes.").is_empty());
        assert!(find_dates("See page 1789 and 1,789 people; 2500 molecules.").is_empty());
        assert!(find_dates("It may rain.").is_empty());
    }

    #[test]
    fn marks_lifespans() {
        let d = find_dates("Maximilien Robespierre (1758–1794) led the Committee.");
        assert_eq!(d.len(), 1);
        assert!(d[0].lifespan);
    }

    #[test]
    fn month_day_year() {
        let k = keys("It was signed on August 26, 1789, in Versailles.");
        assert_eq!(k[0].1, 17890826);
    }
}
