//! The study pack as one readable Markdown file: every material in the plan's order,
//! with page citations, the quiz with its answer key at the end, and the diagram as a
//! Mermaid block.

use std::fmt::Write;

use serde_json::Value;

use crate::library::{DocumentRecord, MaterialRecord};

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn arr<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn cite(v: &Value) -> String {
    match v
        .get("source")
        .and_then(|x| x.get("page"))
        .and_then(Value::as_u64)
    {
        Some(p) => format!(" *(p. {p})*"),
        None => String::new(),
    }
}

fn title_of(agent: &str) -> String {
    learnflow_ai::agents::AgentName::parse(agent)
        .map(|a| a.title().to_string())
        .unwrap_or_else(|| agent.to_string())
}

/// Renders the whole pack.
pub fn render_markdown(doc: &DocumentRecord, materials: &[MaterialRecord]) -> String {
    let mut out = String::new();
    let title = doc
        .title
        .as_deref()
        .filter(|t| !t.is_empty())
        .unwrap_or(&doc.file_name);
    let _ = writeln!(out, "# Study pack: {title}\n");
    let _ = writeln!(
        out,
        "*From `{}` ({} pages) · purpose: {} · made by LearnFlow*\n",
        doc.file_name,
        doc.pages.unwrap_or(0),
        doc.purpose
    );
    let ready: Vec<&MaterialRecord> = materials.iter().filter(|m| m.status == "ready").collect();
    if !ready.is_empty() {
        let _ = writeln!(
            out,
            "**Contents:** {}\n",
            ready
                .iter()
                .map(|m| title_of(&m.agent))
                .collect::<Vec<_>>()
                .join(" · ")
        );
    }
    let mut answer_key = String::new();
    for m in materials {
        let _ = writeln!(out, "## {}\n", title_of(&m.agent));
        match (&m.content, m.status.as_str()) {
            (Some(c), "ready") => render_material(&mut out, &mut answer_key, &m.agent, c),
            _ => {
                let _ = writeln!(
                    out,
                    "> This material could not be made: {}\n",
                    m.error.as_deref().unwrap_or("unknown error")
                );
            }
        }
    }
    if !answer_key.is_empty() {
        let _ = writeln!(out, "## Quiz answer key\n\n{answer_key}");
    }
    out
}

fn render_material(out: &mut String, key: &mut String, agent: &str, c: &Value) {
    match agent {
        "summary" => {
            if !s(c, "abstract").is_empty() {
                let _ = writeln!(out, "{}\n", s(c, "abstract"));
            }
            let points: Vec<&Value> = arr(c, "key_points").collect();
            if !points.is_empty() {
                let _ = writeln!(out, "**Key points**\n");
                for p in points {
                    let _ = writeln!(out, "- {}{}", s(p, "point"), cite(p));
                }
                out.push('\n');
            }
        }
        "notes" => {
            for sec in arr(c, "sections") {
                let _ = writeln!(out, "### {}\n", s(sec, "heading"));
                for b in arr(sec, "bullets") {
                    let _ = writeln!(out, "- {}{}", s(b, "text"), cite(b));
                }
                let terms: Vec<&str> = arr(sec, "key_terms").filter_map(Value::as_str).collect();
                if !terms.is_empty() {
                    let _ = writeln!(out, "\n*Key terms:* {}", terms.join(", "));
                }
                out.push('\n');
            }
        }
        "outline" => {
            for item in arr(c, "items") {
                let level = item.get("level").and_then(Value::as_u64).unwrap_or(1).clamp(1, 6) as usize;
                let page = item
                    .get("page")
                    .and_then(Value::as_u64)
                    .map(|p| format!(" — p. {p}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "{}- {}{page}", "  ".repeat(level - 1), s(item, "title"));
            }
            out.push('\n');
        }
        "key-concepts" => {
            for k in arr(c, "concepts") {
                let _ = writeln!(out, "- **{}** — {}{}", s(k, "term"), s(k, "explanation"), cite(k));
            }
            out.push('\n');
        }
        "glossary" => {
            for e in arr(c, "entries") {
                let also = Some(s(e, "also_called"))
                    .filter(|a| !a.is_empty())
                    .map(|a| format!(" (also: {a})"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "**{}**{also}\n: {}{}\n",
                    s(e, "term"),
                    s(e, "definition"),
                    cite(e)
                );
            }
        }
        "flashcards" => {
            let _ = writeln!(out, "| Front | Back | Source |\n|---|---|---|");
            for card in arr(c, "cards") {
                let page = card
                    .get("source")
                    .and_then(|x| x.get("page"))
                    .and_then(Value::as_u64);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    s(card, "front").replace('|', "\\|"),
                    s(card, "back").replace('|', "\\|"),
                    page.map(|p| format!("p. {p}")).unwrap_or_default()
                );
            }
            out.push('\n');
        }
        "quiz" => {
            for (i, q) in arr(c, "questions").enumerate() {
                let _ = writeln!(out, "**{}. {}**\n", i + 1, s(q, "question"));
                for (j, o) in arr(q, "options").enumerate() {
                    let letter = (b'A' + j as u8) as char;
                    let _ = writeln!(out, "- {letter}) {}", o.as_str().unwrap_or_default());
                }
                out.push('\n');
                let correct = q.get("correct_index").and_then(Value::as_u64).unwrap_or(0) as usize;
                let letter = (b'A' + correct.min(25) as u8) as char;
                let _ = writeln!(
                    key,
                    "{}. **{letter}** — {}{}",
                    i + 1,
                    s(q, "explanation"),
                    cite(q)
                );
            }
        }
        "cloze" => {
            for (i, item) in arr(c, "items").enumerate() {
                let _ = writeln!(out, "{}. {}{}", i + 1, s(item, "text"), cite(item));
            }
            let answers: Vec<&str> = arr(c, "items").map(|i| s(i, "answer")).collect();
            if !answers.is_empty() {
                let _ = writeln!(
                    out,
                    "\n<details><summary>Answers</summary>\n\n{}\n\n</details>\n",
                    answers.join(" · ")
                );
            }
        }
        "diagram" => {
            if !s(c, "title").is_empty() {
                let _ = writeln!(out, "*{}*\n", s(c, "title"));
            }
            let _ = writeln!(out, "```mermaid\n{}\n```\n", s(c, "mermaid").trim_end());
        }
        "timeline" => {
            for e in arr(c, "events") {
                let _ = writeln!(out, "- **{}** — {}{}", s(e, "date"), s(e, "event"), cite(e));
            }
            out.push('\n');
        }
        "examples" => {
            for g in arr(c, "groups") {
                let _ = writeln!(out, "### {}\n", s(g, "concept"));
                for e in arr(g, "examples") {
                    let _ = writeln!(out, "- {}{}", s(e, "text"), cite(e));
                }
                out.push('\n');
            }
        }
        "mnemonics" => {
            if !s(c, "note").is_empty() {
                let _ = writeln!(out, "*{}*\n", s(c, "note"));
            }
            for m in arr(c, "mnemonics") {
                let items: Vec<&str> = arr(m, "items").filter_map(Value::as_str).collect();
                let _ = writeln!(
                    out,
                    "- **{}** ({}): {} — *{}*{}",
                    s(m, "acronym"),
                    s(m, "topic"),
                    items.join(", "),
                    s(m, "phrase"),
                    cite(m)
                );
            }
            out.push('\n');
        }
        "faq" => {
            for q in arr(c, "items") {
                let _ = writeln!(
                    out,
                    "**Q: {}**\n\nA: {}{}\n",
                    s(q, "question"),
                    s(q, "answer"),
                    cite(q)
                );
            }
        }
        "study-plan" => {
            if let Some(total) = c.get("total_minutes").and_then(Value::as_u64) {
                let _ = writeln!(out, "About {total} minutes in all.\n");
            }
            let _ = writeln!(
                out,
                "| # | Day | Minutes | Session | Activity |\n|---|---|---|---|---|"
            );
            for sess in arr(c, "sessions") {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    sess.get("number").and_then(Value::as_u64).unwrap_or(0),
                    sess.get("day").and_then(Value::as_u64).unwrap_or(0),
                    sess.get("minutes").and_then(Value::as_u64).unwrap_or(0),
                    s(sess, "title").replace('|', "\\|"),
                    s(sess, "activity").replace('|', "\\|")
                );
            }
            out.push('\n');
        }
        "prerequisites" => {
            for p in arr(c, "prerequisites") {
                let _ = writeln!(out, "- **{}** — {}", s(p, "term"), s(p, "explanation"));
            }
            out.push('\n');
        }
        _ => {
            let _ = writeln!(
                out,
                "```json\n{}\n```\n",
                serde_json::to_string_pretty(c).unwrap_or_default()
            );
        }
    }
}
