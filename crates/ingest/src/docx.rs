//! DOCX: the ZIP container is opened with the `zip` crate and its XML parts are streamed
//! through `quick-xml` (never fully inflated in memory), under a decompression budget.
//! Paragraph styles give headings (Heading1..6, Title, outline levels); explicit page breaks
//! and Word's "last rendered" page breaks give real pages, otherwise pages are virtual.

use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read, Seek};

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use zip::result::ZipError;
use zip::ZipArchive;

use crate::document::{DocumentKind, ExtractedDocument};
use crate::error::IngestError;
use crate::html::first_heading;
use crate::limits::{BudgetReader, Limits};
use crate::pages::{paginate, Block};
use crate::text::normalize_inline;

const MAIN_PART: &str = "word/document.xml";

fn corrupt(detail: impl Into<String>) -> IngestError {
    IngestError::CorruptDocx {
        detail: detail.into(),
    }
}

/// The decompression budget shared by every part read from one archive.
struct Budget {
    remaining: u64,
    limit: u64,
}

/// Streams the XML part `name` through `on_event`. Returns `Ok(false)` when the part is absent.
fn stream_part<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
    budget: &mut Budget,
    mut on_event: impl FnMut(&Event<'_>),
) -> Result<bool, IngestError> {
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(ZipError::FileNotFound) => return Ok(false),
        Err(e) => return Err(corrupt(format!("cannot open {name}: {e}"))),
    };
    let declared = file.size();
    if declared > budget.remaining {
        return Err(IngestError::DecompressedTooLarge {
            detail: format!(
                "entry {name} declares {declared} bytes, {} bytes of budget left",
                budget.remaining
            ),
            limit: budget.limit,
        });
    }
    let limit = budget.limit;
    let mut xml = Reader::from_reader(BufReader::new(BudgetReader::new(file, &mut budget.remaining)));
    let mut buf = Vec::new();
    let mut depth = 0usize;
    loop {
        match xml.read_event_into(&mut buf) {
            Ok(Event::Eof) => {
                if depth != 0 {
                    return Err(corrupt(format!(
                        "{name} ends with {depth} elements still open (truncated XML)"
                    )));
                }
                break;
            }
            Ok(event) => {
                match &event {
                    Event::Start(_) => depth += 1,
                    Event::End(_) => depth = depth.saturating_sub(1),
                    _ => {}
                }
                on_event(&event);
            }
            Err(quick_xml::Error::Io(e)) => {
                // Our budget reader, or the zip crate noticing more data than the entry declared.
                return Err(if e.kind() == std::io::ErrorKind::FileTooLarge {
                    IngestError::DecompressedTooLarge {
                        detail: format!("entry {name} inflates past the limit while being read"),
                        limit,
                    }
                } else if e.to_string().contains("declared") {
                    IngestError::DecompressedTooLarge {
                        detail: format!(
                            "entry {name} inflates to more than the {declared} bytes it declares"
                        ),
                        limit,
                    }
                } else {
                    corrupt(format!("{name} cannot be inflated: {e}"))
                });
            }
            Err(e) => {
                return Err(corrupt(format!(
                    "{name} is not well-formed XML (near byte {}): {e}",
                    xml.buffer_position()
                )));
            }
        }
        buf.clear();
    }
    Ok(true)
}

/// The value of attribute `key` (for example `w:val`), unescaped.
fn attr(element: &BytesStart<'_>, key: &str) -> Option<String> {
    let attribute = element.try_get_attribute(key).ok()??;
    attribute
        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .ok()
        .map(|v| v.into_owned())
}

/// The text of a character or predefined entity reference (`&#233;`, `&amp;`); other entities
/// are never expanded (no DTD processing, so no entity-expansion bombs).
fn resolve_reference(reference: &BytesRef<'_>) -> Option<String> {
    if reference.is_char_ref() {
        reference.resolve_char_ref().ok().flatten().map(String::from)
    } else {
        quick_xml::escape::resolve_xml_entity(&reference.xml10_content()).map(str::to_owned)
    }
}

/// The qualified name of an element (for example `w:p`).
fn qname<'a>(element: &'a BytesStart<'_>) -> &'a str {
    element.name().0
}

/// Style information from `word/styles.xml`.
#[derive(Debug, Default, Clone)]
struct Style {
    name: Option<String>,
    outline: Option<u8>,
    based_on: Option<String>,
}

fn parse_styles<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    budget: &mut Budget,
) -> Result<HashMap<String, Style>, IngestError> {
    let mut styles = HashMap::new();
    let mut current: Option<(String, Style)> = None;
    stream_part(archive, "word/styles.xml", budget, |event| match event {
        Event::Start(e) | Event::Empty(e) => match qname(e) {
            "w:style" => current = attr(e, "w:styleId").map(|id| (id, Style::default())),
            "w:name" => {
                if let Some((_, style)) = current.as_mut() {
                    style.name = attr(e, "w:val").map(|v| v.to_lowercase());
                }
            }
            "w:outlineLvl" => {
                if let Some((_, style)) = current.as_mut() {
                    style.outline = attr(e, "w:val").and_then(|v| v.parse().ok());
                }
            }
            "w:basedOn" => {
                if let Some((_, style)) = current.as_mut() {
                    style.based_on = attr(e, "w:val");
                }
            }
            _ => {}
        },
        Event::End(e) if e.name().0 == "w:style" => {
            if let Some((id, style)) = current.take() {
                styles.insert(id, style);
            }
        }
        _ => {}
    })?;
    Ok(styles)
}

/// Heading level of a paragraph style, following `basedOn` a few steps.
fn style_level(id: &str, styles: &HashMap<String, Style>) -> Option<u8> {
    let mut id = id.to_owned();
    for _ in 0..5 {
        let Some(style) = styles.get(&id) else { break };
        if let Some(level) = style.name.as_deref().and_then(level_from_name) {
            return Some(level);
        }
        if let Some(outline) = style.outline.filter(|&l| l < 9) {
            return Some((outline + 1).min(6));
        }
        match &style.based_on {
            Some(base) => id = base.clone(),
            None => return None,
        }
    }
    level_from_name(&id.to_lowercase())
}

/// "title" → 1, "heading 3" / "heading3" → 3 (levels above 6 become 6).
fn level_from_name(name: &str) -> Option<u8> {
    let name = name.trim().to_lowercase();
    if name == "title" {
        return Some(1);
    }
    let number = name.strip_prefix("heading")?.trim();
    number.parse::<u8>().ok().filter(|&n| n >= 1).map(|n| n.min(6))
}

fn is_title_style(id: &str, styles: &HashMap<String, Style>) -> bool {
    id.eq_ignore_ascii_case("title") || styles.get(id).and_then(|s| s.name.as_deref()) == Some("title")
}

#[derive(Default)]
struct Paragraph {
    style: Option<String>,
    outline: Option<u8>,
    /// Set for numbered or bulleted paragraphs (`w:numPr`): the list level (`w:ilvl`).
    list_level: Option<u8>,
    /// `w:numId w:val="0"` switches numbering off.
    numbering_off: bool,
    text: String,
}

/// Builds blocks from the events of `word/document.xml`.
struct DocumentWalker<'s> {
    styles: &'s HashMap<String, Style>,
    blocks: Vec<Block>,
    paragraph: Option<Paragraph>,
    in_paragraph_properties: bool,
    in_text: bool,
    table_depth: usize,
    rows: Vec<String>,
    cells: Vec<String>,
    cell_text: String,
    break_after_table: bool,
    title_paragraph: Option<String>,
    list_lines: Vec<String>,
}

impl<'s> DocumentWalker<'s> {
    fn new(styles: &'s HashMap<String, Style>) -> Self {
        DocumentWalker {
            styles,
            blocks: Vec::new(),
            paragraph: None,
            in_paragraph_properties: false,
            in_text: false,
            table_depth: 0,
            rows: Vec::new(),
            cells: Vec::new(),
            cell_text: String::new(),
            break_after_table: false,
            title_paragraph: None,
            list_lines: Vec::new(),
        }
    }

    fn push_text(&mut self, text: &str) {
        if let Some(p) = self.paragraph.as_mut() {
            p.text.push_str(text);
        } else if self.table_depth > 0 {
            self.cell_text.push_str(text);
        }
    }

    /// Emits the paragraph text collected so far (the paragraph may go on after a page break).
    fn emit_paragraph_text(&mut self) {
        let Some(p) = self.paragraph.as_mut() else { return };
        let raw = std::mem::take(&mut p.text);
        let text = raw
            .split('\n')
            .map(normalize_inline)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        if text.is_empty() {
            return;
        }
        if self.table_depth > 0 {
            if !self.cell_text.is_empty() {
                self.cell_text.push(' ');
            }
            self.cell_text.push_str(&text);
            return;
        }
        let style = p.style.clone();
        let level = p
            .outline
            .filter(|&l| l < 9)
            .map(|l| (l + 1).min(6))
            .or_else(|| style.as_deref().and_then(|s| style_level(s, self.styles)));
        if style.as_deref().is_some_and(|s| is_title_style(s, self.styles)) && self.title_paragraph.is_none()
        {
            self.title_paragraph = Some(text.replace('\n', " "));
        }
        let list_level = if p.numbering_off {
            None
        } else {
            p.list_level.or_else(|| {
                let name = style
                    .as_deref()
                    .and_then(|s| self.styles.get(s))
                    .and_then(|s| s.name.as_deref());
                name.is_some_and(|n| n.starts_with("list")).then_some(0)
            })
        };
        match (level, list_level) {
            (Some(level), _) => {
                self.flush_list();
                self.blocks.push(Block::Heading {
                    level,
                    text: text.replace('\n', " "),
                });
            }
            (None, Some(list_level)) => {
                let indent = "  ".repeat(usize::from(list_level.min(8)));
                self.list_lines
                    .push(format!("{indent}- {}", text.replace('\n', " ")));
            }
            (None, None) => {
                self.flush_list();
                self.blocks.push(Block::Paragraph(text));
            }
        }
    }

    /// Consecutive list paragraphs become one block, one item per line.
    fn flush_list(&mut self) {
        if !self.list_lines.is_empty() {
            let lines = std::mem::take(&mut self.list_lines);
            self.blocks.push(Block::Paragraph(lines.join("\n")));
        }
    }

    fn page_break(&mut self) {
        if self.table_depth > 0 {
            self.break_after_table = true;
            return;
        }
        self.emit_paragraph_text();
        self.flush_list();
        self.blocks.push(Block::PageBreak);
    }

    fn start(&mut self, e: &BytesStart<'_>, empty: bool) {
        match qname(e) {
            "w:p" => {
                self.paragraph = Some(Paragraph::default());
                if empty {
                    self.paragraph = None;
                }
            }
            "w:pPr" if !empty => self.in_paragraph_properties = true,
            "w:pStyle" if self.in_paragraph_properties => {
                if let Some(p) = self.paragraph.as_mut() {
                    p.style = attr(e, "w:val");
                }
            }
            "w:ilvl" if self.in_paragraph_properties => {
                if let Some(p) = self.paragraph.as_mut() {
                    p.list_level = Some(attr(e, "w:val").and_then(|v| v.parse().ok()).unwrap_or(0));
                }
            }
            "w:numId" if self.in_paragraph_properties => {
                if let Some(p) = self.paragraph.as_mut() {
                    p.numbering_off = attr(e, "w:val").as_deref() == Some("0");
                    p.list_level.get_or_insert(0);
                }
            }
            "w:outlineLvl" if self.in_paragraph_properties => {
                if let Some(p) = self.paragraph.as_mut() {
                    p.outline = attr(e, "w:val").and_then(|v| v.parse().ok());
                }
            }
            "w:pageBreakBefore" if self.in_paragraph_properties => {
                let on = attr(e, "w:val").is_none_or(|v| !matches!(v.as_str(), "0" | "false" | "off"));
                if on {
                    self.page_break();
                }
            }
            "w:t" if !empty => self.in_text = true,
            "w:tab" if !self.in_paragraph_properties => self.push_text(" "),
            "w:br" => match attr(e, "w:type").as_deref() {
                Some("page") => self.page_break(),
                Some("column") => self.push_text(" "),
                _ => self.push_text("\n"),
            },
            "w:cr" => self.push_text("\n"),
            "w:noBreakHyphen" => self.push_text("-"),
            "w:lastRenderedPageBreak" => self.page_break(),
            "w:tbl" if !empty => {
                if self.table_depth == 0 {
                    self.flush_list();
                }
                self.table_depth += 1;
            }
            "w:tc" if !empty && self.table_depth == 1 => self.cell_text.clear(),
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "w:p" => {
                self.emit_paragraph_text();
                self.paragraph = None;
            }
            "w:pPr" => self.in_paragraph_properties = false,
            "w:t" => self.in_text = false,
            "w:tc" if self.table_depth == 1 => {
                let cell = normalize_inline(&std::mem::take(&mut self.cell_text));
                self.cells.push(cell);
            }
            "w:tr" if self.table_depth == 1 => {
                let cells = std::mem::take(&mut self.cells);
                if cells.iter().any(|c| !c.is_empty()) {
                    self.rows.push(cells.join(" | "));
                }
            }
            "w:tbl" if self.table_depth > 0 => {
                self.table_depth -= 1;
                if self.table_depth == 0 {
                    let rows = std::mem::take(&mut self.rows);
                    if !rows.is_empty() {
                        self.blocks.push(Block::Paragraph(rows.join("\n")));
                    }
                    if std::mem::take(&mut self.break_after_table) {
                        self.blocks.push(Block::PageBreak);
                    }
                }
            }
            _ => {}
        }
    }

    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::Start(e) => self.start(e, false),
            Event::Empty(e) => self.start(e, true),
            Event::End(e) => self.end(e.name().0),
            Event::Text(t) if self.in_text => self.push_text(&t.xml10_content()),
            Event::CData(t) if self.in_text => self.push_text(&t.xml10_content()),
            Event::GeneralRef(r) if self.in_text => {
                if let Some(s) = resolve_reference(r) {
                    self.push_text(&s);
                }
            }
            _ => {}
        }
    }
}

/// Where the main document part is, from the package relationships (usually word/document.xml).
fn main_part_name<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    budget: &mut Budget,
) -> Result<String, IngestError> {
    let mut target = None;
    stream_part(archive, "_rels/.rels", budget, |event| {
        if let Event::Start(e) | Event::Empty(e) = event {
            if e.local_name().as_ref() == "Relationship"
                && attr(e, "Type").is_some_and(|t| t.ends_with("/officeDocument"))
                && target.is_none()
            {
                target = attr(e, "Target").map(|t| t.trim_start_matches('/').to_owned());
            }
        }
    })?;
    Ok(target
        .filter(|t| archive.index_for_name(t).is_some())
        .unwrap_or_else(|| MAIN_PART.to_owned()))
}

fn core_title<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    budget: &mut Budget,
) -> Result<Option<String>, IngestError> {
    let mut in_title = false;
    let mut title = String::new();
    stream_part(archive, "docProps/core.xml", budget, |event| match event {
        Event::Start(e) if e.local_name().as_ref() == "title" => in_title = true,
        Event::End(e) if e.local_name().as_ref() == "title" => in_title = false,
        Event::Text(t) if in_title => title.push_str(&t.xml10_content()),
        Event::GeneralRef(r) if in_title => title.push_str(&resolve_reference(r).unwrap_or_default()),
        _ => {}
    })?;
    let title = normalize_inline(&title);
    Ok((!title.is_empty()).then_some(title))
}

pub(crate) fn extract_docx(bytes: &[u8], limits: &Limits) -> Result<ExtractedDocument, IngestError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| corrupt(format!("the ZIP container is unreadable: {e}")))?;
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| corrupt(format!("entry {index} is unreadable: {e}")))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > limits.max_decompressed_bytes {
        return Err(IngestError::DecompressedTooLarge {
            detail: format!("its {} entries declare {declared} bytes in total", archive.len()),
            limit: limits.max_decompressed_bytes,
        });
    }
    let mut budget = Budget {
        remaining: limits.max_decompressed_bytes,
        limit: limits.max_decompressed_bytes,
    };
    let main = main_part_name(&mut archive, &mut budget)?;
    let styles = parse_styles(&mut archive, &mut budget)?;
    let core = core_title(&mut archive, &mut budget)?;
    let mut walker = DocumentWalker::new(&styles);
    if !stream_part(&mut archive, &main, &mut budget, |event| walker.event(event))? {
        return Err(corrupt(format!(
            "the archive has no {main} (the main document part)"
        )));
    }
    walker.flush_list();
    let title = core
        .or(walker.title_paragraph.take())
        .or_else(|| first_heading(&walker.blocks));
    let paged = paginate(walker.blocks);
    if !paged.virtual_pages {
        limits.check_pages(paged.pages.len() as u64)?;
    }
    Ok(ExtractedDocument {
        kind: DocumentKind::Docx,
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
    fn style_names_and_ids_give_heading_levels() {
        let mut styles = HashMap::new();
        styles.insert(
            "berschrift1".to_owned(),
            Style {
                name: Some("heading 1".into()),
                ..Style::default()
            },
        );
        styles.insert(
            "MyHead".to_owned(),
            Style {
                based_on: Some("berschrift1".into()),
                ..Style::default()
            },
        );
        styles.insert(
            "Outline".to_owned(),
            Style {
                outline: Some(2),
                ..Style::default()
            },
        );
        assert_eq!(style_level("berschrift1", &styles), Some(1));
        assert_eq!(style_level("MyHead", &styles), Some(1));
        assert_eq!(style_level("Outline", &styles), Some(3));
        assert_eq!(style_level("Heading4", &styles), Some(4));
        assert_eq!(style_level("Title", &styles), Some(1));
        assert_eq!(style_level("Normal", &styles), None);
    }
}
