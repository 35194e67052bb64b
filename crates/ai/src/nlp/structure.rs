//! Document structure: sections (from headings, or derived from topic shifts between
//! chunks when there are none), heading levels, worked examples ("for example",
//! "such as", "e.g.", "Example 2:") and lists (bulleted lists and inline enumerations
//! "A, B and C").

use std::ops::Range;

use serde::Serialize;

use super::stopwords::{is_common_verb, is_stopword};
use super::text::word_count;
use super::Sentence;

/// A section of the document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    /// Heading text, or a derived title ("Topic: chlorophyll and light").
    pub title: String,
    /// Heading level, 1 = top.
    pub level: u8,
    /// Page where it starts.
    pub page: u32,
    /// Last page it covers.
    pub last_page: u32,
    /// Chunk indices it covers.
    pub chunks: Range<usize>,
    /// Sentence indices it covers.
    pub sentences: Range<usize>,
    /// True when the title was derived, not a heading of the document.
    pub derived: bool,
}

/// A worked example or illustration in a sentence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExampleMention {
    /// Sentence index.
    pub sentence: usize,
    /// The marker that introduced it ("for example", "such as", …).
    pub marker: String,
    /// Items named after "such as" / "e.g." / "including", if any.
    pub items: Vec<String>,
}

/// A list of 3 or more items.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListMention {
    /// What the list is about (the sentence before a bulleted list, or the start of the sentence).
    pub intro: String,
    /// Short labels of the items.
    pub items: Vec<String>,
    /// Sentence of the first item (all items are in this sentence's chunk).
    pub sentence: usize,
    /// True for a bulleted or numbered list, false for "A, B and C" in a sentence.
    pub bulleted: bool,
    /// True when `intro` is only the section title (nothing introduced the list).
    pub intro_is_heading: bool,
    /// For an inline list, the rest of the sentence after the last item ("led to new unrest").
    pub after: String,
}

/// Level of a heading from its numbering: "2.3 Light" is 2, "Part I" is 1, others 1.
pub fn heading_level(h: &str, has_parts: bool) -> u8 {
    let t = h.trim();
    let first = t.split_whitespace().next().unwrap_or("");
    let lower = first.to_lowercase();
    if lower == "part" || lower == "book" {
        return 1;
    }
    if lower == "chapter" || lower == "unit" {
        return if has_parts { 2 } else { 1 };
    }
    let num = first.trim_end_matches(['.', ')', ':']);
    if !num.is_empty()
        && num
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let depth = num.split('.').count().min(4) as u8;
        return depth + u8::from(has_parts);
    }
    1
}

const EXAMPLE_MARKERS: &[&str] = &[
    "for example",
    "for instance",
    "such as",
    "e.g.",
    "to illustrate",
    "as an example",
    "an example of",
    "a good example",
    "is an example",
    "examples include",
    "examples of",
    "consider ",
    "imagine ",
    "example:",
    "including ",
];

/// Finds example sentences.
pub fn find_examples(sentences: &[Sentence]) -> Vec<ExampleMention> {
    let mut out = Vec::new();
    for (i, s) in sentences.iter().enumerate() {
        let lower = s.text.to_lowercase();
        let starts_example = lower.starts_with("example ")
            && lower[8..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == ':');
        let mut found: Option<&str> = None;
        if starts_example {
            found = Some("example");
        } else {
            for m in EXAMPLE_MARKERS {
                let hit = if m.ends_with(' ') && !m.starts_with("including") {
                    // "consider", "imagine" only at the start of a sentence
                    lower.starts_with(m)
                } else {
                    lower.contains(m)
                };
                if hit {
                    found = Some(m.trim_end());
                    break;
                }
            }
        }
        let Some(marker) = found else { continue };
        if marker == "including" && s.text.split_whitespace().count() > 40 {
            continue;
        }
        let items = match marker {
            "such as" | "e.g." | "including" | "for example" | "for instance" | "examples include" => {
                items_after(&s.text, &lower, marker)
            }
            _ => Vec::new(),
        };
        if marker == "including" && items.len() < 2 {
            continue;
        }
        out.push(ExampleMention {
            sentence: i,
            marker: marker.to_string(),
            items,
        });
    }
    out
}

fn strip_det(s: &str) -> &str {
    for d in ["the ", "a ", "an ", "The ", "A ", "An "] {
        if let Some(r) = s.strip_prefix(d) {
            return r;
        }
    }
    s
}

fn items_after(text: &str, lower: &str, marker: &str) -> Vec<String> {
    let Some(p) = lower.find(marker) else {
        return Vec::new();
    };
    let rest = &text[p + marker.len()..];
    let rest = rest.trim_start_matches([',', ' ', ':']);
    let end = rest.find(['.', ';', ')', ':', '(']).unwrap_or(rest.len());
    let seg = &rest[..end];
    let mut items = Vec::new();
    for part in seg.split(", ") {
        for sub in part.split(" and ").flat_map(|x| x.split(" or ")) {
            let w = strip_det(sub.trim());
            let first_stop = w
                .split_whitespace()
                .next()
                .is_some_and(|f| is_stopword(&f.to_lowercase()));
            if w.is_empty() || word_count(w) > 5 || first_stop {
                return items;
            }
            items.push(w.to_string());
        }
    }
    items
}

fn trailing_item(part: &str) -> String {
    // last words of a segment up to a stopword (determiners allowed) or verb
    let words: Vec<&str> = part.split_whitespace().collect();
    let mut start = words.len();
    while start > 0 {
        let w = words[start - 1].trim_matches(|c: char| !c.is_alphanumeric() && c != '-');
        let l = w.to_lowercase();
        if words.len() - start >= 4
            || (is_stopword(&l) && !matches!(l.as_str(), "of"))
            || is_common_verb(&l)
            || (start < words.len() && words[start - 1].ends_with([':', ';', ',']))
        {
            break;
        }
        start -= 1;
    }
    let mut item = words[start..].join(" ");
    while item.starts_with("of ") {
        item = item[3..].to_string();
    }
    item
}

fn leading_item(part: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for w in part.split_whitespace() {
        let clean = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-');
        let l = clean.to_lowercase();
        let past = l.ends_with("ed") && l.len() > 4;
        if out.len() >= 4 || ((is_stopword(&l) && l != "of") || is_common_verb(&l) || past) && !out.is_empty()
        {
            break;
        }
        if is_stopword(&l) && out.is_empty() {
            continue;
        }
        out.push(clean);
        if w.ends_with([',', ';', '.', ')', ':']) {
            break;
        }
    }
    out.join(" ")
}

fn good_item(s: &str) -> bool {
    let wc = word_count(s);
    (1..=4).contains(&wc) && s.chars().next().is_some_and(char::is_alphabetic)
}

fn clean_item(s: &str) -> String {
    strip_det(s.trim())
        .trim_matches(|c: char| !c.is_alphanumeric() && c != ')')
        .to_string()
}

/// A short noun-ish item: 1–4 words, no verb, no stopword except an inner "of".
fn tight_item(s: &str) -> bool {
    if !good_item(s) || (word_count(s) == 1 && super::stopwords::is_generic(&s.to_lowercase())) {
        return false;
    }
    s.split_whitespace().enumerate().all(|(i, w)| {
        let l = w.to_lowercase();
        let l = l.trim_matches(|c: char| !c.is_alphanumeric() && c != '-');
        (!is_stopword(l) || (i > 0 && l == "of"))
            && !is_common_verb(l)
            && !(i > 0 && l.ends_with("ed") && l.len() > 4)
    })
}

/// Finds an inline enumeration "A, B(,) and C" (3–7 items) in a sentence.
pub fn inline_list(text: &str) -> Option<Vec<String>> {
    let lower = text.to_lowercase();
    let conj = [", and ", " and ", ", or ", " or "]
        .iter()
        .filter_map(|c| lower.rfind(c).map(|p| (p, c.len())))
        .max_by_key(|x| x.0)?;
    let (cp, clen) = conj;
    let before = &text[..cp];
    let after = &text[cp + clen..];
    let last = clean_item(&leading_item(after));
    if !tight_item(&last) {
        return None;
    }
    let parts: Vec<&str> = before.split(", ").collect();
    if parts.len() < 2 {
        return None;
    }
    let mut rev: Vec<String> = vec![last];
    let mut k = parts.len();
    while k > 0 {
        k -= 1;
        let it = clean_item(parts[k]);
        if k > 0 && tight_item(&it) {
            rev.push(it);
            continue;
        }
        // the first item: trailing words of the part
        let first = clean_item(&trailing_item(parts[k]));
        if tight_item(&first) {
            rev.push(first);
        }
        break;
    }
    let items: Vec<String> = rev.into_iter().rev().collect();
    if !(3..=7).contains(&items.len()) {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    if !items.iter().all(|i| seen.insert(i.to_lowercase())) {
        return None;
    }
    // items look alike: all capitalised or all lower-case (the sentence start aside)
    let starts_sentence = text.trim_start().starts_with(items[0].as_str());
    let caps: Vec<bool> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| !(*i == 0 && starts_sentence))
        .map(|(_, s)| s.chars().next().is_some_and(char::is_uppercase))
        .collect();
    if caps.iter().any(|&c| c) && caps.iter().any(|&c| !c) {
        return None;
    }
    Some(items)
}

fn bullet_label(s: &str) -> String {
    let head = s
        .split([':', '–', '—', '(', ';', '.', ','])
        .next()
        .unwrap_or(s)
        .trim();
    let head = if let Some(p) = head.find(" - ") {
        &head[..p]
    } else {
        head
    };
    let head = strip_det(head);
    let words: Vec<&str> = head.split_whitespace().collect();
    if words.len() <= 4 {
        return head.to_string();
    }
    // a long item: its first words up to a stopword ("Divide the list …" → "Divide")
    let mut out: Vec<&str> = Vec::new();
    for w in words {
        if out.len() >= 4 || (!out.is_empty() && is_stopword(&w.to_lowercase())) {
            break;
        }
        out.push(w);
    }
    out.join(" ")
}

/// Finds bulleted lists (3+ consecutive list items in one chunk) and inline
/// enumerations.
pub fn find_lists(sentences: &[Sentence], section_title: impl Fn(usize) -> String) -> Vec<ListMention> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sentences.len() {
        if sentences[i].list_item {
            let mut j = i;
            while j < sentences.len()
                && sentences[j].list_item
                && sentences[j].chunk_index == sentences[i].chunk_index
            {
                j += 1;
            }
            if j - i >= 3 {
                let intro = if i > 0
                    && sentences[i - 1].chunk_index == sentences[i].chunk_index
                    && !sentences[i - 1].list_item
                {
                    sentences[i - 1].text.trim_end_matches(':').to_string()
                } else {
                    section_title(i)
                };
                let items: Vec<String> = sentences[i..j]
                    .iter()
                    .map(|s| bullet_label(&s.text))
                    .filter(|l| !l.is_empty())
                    .collect();
                if items.len() >= 3 {
                    let intro_is_heading = !(i > 0
                        && sentences[i - 1].chunk_index == sentences[i].chunk_index
                        && !sentences[i - 1].list_item);
                    out.push(ListMention {
                        intro,
                        items,
                        sentence: i,
                        bulleted: true,
                        intro_is_heading,
                        after: String::new(),
                    });
                }
            }
            i = j.max(i + 1);
            continue;
        }
        if let Some(items) = inline_list(&sentences[i].text) {
            let t = &sentences[i].text;
            let cut = t.find(&items[0]).unwrap_or(0);
            let mut intro = t[..cut].trim().trim_end_matches([':', ',']).trim().to_string();
            let last = &items[items.len() - 1];
            let after = t
                .rfind(last.as_str())
                .map(|p| {
                    t[p + last.len()..]
                        .trim()
                        .trim_end_matches(['.', '!', '?'])
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            let intro_is_heading = word_count(&intro) < 2;
            if intro_is_heading {
                intro = section_title(i);
            }
            out.push(ListMention {
                intro,
                items,
                sentence: i,
                bulleted: false,
                intro_is_heading,
                after,
            });
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_lists() {
        assert_eq!(
            inline_list("Plants need light energy, water and carbon dioxide to make glucose."),
            Some(vec![
                "light energy".to_string(),
                "water".into(),
                "carbon dioxide".into()
            ])
        );
        assert_eq!(
            inline_list("French society was divided into the clergy, the nobility, and the commoners."),
            Some(vec!["clergy".to_string(), "nobility".into(), "commoners".into()])
        );
        assert_eq!(inline_list("The king and the queen fled."), None);
        assert_eq!(inline_list("In 1789, 1791 and 1793 things changed."), None);
    }

    #[test]
    fn levels() {
        assert_eq!(heading_level("2.3 Light reactions", false), 2);
        assert_eq!(heading_level("1. Origins", false), 1);
        assert_eq!(heading_level("Chapter 2", true), 2);
        assert_eq!(heading_level("The Terror", false), 1);
    }
}
