//! HTML and Markdown: headings are found, markup is removed, entities are decoded, scripts and
//! navigation are dropped, list and table structure survives.

use learnflow_ingest::{detect, extract, DocumentKind, Heading, IngestOptions, VIRTUAL_PAGE_CHARS};

fn heading(level: u8, text: &str) -> Heading {
    Heading {
        level,
        text: text.to_owned(),
    }
}

#[test]
fn html_headings_entities_and_lists_survive_while_scripts_go() {
    let html = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Caf&eacute; Chemistry &ndash; Week&nbsp;1</title>
  <style>body { color: red }</style>
  <script>var secret = "do not index";</script>
</head>
<body>
  <nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li></ul></nav>
  <h1>Acids &amp; Bases</h1>
  <p>An acid donates a proton (H<sup>+</sup>);
     a base   accepts one. The pH scale runs from 0&#160;to&nbsp;14 &mdash; 7 is neutral.</p>
  <h2>Examples</h2>
  <ul>
    <li>Hydrochloric acid: &lt;strong&gt;</li>
    <li>Sodium hydroxide
      <ol><li>in soap</li><li>in drain cleaner</li></ol>
    </li>
  </ul>
  <table>
    <tr><th>Substance</th><th>pH</th></tr>
    <tr><td>Lemon juice</td><td>2</td></tr>
  </table>
  <script type="module">console.log("also dropped")</script>
  <noscript>Enable JavaScript</noscript>
  <footer><p>&copy; 2024 School</p></footer>
</body>
</html>"#;
    assert_eq!(detect(html.as_bytes()).unwrap(), DocumentKind::Html);
    let doc = extract(html.as_bytes(), &IngestOptions::default()).expect("HTML extracts");
    assert_eq!(doc.kind, DocumentKind::Html);
    assert_eq!(doc.title.as_deref(), Some("Café Chemistry – Week 1"));
    assert!(doc.virtual_pages);
    assert_eq!(doc.pages.len(), 1);
    let page = &doc.pages[0];
    assert_eq!(
        page.headings,
        vec![heading(1, "Acids & Bases"), heading(2, "Examples")]
    );
    assert_eq!(
        page.text,
        "Acids & Bases\n\n\
         An acid donates a proton (H+); a base accepts one. The pH scale runs from 0 to 14 — 7 is neutral.\n\n\
         Examples\n\n\
         - Hydrochloric acid: <strong>\n- Sodium hydroxide\n  1. in soap\n  2. in drain cleaner\n\n\
         Substance | pH\nLemon juice | 2\n\n\
         © 2024 School"
    );
    for dropped in ["secret", "color", "Home", "About us", "console", "JavaScript"] {
        assert!(
            !page.text.contains(dropped),
            "{dropped:?} should be dropped: {}",
            page.text
        );
    }
}

#[test]
fn html_without_a_doctype_is_recognised_by_its_tags() {
    let html = "<div class=\"post\"><h3>Osmosis</h3><p>Water moves across a membrane.</p></div>";
    assert_eq!(detect(html.as_bytes()).unwrap(), DocumentKind::Html);
    let doc = extract(html.as_bytes(), &IngestOptions::default()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Osmosis"));
    assert_eq!(doc.pages[0].text, "Osmosis\n\nWater moves across a membrane.");
}

#[test]
fn markdown_heading_markers_links_and_emphasis_are_removed() {
    let md = "# Thermodynamics\n\nEnergy is *conserved*: it is **never** created or destroyed \
              (see [the first law](https://example.org/law)).\n\n\
              ## Laws\n\n1. First law\n2. Second law\n   - entropy grows\n\n\
              Setext heading\n--------------\n\nFinal paragraph with `inline code` &amp; an entity.\n";
    assert_eq!(detect(md.as_bytes()).unwrap(), DocumentKind::Markdown);
    let doc = extract(md.as_bytes(), &IngestOptions::default()).expect("Markdown extracts");
    assert_eq!(doc.kind, DocumentKind::Markdown);
    assert_eq!(doc.title.as_deref(), Some("Thermodynamics"));
    let page = &doc.pages[0];
    assert_eq!(
        page.headings,
        vec![
            heading(1, "Thermodynamics"),
            heading(2, "Laws"),
            heading(2, "Setext heading")
        ]
    );
    assert_eq!(
        page.text,
        "Thermodynamics\n\n\
         Energy is conserved: it is never created or destroyed (see the first law).\n\n\
         Laws\n\n1. First law\n2. Second law\n  - entropy grows\n\n\
         Setext heading\n\n\
         Final paragraph with inline code & an entity."
    );
    assert!(!page.text.contains('#') && !page.text.contains("**") && !page.text.contains("https://"));
}

#[test]
fn long_markdown_is_split_into_virtual_pages_at_paragraphs_with_headings_on_their_page() {
    let mut md = String::new();
    for chapter in 1..=6 {
        md.push_str(&format!("## Chapter {chapter}\n\n"));
        for paragraph in 0..4 {
            md.push_str(&format!(
                "Paragraph {paragraph} of chapter {chapter}. {}\n\n",
                "Cells divide by mitosis, which gives two identical daughter cells. ".repeat(6)
            ));
        }
    }
    let doc = extract(md.as_bytes(), &IngestOptions::default()).unwrap();
    assert!(doc.virtual_pages);
    assert!(doc.pages.len() >= 4, "{} pages", doc.pages.len());
    let mut seen = Vec::new();
    for (i, page) in doc.pages.iter().enumerate() {
        assert_eq!(page.number as usize, i + 1);
        assert!(page.text.chars().count() <= VIRTUAL_PAGE_CHARS);
        assert!(
            !page.text.ends_with(&format!("Chapter {}", i + 1)),
            "no heading dangles at a page end"
        );
        for h in &page.headings {
            assert!(page.text.contains(&h.text), "heading {:?} is on its page", h.text);
            seen.push(h.text.clone());
        }
    }
    assert_eq!(seen, (1..=6).map(|c| format!("Chapter {c}")).collect::<Vec<_>>());
}

#[test]
fn plain_text_keeps_its_paragraphs_and_form_feeds_make_pages() {
    let text = "Lecture 1\n\nThe   mitochondrion is\nthe powerhouse of the cell.   \n\n\n\nEnd of lecture.\n";
    let doc = extract(text.as_bytes(), &IngestOptions::default()).unwrap();
    assert_eq!(doc.kind, DocumentKind::Text);
    assert!(doc.virtual_pages);
    assert!(doc.title.is_none());
    assert_eq!(
        doc.pages[0].text,
        "Lecture 1\n\nThe mitochondrion is\nthe powerhouse of the cell.\n\nEnd of lecture."
    );

    let paged = "Page one text.\n\x0cPage two text.\n\x0c\x0cPage four.\n\x0c";
    let doc = extract(paged.as_bytes(), &IngestOptions::default()).unwrap();
    assert!(!doc.virtual_pages);
    let texts: Vec<&str> = doc.pages.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, vec!["Page one text.", "Page two text.", "", "Page four."]);
    assert_eq!(doc.warnings, vec!["page 3 is empty".to_owned()]);
}
