//! Anki's plain-text import format: tab-separated fields, with header lines that tell
//! Anki the separator, that fields hold HTML, and which column holds tags. Basic notes
//! (Front, Back) come from flashcards; cloze notes use `{{c1::…}}`.

use serde_json::Value;

use crate::library::{DocumentRecord, MaterialRecord};

/// Escapes a field: tabs and newlines would break the row; HTML is allowed, so `<`,
/// `>` and `&` are escaped.
fn field(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\t', " ")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

fn tag(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "learnflow".into()
    } else {
        t
    }
}

fn source(v: &Value) -> String {
    match v
        .get("source")
        .and_then(|s| s.get("page"))
        .and_then(Value::as_u64)
    {
        Some(p) => format!("<br><small>p. {p}</small>"),
        None => String::new(),
    }
}

/// The deck as Anki TSV: one `Basic` note per flashcard and one `Cloze` note per cloze
/// item, tagged with the document.
pub fn anki_tsv(doc: &DocumentRecord, materials: &[MaterialRecord]) -> String {
    let deck_tag = tag(doc.title.as_deref().unwrap_or(&doc.file_name));
    let mut out = String::from("#separator:tab\n#html:true\n#notetype column:1\n#tags column:4\n");
    for m in materials.iter().filter(|m| m.status == "ready") {
        let Some(content) = &m.content else { continue };
        match m.agent.as_str() {
            "flashcards" => {
                for card in content
                    .get("cards")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let front = card.get("front").and_then(Value::as_str).unwrap_or_default();
                    let back = card.get("back").and_then(Value::as_str).unwrap_or_default();
                    if front.is_empty() || back.is_empty() {
                        continue;
                    }
                    out.push_str(&format!(
                        "Basic\t{}\t{}{}\tlearnflow {deck_tag} flashcard\n",
                        field(front),
                        field(back),
                        source(card)
                    ));
                }
            }
            "cloze" => {
                for item in content
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let text = item.get("text").and_then(Value::as_str).unwrap_or_default();
                    let answer = item.get("answer").and_then(Value::as_str).unwrap_or_default();
                    if text.is_empty() || answer.is_empty() {
                        continue;
                    }
                    let cloze = to_anki_cloze(text, answer);
                    out.push_str(&format!(
                        "Cloze\t{}\t{}\tlearnflow {deck_tag} cloze\n",
                        field(&cloze),
                        source(item)
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// Puts the answer into Anki's cloze syntax: the blank (`____`) or an existing
/// `{{c1::…}}` is kept as the deletion.
pub fn to_anki_cloze(text: &str, answer: &str) -> String {
    if text.contains("{{c1::") {
        return text.to_string();
    }
    if let Some(i) = text.find("____") {
        let end = text[i..].find(|c: char| c != '_').map_or(text.len(), |n| i + n);
        return format!("{}{{{{c1::{answer}}}}}{}", &text[..i], &text[end..]);
    }
    format!("{text} {{{{c1::{answer}}}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> DocumentRecord {
        DocumentRecord {
            id: "d".into(),
            user_id: "u".into(),
            file_name: "bio.pdf".into(),
            content_hash: String::new(),
            blob_key: String::new(),
            size: 0,
            purpose: "exam-prep".into(),
            status: crate::library::DocumentStatus::Ready,
            error: None,
            run_id: None,
            title: Some("Cell Biology".into()),
            kind: None,
            pages: None,
            embed_model: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn flashcards_and_cloze_become_anki_rows() {
        let materials = vec![
            MaterialRecord {
                agent: "flashcards".into(),
                status: "ready".into(),
                content: Some(
                    json!({ "cards": [{ "front": "What is a <cell>?", "back": "The unit\tof life",
                                                   "source": { "chunk": "c1", "page": 2 } }] }),
                ),
                error: None,
                priority: 1,
                focus: String::new(),
            },
            MaterialRecord {
                agent: "cloze".into(),
                status: "ready".into(),
                content: Some(
                    json!({ "items": [{ "text": "The ____ is the powerhouse.", "answer": "mitochondrion" }] }),
                ),
                error: None,
                priority: 2,
                focus: String::new(),
            },
        ];
        let tsv = anki_tsv(&doc(), &materials);
        let rows: Vec<&str> = tsv.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rows.len(), 2);
        let cols: Vec<&str> = rows[0].split('\t').collect();
        assert_eq!(cols.len(), 4, "{}", rows[0]);
        assert_eq!(cols[0], "Basic");
        assert_eq!(cols[1], "What is a &lt;cell&gt;?");
        assert!(cols[2].starts_with("The unit of life") && cols[2].contains("p. 2"));
        assert!(cols[3].contains("Cell_Biology"));
        assert!(rows[1].starts_with("Cloze\tThe {{c1::mitochondrion}} is the powerhouse."));
    }
}
