//! From a flat list of blocks (headings, paragraphs, page breaks) to numbered pages.
//!
//! Formats with explicit page breaks (DOCX breaks, form feeds in text) get real pages; formats
//! without pages get *virtual* pages of about [`VIRTUAL_PAGE_CHARS`] characters, cut at
//! paragraph boundaries, so that later stages can cite "page 4" of a web page as well.

use crate::document::{Heading, Page};

/// Target size of a virtual page, in characters.
pub const VIRTUAL_PAGE_CHARS: usize = 3_000;

/// One structural unit of a document, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Block {
    /// A heading; its text also appears on the page as its own paragraph.
    Heading { level: u8, text: String },
    /// A paragraph, list, table or code block; may contain single newlines.
    Paragraph(String),
    /// An explicit page break.
    PageBreak,
}

impl Block {
    fn text(&self) -> &str {
        match self {
            Block::Heading { text, .. } | Block::Paragraph(text) => text,
            Block::PageBreak => "",
        }
    }
}

/// Pages built from blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paged {
    pub pages: Vec<Page>,
    pub virtual_pages: bool,
}

/// Splits `blocks` into pages. Explicit [`Block::PageBreak`]s win; consecutive breaks (for
/// example Word's explicit break followed by its "last rendered" break) do not create empty
/// pages. Without breaks, paragraphs are packed into virtual pages.
pub(crate) fn paginate(blocks: Vec<Block>) -> Paged {
    let has_breaks = blocks.iter().any(|b| matches!(b, Block::PageBreak));
    let blocks: Vec<Block> = blocks
        .into_iter()
        .filter(|b| matches!(b, Block::PageBreak) || !b.text().trim().is_empty())
        .collect();
    let groups = if has_breaks {
        split_at_breaks(blocks)
    } else {
        pack_virtual(blocks)
    };
    let pages = groups
        .into_iter()
        .enumerate()
        .map(|(i, group)| page_from_blocks(u32::try_from(i + 1).unwrap_or(u32::MAX), group))
        .collect();
    Paged {
        pages,
        virtual_pages: !has_breaks,
    }
}

fn split_at_breaks(blocks: Vec<Block>) -> Vec<Vec<Block>> {
    let mut groups = Vec::new();
    let mut current = Vec::new();
    for block in blocks {
        if matches!(block, Block::PageBreak) {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
        } else {
            current.push(block);
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn pack_virtual(blocks: Vec<Block>) -> Vec<Vec<Block>> {
    let mut groups: Vec<Vec<Block>> = Vec::new();
    let mut current: Vec<Block> = Vec::new();
    let mut current_len = 0usize;
    for block in blocks.into_iter().flat_map(split_block) {
        let len = block.text().chars().count() + 2;
        if current_len > 0 && current_len + len > VIRTUAL_PAGE_CHARS {
            // Do not leave headings dangling at the bottom of a page: carry them over.
            let mut carried = Vec::new();
            while current.len() > 1 && matches!(current.last(), Some(Block::Heading { .. })) {
                if let Some(h) = current.pop() {
                    carried.push(h);
                }
            }
            carried.reverse();
            groups.push(std::mem::take(&mut current));
            current_len = carried.iter().map(|b| b.text().chars().count() + 2).sum();
            current = carried;
        }
        current_len += len;
        current.push(block);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Paragraphs longer than a page are cut into page-sized pieces.
fn split_block(block: Block) -> Vec<Block> {
    match block {
        Block::Paragraph(text) if text.chars().count() > VIRTUAL_PAGE_CHARS => {
            split_long_text(&text, VIRTUAL_PAGE_CHARS)
                .into_iter()
                .map(Block::Paragraph)
                .collect()
        }
        other => vec![other],
    }
}

/// Cuts `text` into pieces of at most `max` characters, preferring line ends, then sentence
/// ends, then spaces, each in the second half of the window.
pub(crate) fn split_long_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(2);
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while rest.char_indices().nth(max).is_some() {
        // Byte offsets of char boundaries within the window.
        let window_end = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let half = rest.char_indices().nth(max / 2).map_or(0, |(i, _)| i);
        let window = &rest[..window_end];
        let cut = find_cut(window, half).unwrap_or(window_end);
        let (piece, tail) = rest.split_at(cut);
        let piece = piece.trim();
        if !piece.is_empty() {
            pieces.push(piece.to_owned());
        }
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// Best cut position (byte offset, after the separator) in `window` that is past `min`.
fn find_cut(window: &str, min: usize) -> Option<usize> {
    let after = |sep: &str| window.rfind(sep).map(|i| i + sep.len()).filter(|&i| i > min);
    if let Some(i) = after("\n") {
        return Some(i);
    }
    let sentence = [". ", "! ", "? ", "。"].iter().filter_map(|s| after(s)).max();
    if sentence.is_some() {
        return sentence;
    }
    after(" ")
}

fn page_from_blocks(number: u32, blocks: Vec<Block>) -> Page {
    let mut text = String::new();
    let mut headings = Vec::new();
    for block in blocks {
        let (Block::Heading { .. } | Block::Paragraph(_)) = &block else {
            continue;
        };
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(block.text().trim());
        if let Block::Heading { level, text } = block {
            headings.push(Heading { level, text });
        }
    }
    Page {
        number,
        text,
        headings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(n: usize, ch: char) -> Block {
        Block::Paragraph(std::iter::repeat_n(ch, n).collect())
    }

    #[test]
    fn virtual_pages_cut_at_paragraphs_and_carry_headings() {
        let blocks = vec![
            para(1_500, 'a'),
            para(1_000, 'b'),
            Block::Heading {
                level: 2,
                text: "Next".into(),
            },
            para(1_000, 'c'),
        ];
        let paged = paginate(blocks);
        assert!(paged.virtual_pages);
        assert_eq!(paged.pages.len(), 2);
        assert!(paged.pages[0].headings.is_empty());
        assert_eq!(
            paged.pages[1].headings,
            vec![Heading {
                level: 2,
                text: "Next".into()
            }]
        );
        assert!(paged.pages[1].text.starts_with("Next\n\nccc"));
        assert_eq!(paged.pages[1].number, 2);
    }

    #[test]
    fn explicit_breaks_make_real_pages_without_empty_ones() {
        let blocks = vec![
            Block::PageBreak,
            para(10, 'a'),
            Block::PageBreak,
            Block::PageBreak,
            para(10, 'b'),
            Block::PageBreak,
        ];
        let paged = paginate(blocks);
        assert!(!paged.virtual_pages);
        assert_eq!(
            paged.pages.iter().map(|p| p.number).collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    #[test]
    fn long_paragraphs_are_split_at_sentences() {
        let sentence = "This is a sentence of moderate length. ";
        let text: String = sentence.repeat(300);
        let pieces = split_long_text(&text, 1_000);
        assert!(pieces.len() >= 12);
        for piece in &pieces {
            assert!(piece.chars().count() <= 1_000);
            assert!(piece.ends_with('.'), "{piece:?}");
        }
        let no_spaces: String = "x".repeat(2_500);
        let pieces = split_long_text(&no_spaces, 1_000);
        assert_eq!(
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![1_000, 1_000, 500]
        );
    }
}
