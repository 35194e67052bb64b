//! Markdown (CommonMark with tables, task lists, footnotes and YAML front matter), parsed with
//! `pulldown-cmark`. Heading markers, emphasis and link targets are removed; headings,
//! paragraphs, lists, tables and code blocks keep their structure.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::document::{DocumentKind, ExtractedDocument};
use crate::error::IngestError;
use crate::html::{first_heading, html_content};
use crate::limits::Limits;
use crate::pages::{paginate, Block};
use crate::text::{normalize_inline, normalize_multiline};

fn level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[derive(Default)]
struct Builder {
    blocks: Vec<Block>,
    inline: String,
    heading: Option<u8>,
    /// Open lists, innermost last: the next number of an ordered list.
    lists: Vec<Option<u64>>,
    list_lines: Vec<String>,
    item_prefix: Option<String>,
    table_rows: Vec<String>,
    table_cells: Vec<String>,
    in_table: bool,
    code: Option<String>,
    html: Option<String>,
    metadata: Option<String>,
    front_matter_title: Option<String>,
}

impl Builder {
    fn in_list(&self) -> bool {
        !self.lists.is_empty()
    }

    fn push_block(&mut self, block: Block) {
        match block {
            Block::Paragraph(text) if self.in_list() => {
                // A code block or table inside a list item stays inside the list.
                let indent = "  ".repeat(self.lists.len().min(8));
                self.list_lines
                    .extend(text.lines().map(|l| format!("{indent}{l}")));
            }
            other => self.blocks.push(other),
        }
    }

    fn finish_item(&mut self) {
        let text = inline_with_breaks(&std::mem::take(&mut self.inline)).replace('\n', " ");
        if text.is_empty() {
            return;
        }
        let prefix = self
            .item_prefix
            .take()
            .unwrap_or_else(|| "  ".repeat(self.lists.len().min(8)));
        self.list_lines.push(format!("{prefix}{text}"));
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { level, .. } => {
                self.inline.clear();
                self.heading = Some(level_number(level));
            }
            Tag::Paragraph if self.in_list() => self.inline.push(' '),
            Tag::Paragraph => self.inline.clear(),
            Tag::List(start) => {
                self.finish_item();
                self.lists.push(start);
            }
            Tag::Item => {
                self.finish_item();
                let depth = self.lists.len().clamp(1, 8);
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".to_owned(),
                };
                self.item_prefix = Some(format!("{}{marker}", "  ".repeat(depth - 1)));
            }
            Tag::Table(_) => {
                self.finish_item();
                self.in_table = true;
            }
            Tag::TableCell => self.inline.clear(),
            Tag::CodeBlock(_) => {
                self.finish_item();
                self.code = Some(String::new());
            }
            Tag::HtmlBlock => self.html = Some(String::new()),
            Tag::MetadataBlock(_) => self.metadata = Some(String::new()),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) => {
                let text = normalize_inline(&std::mem::take(&mut self.inline));
                if let (Some(level), false) = (self.heading.take(), text.is_empty()) {
                    if self.in_list() {
                        self.inline = text;
                    } else {
                        self.blocks.push(Block::Heading { level, text });
                    }
                }
            }
            TagEnd::Paragraph if !self.in_list() && !self.in_table => {
                let text = inline_with_breaks(&std::mem::take(&mut self.inline));
                if !text.is_empty() {
                    self.blocks.push(Block::Paragraph(text));
                }
            }
            TagEnd::Item => self.finish_item(),
            TagEnd::List(_) => {
                self.finish_item();
                self.lists.pop();
                if !self.in_list() {
                    let lines = std::mem::take(&mut self.list_lines);
                    if !lines.is_empty() {
                        self.blocks.push(Block::Paragraph(lines.join("\n")));
                    }
                }
            }
            TagEnd::TableCell => {
                self.table_cells
                    .push(normalize_inline(&std::mem::take(&mut self.inline)));
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                let cells = std::mem::take(&mut self.table_cells);
                if cells.iter().any(|c| !c.is_empty()) {
                    self.table_rows.push(cells.join(" | "));
                }
            }
            TagEnd::Table => {
                self.in_table = false;
                let rows = std::mem::take(&mut self.table_rows);
                if !rows.is_empty() {
                    self.push_block(Block::Paragraph(rows.join("\n")));
                }
            }
            TagEnd::CodeBlock => {
                let code = normalize_multiline(&self.code.take().unwrap_or_default(), false);
                if !code.is_empty() {
                    self.push_block(Block::Paragraph(code));
                }
            }
            TagEnd::HtmlBlock => {
                let html = self.html.take().unwrap_or_default();
                for block in html_content(&html).blocks {
                    self.push_block(block);
                }
            }
            TagEnd::MetadataBlock(_) => {
                let metadata = self.metadata.take().unwrap_or_default();
                self.front_matter_title = metadata.lines().find_map(|line| {
                    let value = line
                        .strip_prefix("title:")?
                        .trim()
                        .trim_matches(['"', '\''])
                        .trim();
                    (!value.is_empty()).then(|| value.to_owned())
                });
            }
            _ => {}
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                if let Some(code) = self.code.as_mut() {
                    code.push_str(&text);
                } else if let Some(metadata) = self.metadata.as_mut() {
                    metadata.push_str(&text);
                } else {
                    self.inline.push_str(&text);
                }
            }
            Event::Code(text) | Event::InlineMath(text) | Event::DisplayMath(text) => {
                self.inline.push_str(&text)
            }
            Event::Html(html) => {
                if let Some(buf) = self.html.as_mut() {
                    buf.push_str(&html);
                }
            }
            Event::SoftBreak => self.inline.push(' '),
            Event::HardBreak => self.inline.push('\n'),
            Event::TaskListMarker(done) => self.inline.push_str(if done { "[x] " } else { "[ ] " }),
            _ => {}
        }
    }
}

/// Inline text in which hard breaks became `\n`: each line normalised, empty lines dropped.
fn inline_with_breaks(text: &str) -> String {
    text.split('\n')
        .map(normalize_inline)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Extracts a Markdown document into virtual pages; the title is the front-matter `title:` or
/// the first heading.
pub(crate) fn extract_markdown(markdown: &str, limits: &Limits) -> Result<ExtractedDocument, IngestError> {
    limits.check_text_len(markdown)?;
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut builder = Builder::default();
    for event in Parser::new_ext(markdown, options) {
        builder.event(event);
    }
    builder.finish_item();
    if !builder.list_lines.is_empty() {
        let lines = std::mem::take(&mut builder.list_lines);
        builder.blocks.push(Block::Paragraph(lines.join("\n")));
    }
    let title = builder
        .front_matter_title
        .take()
        .or_else(|| first_heading(&builder.blocks));
    let paged = paginate(builder.blocks);
    Ok(ExtractedDocument {
        kind: DocumentKind::Markdown,
        title,
        pages: paged.pages,
        ocr_pages: Vec::new(),
        ocr: None,
        virtual_pages: paged.virtual_pages,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_structure_is_kept_and_markup_removed() {
        let md = "---\ntitle: \"Front\"\n---\n# Intro\n\nSome **bold** and [a link](http://x) \
                  with `code`.\n\n- one\n- two\n  1. sub\n\n| A | B |\n|---|---|\n| 1 | 2 |\n\n```\nfn x() {}\n```\n";
        let doc = extract_markdown(md, &Limits::default()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("Front"));
        assert_eq!(doc.pages.len(), 1);
        assert_eq!(
            doc.pages[0].text,
            "Intro\n\nSome bold and a link with code.\n\n- one\n- two\n  1. sub\n\nA | B\n1 | 2\n\nfn x() {}"
        );
        assert_eq!(doc.pages[0].headings.len(), 1);
    }
}
