//! HTML: tokenised with html5ever's HTML5 tokenizer (entities decoded, `<script>`/`<style>`
//! contents read as raw text as browsers do) and walked in one linear pass, so hostile nesting
//! costs no more than flat markup. Scripts, styles, navigation and hidden elements are dropped;
//! headings, paragraphs, lists, tables and preformatted text keep their structure.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use crate::document::{DocumentKind, ExtractedDocument};
use crate::error::IngestError;
use crate::limits::Limits;
use crate::pages::{paginate, Block};
use crate::text::{normalize_inline, normalize_multiline};

/// Elements whose whole subtree carries no document text.
const SKIPPED: &[&str] = &[
    "script", "style", "nav", "noscript", "template", "svg", "math", "iframe", "object", "embed", "canvas",
    "select", "button", "audio", "video", "map", "head", "title", "textarea", "xmp", "noembed", "noframes",
];

/// Elements that never have content or an end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
    "wbr",
];

/// Elements allowed inside `<head>`: any other start tag means the (unclosed) head is over.
const HEAD_CONTENT: &[&str] = &[
    "title", "meta", "link", "style", "script", "base", "noscript", "template", "object",
];

/// Elements that end the current paragraph.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "main",
    "p",
    "section",
    "summary",
    "caption",
];

/// Headings, the title and blocks of an HTML document or fragment.
#[derive(Debug, Default)]
pub(crate) struct HtmlContent {
    pub title: Option<String>,
    pub blocks: Vec<Block>,
}

#[derive(Default)]
struct Walker {
    blocks: Vec<Block>,
    inline: String,
    heading: Option<u8>,
    /// Open lists, innermost last: (ordered, next number).
    lists: Vec<(bool, u32)>,
    list_lines: Vec<String>,
    /// Prefix of the list item being filled ("  - "), if one is open.
    item_prefix: Option<String>,
    table_depth: usize,
    table_rows: Vec<String>,
    table_cells: Vec<String>,
    pre_depth: usize,
}

impl Walker {
    fn in_list(&self) -> bool {
        !self.lists.is_empty()
    }

    fn flush_paragraph(&mut self) {
        if self.in_list() || self.table_depth > 0 {
            self.inline.push(' ');
            return;
        }
        let text = inline_with_breaks(&std::mem::take(&mut self.inline));
        if !text.is_empty() {
            self.blocks.push(Block::Paragraph(text));
        }
    }

    fn finish_item(&mut self) {
        let text = normalize_inline(&std::mem::take(&mut self.inline));
        if text.is_empty() {
            return;
        }
        let prefix = self
            .item_prefix
            .take()
            .unwrap_or_else(|| "  ".repeat(self.lists.len().min(8)));
        self.list_lines.push(format!("{prefix}{text}"));
    }

    fn open(&mut self, name: &str) {
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if !self.in_list() && self.table_depth == 0 => {
                self.flush_paragraph();
                self.heading = name[1..].parse().ok();
            }
            "ul" | "ol" | "menu" => {
                if self.in_list() {
                    self.finish_item();
                } else {
                    self.flush_paragraph();
                }
                self.lists.push((name == "ol", 1));
            }
            "li" => {
                self.finish_item();
                let depth = self.lists.len().clamp(1, 8);
                let indent = "  ".repeat(depth - 1);
                let marker = match self.lists.last_mut() {
                    Some((true, n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".to_owned(),
                };
                self.item_prefix = Some(format!("{indent}{marker}"));
            }
            "table" => {
                if self.table_depth == 0 {
                    self.flush_paragraph();
                }
                self.table_depth += 1;
            }
            "td" | "th" if self.table_depth == 1 => self.inline.clear(),
            "pre" => {
                self.flush_paragraph();
                self.pre_depth += 1;
            }
            "br" => self.inline.push('\n'),
            _ if BLOCKS.contains(&name) => self.flush_paragraph(),
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if self.heading.is_some() => {
                let text = normalize_inline(&std::mem::take(&mut self.inline));
                if let (Some(level), false) = (self.heading.take(), text.is_empty()) {
                    self.blocks.push(Block::Heading { level, text });
                }
            }
            "li" => self.finish_item(),
            "ul" | "ol" | "menu" if self.in_list() => {
                self.finish_item();
                self.lists.pop();
                if self.lists.is_empty() {
                    let lines = std::mem::take(&mut self.list_lines);
                    if !lines.is_empty() {
                        self.blocks.push(Block::Paragraph(lines.join("\n")));
                    }
                }
            }
            "td" | "th" if self.table_depth == 1 => {
                self.table_cells
                    .push(normalize_inline(&std::mem::take(&mut self.inline)));
            }
            "tr" if self.table_depth == 1 => {
                let cells = std::mem::take(&mut self.table_cells);
                if cells.iter().any(|c| !c.is_empty()) {
                    self.table_rows.push(cells.join(" | "));
                }
            }
            "table" if self.table_depth > 0 => {
                self.table_depth -= 1;
                if self.table_depth == 0 {
                    let rows = std::mem::take(&mut self.table_rows);
                    let leftover = normalize_inline(&std::mem::take(&mut self.inline));
                    let mut text = rows.join("\n");
                    if !leftover.is_empty() {
                        text = if text.is_empty() {
                            leftover
                        } else {
                            format!("{text}\n{leftover}")
                        };
                    }
                    if !text.is_empty() {
                        if self.in_list() {
                            self.inline.push_str(&text);
                        } else {
                            self.blocks.push(Block::Paragraph(text));
                        }
                    }
                }
            }
            "pre" if self.pre_depth > 0 => {
                self.pre_depth -= 1;
                if self.pre_depth == 0 && !self.in_list() && self.table_depth == 0 {
                    let text = normalize_multiline(&std::mem::take(&mut self.inline), false);
                    if !text.is_empty() {
                        self.blocks.push(Block::Paragraph(text));
                    }
                }
            }
            _ if BLOCKS.contains(&name) => self.flush_paragraph(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if self.pre_depth > 0 {
            self.inline.push_str(text);
        } else {
            // Source line breaks are spaces in HTML; only <br> makes a line break.
            self.inline
                .extend(text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }));
        }
    }

    fn finish(mut self) -> Vec<Block> {
        while self.in_list() {
            self.close("ul");
        }
        while self.table_depth > 0 {
            self.close("table");
        }
        if self.heading.is_some() {
            self.close("h1");
        }
        self.pre_depth = 0;
        self.flush_paragraph();
        self.blocks
    }
}

/// Inline text in which `<br>` became `\n`: each line normalised, empty lines dropped.
fn inline_with_breaks(text: &str) -> String {
    text.split('\n')
        .map(normalize_inline)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Hidden elements and navigation landmarks are skipped with their whole subtree.
fn is_hidden(tag: &Tag) -> bool {
    tag.attrs.iter().any(|attr| match &*attr.name.local {
        "hidden" => true,
        "aria-hidden" => attr.value.trim().eq_ignore_ascii_case("true"),
        // Site chrome marked up for accessibility rather than with <nav>.
        "role" => matches!(
            attr.value.trim().to_ascii_lowercase().as_str(),
            "navigation" | "search"
        ),
        "style" => {
            let style = attr.value.to_ascii_lowercase().replace(' ', "");
            style.contains("display:none") || style.contains("visibility:hidden")
        }
        _ => false,
    })
}

/// How the tokenizer must read the content of an element, as an HTML parser would tell it.
fn raw_kind(name: &str) -> Option<RawKind> {
    match name {
        "title" | "textarea" => Some(RawKind::Rcdata),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => Some(RawKind::Rawtext),
        "script" => Some(RawKind::ScriptData),
        _ => None,
    }
}

/// The state of one pass over the tokens.
#[derive(Default)]
struct Pass {
    walker: Walker,
    title: Option<String>,
    /// Text of the `<title>` being read.
    title_buf: Option<String>,
    /// The element whose subtree is being skipped, and how many of it are open.
    skipping: Option<(String, usize)>,
}

impl Pass {
    fn tag(&mut self, tag: Tag) -> TokenSinkResult<()> {
        let name: &str = &tag.name;
        let raw = raw_kind(name)
            .map(TokenSinkResult::RawData)
            .unwrap_or(TokenSinkResult::Continue);
        match tag.kind {
            TagKind::StartTag => {
                if name == "title"
                    && self.title.is_none()
                    && self.skipping.as_ref().is_none_or(|(s, _)| s == "head")
                {
                    self.title_buf = Some(String::new());
                    return raw;
                }
                if let Some((skipped, depth)) = self.skipping.as_mut() {
                    if skipped == "head" && (name == "body" || !HEAD_CONTENT.contains(&name)) {
                        // The head was never closed: this tag starts the body.
                        self.skipping = None;
                    } else {
                        if skipped == name && !tag.self_closing {
                            *depth += 1;
                        }
                        return raw;
                    }
                }
                if VOID.contains(&name) {
                    if !is_hidden(&tag) {
                        self.walker.open(name);
                    }
                } else if SKIPPED.contains(&name) || is_hidden(&tag) {
                    self.skipping = Some((name.to_owned(), 1));
                } else {
                    self.walker.open(name);
                }
                raw
            }
            TagKind::EndTag => {
                if name == "title" && self.title_buf.is_some() {
                    self.title = self
                        .title_buf
                        .take()
                        .map(|t| normalize_inline(&t))
                        .filter(|t| !t.is_empty());
                    return TokenSinkResult::Continue;
                }
                match self.skipping.as_mut() {
                    Some((skipped, depth)) if skipped == name => {
                        *depth -= 1;
                        if *depth == 0 {
                            self.skipping = None;
                        }
                    }
                    Some(_) => {}
                    None => self.walker.close(name),
                }
                TokenSinkResult::Continue
            }
        }
    }

    fn text(&mut self, text: &str) {
        if let Some(buf) = self.title_buf.as_mut() {
            buf.push_str(text);
        } else if self.skipping.is_none() {
            self.walker.text(text);
        }
    }
}

struct Sink(RefCell<Pass>);

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        let mut pass = self.0.borrow_mut();
        match token {
            Token::TagToken(tag) => pass.tag(tag),
            Token::CharacterTokens(text) => {
                pass.text(&text);
                TokenSinkResult::Continue
            }
            _ => TokenSinkResult::Continue,
        }
    }
}

/// Reads an HTML document or fragment (such as an HTML block inside Markdown) into a title
/// and blocks.
pub(crate) fn html_content(html: &str) -> HtmlContent {
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from_slice(html));
    let tokenizer = Tokenizer::new(Sink(RefCell::new(Pass::default())), TokenizerOpts::default());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    let pass = tokenizer.sink.0.into_inner();
    let title = pass.title.or_else(|| {
        pass.title_buf
            .map(|t| normalize_inline(&t))
            .filter(|t| !t.is_empty())
    });
    HtmlContent {
        title,
        blocks: pass.walker.finish(),
    }
}

/// Extracts an HTML document into virtual pages.
pub(crate) fn extract_html(html: &str, limits: &Limits) -> Result<ExtractedDocument, IngestError> {
    let content = html_content(html);
    let title = content.title.or_else(|| first_heading(&content.blocks));
    let paged = paginate(content.blocks);
    let doc = ExtractedDocument {
        kind: DocumentKind::Html,
        title,
        pages: paged.pages,
        ocr_pages: Vec::new(),
        ocr: None,
        virtual_pages: paged.virtual_pages,
        warnings: Vec::new(),
    };
    limits.check_text_len(&doc.full_text())?;
    Ok(doc)
}

/// The first level-1 heading, or failing that the first heading of any level.
pub(crate) fn first_heading(blocks: &[Block]) -> Option<String> {
    let heading = |want: Option<u8>| {
        blocks.iter().find_map(|b| match b {
            Block::Heading { level, text } if want.is_none_or(|w| w == *level) => Some(text.clone()),
            _ => None,
        })
    };
    heading(Some(1)).or_else(|| heading(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_survives_and_noise_is_dropped() {
        let html = r#"<html><head><title> My &amp; Page </title><style>p{}</style></head>
            <body><nav><a href="/">Home</a></nav><h1>Top &lt;1&gt;</h1><p>Hello <b>bold</b>
            world<br>second line</p><script>alert(1)</script><ul><li>one<ul><li>nested</li></ul></li>
            <li>two</li></ul><ol><li>first</li><li>second</li></ol>
            <table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>
            <div hidden>secret</div><pre>  code
    indented</pre></body></html>"#;
        let content = html_content(html);
        assert_eq!(content.title.as_deref(), Some("My & Page"));
        let texts: Vec<String> = content
            .blocks
            .iter()
            .map(|b| match b {
                Block::Heading { level, text } => format!("h{level}:{text}"),
                Block::Paragraph(t) => t.clone(),
                Block::PageBreak => "break".into(),
            })
            .collect();
        assert_eq!(
            texts,
            vec![
                "h1:Top <1>",
                "Hello bold world\nsecond line",
                "- one\n  - nested\n- two",
                "1. first\n2. second",
                "A | B\n1 | 2",
                "code\nindented",
            ]
        );
    }
}
