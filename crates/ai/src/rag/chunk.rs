//! Splitting a document into retrievable chunks.
//!
//! Each page is cut on its own (a chunk never spans pages). The page text is broken into
//! pieces at the coarsest boundary that keeps each piece within `max_chars`: paragraphs
//! (blank lines), then sentences (`.`, `!`, `?` followed by whitespace), then words. Pieces
//! are then packed greedily, in order, into chunks of about `target_chars`, never more than
//! `max_chars` (a single word longer than that becomes its own chunk). A chunk's text is
//! the page text from its first piece to its last, so it is an exact, trimmed substring of
//! the page. A new chunk also starts wherever a heading starts, so each chunk lies in one
//! section and carries that section's heading.

use crate::doc::{Chunk, DocumentText};

/// Size limits for [`chunk_document`], in characters (Unicode scalar values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Preferred chunk length; pieces are packed until adding the next would exceed it.
    pub target_chars: usize,
    /// Hard upper bound; only a single word longer than this can exceed it.
    pub max_chars: usize,
    /// Up to this many characters from the end of the previous chunk (whole pieces only)
    /// are repeated at the start of the next chunk on the same page and in the same section.
    pub overlap_chars: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            target_chars: 800,
            max_chars: 1200,
            overlap_chars: 0,
        }
    }
}

/// A trimmed, non-empty stretch of page text that is not split further.
#[derive(Clone, Copy, Debug)]
struct Piece {
    start: usize,
    end: usize,
    start_char: usize,
    end_char: usize,
}

/// Maps increasing byte offsets of one text to character offsets in amortised O(1).
struct CharIndex<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl<'a> CharIndex<'a> {
    fn new(text: &'a str) -> Self {
        CharIndex {
            text,
            byte: 0,
            chars: 0,
        }
    }

    /// Character offset of byte offset `b` (a char boundary); `b` may go backwards, which
    /// restarts the count.
    fn at(&mut self, b: usize) -> usize {
        if b < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..b].chars().count();
        self.byte = b;
        self.chars
    }
}

/// Splits `doc` into chunks; see the module documentation for the rules.
///
/// Ids are "c0", "c1", … across the whole document in reading order, and `index` is the
/// same number. `heading` is the nearest heading at or before the chunk's start: each
/// page's headings apply from where their text occurs in the page (if a heading's text
/// cannot be found, from where the previous heading applies, or the page start), and the
/// last heading of earlier pages carries over. Empty or whitespace-only pages give no chunks.
pub fn chunk_document(doc: &DocumentText, opts: &ChunkOptions) -> Vec<Chunk> {
    let max = opts.max_chars.max(1);
    let target = opts.target_chars.clamp(1, max);
    let overlap = opts.overlap_chars.min(max / 2);

    let mut chunks = Vec::new();
    let mut carried: Option<String> = None;
    for page in &doc.pages {
        let text = page.text.as_str();
        let positions = heading_positions(text, &page.headings);
        let heading_count_at = |pos: usize| positions.iter().filter(|&&p| p <= pos).count();

        for (start, end) in page_spans(text, &positions, target, max, overlap) {
            let heading = match heading_count_at(start) {
                0 => carried.clone(),
                n => page.headings.get(n - 1).cloned(),
            };
            let index = chunks.len();
            chunks.push(Chunk {
                id: format!("c{index}"),
                index,
                page: page.number,
                text: text[start..end].to_string(),
                heading,
            });
        }
        if let Some(last) = page.headings.last() {
            carried = Some(last.clone());
        }
    }
    chunks
}

/// Byte spans of one page's chunks, given where its headings apply.
fn page_spans(
    text: &str,
    heading_positions: &[usize],
    target: usize,
    max: usize,
    overlap: usize,
) -> Vec<(usize, usize)> {
    let heading_count_at = |pos: usize| heading_positions.iter().filter(|&&p| p <= pos).count();
    let pieces = split_pieces(text, max);
    pack(&pieces, target, max, overlap, heading_count_at)
        .into_iter()
        .map(|(first, last)| (pieces[first].start, pieces[last].end))
        .collect()
}

/// Groups pieces into chunks, returning (first, last) piece indices of each chunk.
fn pack(
    pieces: &[Piece],
    target: usize,
    max: usize,
    overlap: usize,
    heading_count_at: impl Fn(usize) -> usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for (i, piece) in pieces.iter().enumerate() {
        let Some((first, last)) = current else {
            current = Some((i, i));
            continue;
        };
        let new_section = heading_count_at(piece.start) != heading_count_at(pieces[first].start);
        let merged = piece.end_char - pieces[first].start_char;
        let len = pieces[last].end_char - pieces[first].start_char;
        if !new_section && (merged <= target || (merged <= max && len < target / 2)) {
            current = Some((first, i));
            continue;
        }
        out.push((first, last));
        let mut start = i;
        if !new_section && overlap > 0 {
            // Repeat whole trailing pieces of the previous chunk while they fit.
            let mut j = last;
            while j > first
                && pieces[last].end_char - pieces[j].start_char <= overlap
                && piece.end_char - pieces[j].start_char <= max
            {
                start = j;
                j -= 1;
            }
        }
        current = Some((start, i));
    }
    if let Some(span) = current {
        out.push(span);
    }
    out
}

/// Breaks a page into pieces of at most `max` characters, at paragraph, then sentence,
/// then word boundaries. Pieces are trimmed, non-empty and in order, and only whitespace
/// lies between neighbours.
fn split_pieces(text: &str, max: usize) -> Vec<Piece> {
    let mut chars = CharIndex::new(text);
    let mut pieces = Vec::new();
    let piece = |start: usize, end: usize, chars: &mut CharIndex| {
        let start_char = chars.at(start);
        let end_char = chars.at(end);
        Piece {
            start,
            end,
            start_char,
            end_char,
        }
    };
    for (ps, pe) in paragraphs(text) {
        let p = piece(ps, pe, &mut chars);
        if p.end_char - p.start_char <= max {
            pieces.push(p);
            continue;
        }
        for (ss, se) in sentences(text, ps, pe) {
            let s = piece(ss, se, &mut chars);
            if s.end_char - s.start_char <= max {
                pieces.push(s);
                continue;
            }
            for (ws, we) in words(text, ss, se) {
                pieces.push(piece(ws, we, &mut chars));
            }
        }
    }
    pieces
}

/// Byte spans of paragraphs: maximal runs of non-blank lines, trimmed.
fn paragraphs(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        match (open, blank) {
            (None, false) => open = Some(offset),
            (Some(start), true) => {
                out.extend(trimmed(text, start, offset));
                open = None;
            }
            _ => {}
        }
        offset += line.len();
    }
    if let Some(start) = open {
        out.extend(trimmed(text, start, text.len()));
    }
    out
}

/// Byte spans of sentences within `text[start..end]`, trimmed. A sentence ends after
/// `.`, `!`, `?` or `…` (plus any closing quotes or brackets) that is followed by whitespace.
fn sentences(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let slice = &text[start..end];
    let mut out = Vec::new();
    let mut sentence_start = 0;
    let mut iter = slice.char_indices().peekable();
    while let Some((_, c)) = iter.next() {
        if !matches!(c, '.' | '!' | '?' | '…') {
            continue;
        }
        while let Some(&(_, next)) = iter.peek() {
            if matches!(next, '"' | '\'' | '”' | '’' | ')' | ']' | '»') {
                iter.next();
            } else {
                break;
            }
        }
        if let Some(&(at, next)) = iter.peek() {
            if next.is_whitespace() {
                out.extend(trimmed(text, start + sentence_start, start + at));
                sentence_start = at;
            }
        }
    }
    out.extend(trimmed(text, start + sentence_start, end));
    out
}

/// Byte spans of whitespace-separated words within `text[start..end]`.
fn words(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut word_start: Option<usize> = None;
    for (i, c) in text[start..end].char_indices() {
        match (word_start, c.is_whitespace()) {
            (None, false) => word_start = Some(start + i),
            (Some(ws), true) => {
                out.push((ws, start + i));
                word_start = None;
            }
            _ => {}
        }
    }
    if let Some(ws) = word_start {
        out.push((ws, end));
    }
    out
}

/// `text[start..end]` without surrounding whitespace, or `None` if nothing is left.
fn trimmed(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let body = slice.trim();
    (!body.is_empty()).then(|| (start + lead, start + lead + body.len()))
}

/// Byte offset from which each heading applies, in heading order (non-decreasing).
///
/// A heading is looked for after the previous one: first where it starts a line, then
/// anywhere, then as the same words ignoring case and spacing. Not found, it applies from
/// where the previous heading applies (or the page start).
fn heading_positions(text: &str, headings: &[String]) -> Vec<usize> {
    let mut positions = Vec::with_capacity(headings.len());
    let mut search_from = 0;
    let mut last_pos = 0;
    for heading in headings {
        let h = heading.trim();
        let found = if h.is_empty() {
            None
        } else {
            find_at_line_start(text, h, search_from)
                .map(|p| (p, p + h.len()))
                .or_else(|| {
                    text[search_from..]
                        .find(h)
                        .map(|p| (search_from + p, search_from + p + h.len()))
                })
                .or_else(|| find_words(text, h, search_from))
        };
        if let Some((start, end)) = found {
            last_pos = start;
            search_from = end;
        }
        positions.push(last_pos);
    }
    positions
}

/// The first occurrence of `needle` at or after `from` that has only whitespace before it
/// on its line.
fn find_at_line_start(text: &str, needle: &str, from: usize) -> Option<usize> {
    text[from..]
        .match_indices(needle)
        .map(|(i, _)| from + i)
        .find(|&pos| {
            let line_start = text[..pos].rfind('\n').map_or(0, |n| n + 1);
            text[line_start..pos].trim().is_empty()
        })
}

/// The first run of words at or after `from` equal to the heading's words, ignoring case;
/// returns its byte span.
fn find_words(text: &str, heading: &str, from: usize) -> Option<(usize, usize)> {
    let wanted: Vec<String> = heading.split_whitespace().map(str::to_lowercase).collect();
    if wanted.is_empty() {
        return None;
    }
    let spans = words(text, from, text.len());
    spans.windows(wanted.len()).find_map(|window| {
        let same = window
            .iter()
            .zip(&wanted)
            .all(|(&(s, e), w)| text[s..e].to_lowercase() == *w);
        same.then(|| (window[0].0, window[window.len() - 1].1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::PageText;
    use proptest::prelude::*;

    fn page(number: u32, text: &str, headings: &[&str]) -> PageText {
        PageText {
            number,
            text: text.to_string(),
            headings: headings.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn doc(pages: Vec<PageText>) -> DocumentText {
        DocumentText {
            title: "t".into(),
            pages,
        }
    }

    fn opts(target: usize, max: usize) -> ChunkOptions {
        ChunkOptions {
            target_chars: target,
            max_chars: max,
            overlap_chars: 0,
        }
    }

    #[test]
    fn headings_apply_from_their_position_and_carry_over_pages() {
        let d = doc(vec![
            page(1, "Preface text before any heading.", &[]),
            page(2, "Intro words.\n\nCells\n\nCells are small.", &["Cells"]),
            page(3, "More about cells on the next page.", &[]),
            page(4, "   \n\n  ", &["Empty Page Heading"]),
            page(5, "Tail text.\n\nEnergy\nMitochondria make ATP.", &["Energy"]),
        ]);
        let chunks = chunk_document(&d, &opts(20, 40));
        let got: Vec<(u32, &str, Option<&str>)> = chunks
            .iter()
            .map(|c| (c.page, c.text.as_str(), c.heading.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "Preface text before any heading.", None),
                (2, "Intro words.", None),
                (2, "Cells\n\nCells are small.", Some("Cells")),
                (3, "More about cells on the next page.", Some("Cells")),
                (5, "Tail text.", Some("Empty Page Heading")),
                (5, "Energy\nMitochondria make ATP.", Some("Energy")),
            ]
        );
        let ids: Vec<&str> = chunks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["c0", "c1", "c2", "c3", "c4", "c5"]);
    }

    #[test]
    fn heading_matching_prefers_line_starts_and_falls_back_to_words() {
        let text = "We discuss the Summary below.\nSummary\nAll   done here.";
        let positions = heading_positions(text, &["Summary".to_string(), "all done".to_string()]);
        assert_eq!(positions[0], text.find("\nSummary").unwrap() + 1);
        assert_eq!(positions[1], text.find("All").unwrap());
        // Not found: applies from where the previous heading applies.
        assert_eq!(heading_positions(text, &["Nowhere".to_string()]), vec![0]);
    }

    #[test]
    fn default_options_pack_paragraphs_to_about_the_target() {
        let para = "Photosynthesis converts light energy into chemical energy in plants. ".repeat(4);
        let text = [para.trim(); 10].join("\n\n");
        let chunks = chunk_document(&doc(vec![page(1, &text, &[])]), &ChunkOptions::default());
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        for c in &chunks {
            let n = c.text.chars().count();
            assert!((200..=1200).contains(&n), "chunk of {n} chars");
        }
    }

    #[test]
    fn a_long_sentence_splits_at_words_and_a_huge_word_stands_alone() {
        let long_word = "x".repeat(50);
        let text = format!("alpha beta gamma delta epsilon zeta eta theta {long_word} iota kappa");
        let chunks = chunk_document(&doc(vec![page(1, &text, &[])]), &opts(15, 20));
        assert!(chunks.iter().any(|c| c.text == long_word));
        for c in &chunks {
            assert!(c.text.chars().count() <= 20 || !c.text.contains(char::is_whitespace));
        }
    }

    #[test]
    fn overlap_repeats_trailing_sentences() {
        let text = "One two three. Four five six. Seven eight nine. Ten eleven twelve.";
        let o = ChunkOptions {
            target_chars: 30,
            max_chars: 40,
            overlap_chars: 16,
        };
        let chunks = chunk_document(&doc(vec![page(1, text, &[])]), &o);
        assert_eq!(chunks[0].text, "One two three. Four five six.");
        assert_eq!(chunks[1].text, "Four five six. Seven eight nine.");
        assert!(chunks
            .last()
            .is_some_and(|c| c.text.ends_with("Ten eleven twelve.")));
    }

    #[test]
    fn empty_document_and_pages_give_no_chunks() {
        assert!(chunk_document(&doc(vec![]), &ChunkOptions::default()).is_empty());
        let d = doc(vec![page(1, "", &[]), page(2, " \n\t\n ", &["H"])]);
        assert!(chunk_document(&d, &ChunkOptions::default()).is_empty());
    }

    /// Page text made of words (some non-ASCII, some very long), sentence ends, line
    /// breaks and blank lines, with irregular spacing.
    fn page_text() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            6 => "[a-z]{1,9}",
            1 => "[A-Z][a-z]{0,6}[.!?]",
            1 => "(é|ß|中文|naïve|Ωmega|—)",
            1 => "[a-z]{1,3}[.,;:)\"]{1,2}",
            1 => "[a-z]{30,80}",
        ];
        let sep = prop_oneof![8 => Just(" "), 1 => Just("\n"), 1 => Just("\n\n"), 1 => Just("  \t"), 1 => Just("\n \n\n")];
        prop::collection::vec((token, sep), 0..120).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(t, s)| format!("{t}{s}"))
                .collect::<String>()
        })
    }

    fn document() -> impl Strategy<Value = DocumentText> {
        prop::collection::vec(
            (
                page_text(),
                prop::collection::vec("[A-Za-z]{1,8}", 0..3),
                any::<bool>(),
            ),
            0..5,
        )
        .prop_map(|pages| {
            let pages = pages
                .into_iter()
                .enumerate()
                .map(|(i, (mut text, headings, blank))| {
                    if blank {
                        text = text.chars().filter(|c| c.is_whitespace()).collect();
                    }
                    PageText {
                        number: i as u32 + 1,
                        text,
                        headings,
                    }
                })
                .collect();
            DocumentText {
                title: "p".into(),
                pages,
            }
        })
    }

    fn options() -> impl Strategy<Value = ChunkOptions> {
        (5usize..400, 0usize..400, 0usize..50).prop_map(|(target, extra, overlap)| ChunkOptions {
            target_chars: target,
            max_chars: target + extra,
            overlap_chars: overlap,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn chunks_are_trimmed_substrings_within_limits(d in document(), mut o in options()) {
            o.overlap_chars = 0;
            let chunks = chunk_document(&d, &o);
            for (i, c) in chunks.iter().enumerate() {
                prop_assert_eq!(&c.id, &format!("c{i}"));
                prop_assert_eq!(c.index, i);
                let page = d.pages.iter().find(|p| p.number == c.page);
                prop_assert!(page.is_some_and(|p| p.text.contains(&c.text)));
                prop_assert!(!c.text.is_empty());
                prop_assert_eq!(c.text.trim(), c.text.as_str());
                let n = c.text.chars().count();
                prop_assert!(n <= o.max_chars || !c.text.contains(char::is_whitespace),
                    "chunk of {} chars > max {}: {:?}", n, o.max_chars, c.text);
            }
            // Pages appear in order.
            prop_assert!(chunks.windows(2).all(|w| w[0].page <= w[1].page));
        }

        #[test]
        fn chunks_cover_every_word_in_order(d in document(), mut o in options()) {
            o.overlap_chars = 0;
            let chunks = chunk_document(&d, &o);
            for p in &d.pages {
                let page_words: Vec<&str> = p.text.split_whitespace().collect();
                let chunk_words: Vec<&str> = chunks
                    .iter()
                    .filter(|c| c.page == p.number)
                    .flat_map(|c| c.text.split_whitespace())
                    .collect();
                prop_assert_eq!(page_words, chunk_words);
            }
        }

        #[test]
        fn overlapping_chunks_advance_and_leave_no_gaps(text in page_text(), o in options()) {
            let spans = page_spans(&text, &[], o.target_chars, o.max_chars, o.overlap_chars);
            let mut previous: Option<(usize, usize)> = None;
            for &(start, end) in &spans {
                let chunk = &text[start..end];
                prop_assert!(!chunk.is_empty() && chunk.trim() == chunk);
                let n = chunk.chars().count();
                prop_assert!(n <= o.max_chars || !chunk.contains(char::is_whitespace),
                    "chunk of {} chars > max {}", n, o.max_chars);
                match previous {
                    None => prop_assert!(text[..start].trim().is_empty()),
                    Some((prev_start, prev_end)) => {
                        prop_assert!(start > prev_start && end > prev_end);
                        prop_assert!(start <= prev_end || text[prev_end..start].trim().is_empty());
                        if start < prev_end {
                            prop_assert!(prev_end - start <= o.overlap_chars * 4, "overlap too long");
                        }
                    }
                }
                previous = Some((start, end));
            }
            match previous {
                None => prop_assert!(text.trim().is_empty()),
                Some((_, end)) => prop_assert!(text[end..].trim().is_empty()),
            }
        }
    }
}
