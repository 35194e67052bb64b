//! A checker for the Mermaid flowchart subset the diagram agent emits: a header
//! (`flowchart` or `graph` plus TD/TB/BT/LR/RL), node declarations `id["label"]`
//! with the shapes `[..]`, `(..)`, `((..))`, `([..])`, `[[..]]`, `{..}`, links `-->`,
//! `---`, `-.->`, `==>` with an optional `|label|`, chains of links, `%%` comments,
//! blank lines and an optional trailing `;`. Errors name the line and column
//! (both 1-based) of the first problem.

const DIRECTIONS: [&str; 5] = ["TD", "TB", "BT", "LR", "RL"];
const LINKS: [&str; 4] = ["-.->", "-->", "---", "==>"];

struct Cursor<'s> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    src: &'s str,
}

impl Cursor<'_> {
    fn err(&self, msg: impl Into<String>) -> String {
        format!("line {}, column {}: {}", self.line, self.pos + 1, msg.into())
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c == ' ' || c == '\t') {
            self.pos += 1;
        }
    }
    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }
}

/// Checks a Mermaid flowchart written in the subset above.
///
/// # Errors
/// `"line L, column C: message"` for the first problem found.
pub fn check_mermaid_flowchart(src: &str) -> Result<(), String> {
    let mut header_seen = false;
    for (i, raw) in src.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("%%") {
            continue;
        }
        let mut c = Cursor {
            chars: line.chars().collect(),
            pos: 0,
            line: line_no,
            src: line,
        };
        c.skip_ws();
        if !header_seen {
            check_header(&mut c)?;
            header_seen = true;
            continue;
        }
        check_statement(&mut c)?;
    }
    if !header_seen {
        return Err("line 1, column 1: missing header: expected \"flowchart TD\" or \"graph TD\"".into());
    }
    Ok(())
}

fn check_header(c: &mut Cursor<'_>) -> Result<(), String> {
    let kw = if c.starts_with("flowchart") {
        "flowchart"
    } else if c.starts_with("graph") {
        "graph"
    } else {
        return Err(c.err("expected \"flowchart\" or \"graph\""));
    };
    c.pos += kw.len();
    if !c.peek().is_some_and(|x| x == ' ' || x == '\t') {
        return Err(c.err("expected a space and a direction after the keyword"));
    }
    c.skip_ws();
    let dir: String = c.chars[c.pos..]
        .iter()
        .take_while(|x| x.is_ascii_alphabetic())
        .collect();
    if !DIRECTIONS.contains(&dir.as_str()) {
        return Err(c.err(format!(
            "unknown direction {dir:?}: expected one of TD, TB, BT, LR, RL"
        )));
    }
    c.pos += dir.len();
    finish(c)
}

fn finish(c: &mut Cursor<'_>) -> Result<(), String> {
    c.skip_ws();
    if c.peek() == Some(';') {
        c.pos += 1;
        c.skip_ws();
    }
    if !c.at_end() {
        return Err(c.err(format!("unexpected {:?}", c.peek().unwrap_or(' '))));
    }
    Ok(())
}

fn check_statement(c: &mut Cursor<'_>) -> Result<(), String> {
    node_ref(c)?;
    loop {
        c.skip_ws();
        if c.at_end() || c.peek() == Some(';') {
            return finish(c);
        }
        let Some(link) = LINKS.iter().find(|l| c.starts_with(l)) else {
            return Err(c.err("expected a link (-->, ---, -.->, ==>) or the end of the line"));
        };
        c.pos += link.len();
        if c.peek() == Some('|') {
            c.pos += 1;
            link_label(c)?;
        }
        c.skip_ws();
        if c.at_end() {
            return Err(c.err("a link must end at a node"));
        }
        node_ref(c)?;
    }
}

fn node_ref(c: &mut Cursor<'_>) -> Result<(), String> {
    let start = c.pos;
    match c.peek() {
        Some(x) if x.is_ascii_alphabetic() || x == '_' => {}
        Some(x) => return Err(c.err(format!("expected a node id, found {x:?}"))),
        None => return Err(c.err("expected a node id")),
    }
    while c.peek().is_some_and(|x| x.is_ascii_alphanumeric() || x == '_') {
        c.pos += 1;
    }
    let id: String = c.chars[start..c.pos].iter().collect();
    if id == "end" || id == "subgraph" || id == "graph" || id == "flowchart" {
        c.pos = start;
        return Err(c.err(format!("{id:?} is a reserved word and cannot be a node id")));
    }
    let close = if c.starts_with("((") {
        "))"
    } else if c.starts_with("([") {
        "])"
    } else if c.starts_with("[[") {
        "]]"
    } else if c.starts_with("[") {
        "]"
    } else if c.starts_with("(") {
        ")"
    } else if c.starts_with("{") {
        "}"
    } else {
        return Ok(());
    };
    c.pos += close.len();
    node_label(c, close)
}

fn node_label(c: &mut Cursor<'_>, close: &str) -> Result<(), String> {
    if c.peek() == Some('"') {
        let open = c.pos;
        c.pos += 1;
        while c.peek().is_some_and(|x| x != '"') {
            c.pos += 1;
        }
        if c.at_end() {
            c.pos = open;
            return Err(c.err("unterminated quoted label"));
        }
        if c.pos == open + 1 {
            return Err(c.err("empty label"));
        }
        c.pos += 1;
        if !c.starts_with(close) {
            return Err(c.err(format!("expected {close:?} to close the node shape")));
        }
        c.pos += close.len();
        return Ok(());
    }
    let start = c.pos;
    while !c.at_end() && !c.starts_with(close) {
        let x = c.peek().unwrap_or(' ');
        if "[]{}()\"|;".contains(x) {
            return Err(c.err(format!(
                "character {x:?} is not allowed in an unquoted label (quote the label)"
            )));
        }
        c.pos += 1;
    }
    if c.at_end() {
        c.pos = start;
        return Err(c.err(format!("missing {close:?} to close the node shape")));
    }
    if c.chars[start..c.pos].iter().all(|x| x.is_whitespace()) {
        return Err(c.err("empty label"));
    }
    c.pos += close.len();
    Ok(())
}

fn link_label(c: &mut Cursor<'_>) -> Result<(), String> {
    let open = c.pos;
    if c.peek() == Some('"') {
        c.pos += 1;
        while c.peek().is_some_and(|x| x != '"') {
            c.pos += 1;
        }
        if c.at_end() {
            c.pos = open;
            return Err(c.err("unterminated quoted link label"));
        }
        c.pos += 1;
        if c.peek() != Some('|') {
            return Err(c.err("expected '|' after the link label"));
        }
        c.pos += 1;
        return Ok(());
    }
    while c.peek().is_some_and(|x| x != '|') {
        let x = c.peek().unwrap_or(' ');
        if "[]{}\";".contains(x) {
            return Err(c.err(format!(
                "character {x:?} is not allowed in an unquoted link label"
            )));
        }
        c.pos += 1;
    }
    if c.at_end() {
        c.pos = open;
        return Err(c.err("missing closing '|' of the link label"));
    }
    let _ = c.src;
    c.pos += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_emitted_subset() {
        let ok = "flowchart TD\n    %% a comment\n    n1[\"Photosynthesis (light)\"]\n    n2(\"ATP\")\n\n    n1 -->|\"produces\"| n2;\n    n2 --- n3[plain label] --> n4{\"Decision\"}\n    n4 -.-> n1\n    n5((\"circle\")) ==> n6([\"stadium\"])\n";
        assert_eq!(check_mermaid_flowchart(ok), Ok(()));
        assert_eq!(check_mermaid_flowchart("graph LR\nA-->B"), Ok(()));
    }

    #[test]
    fn reports_line_and_column() {
        assert_eq!(
            check_mermaid_flowchart("flowchart XY\n").unwrap_err(),
            "line 1, column 11: unknown direction \"XY\": expected one of TD, TB, BT, LR, RL"
        );
        let e = check_mermaid_flowchart("flowchart TD\n  n1[\"a\"]\n  n1 -> n2\n").unwrap_err();
        assert!(e.starts_with("line 3, column 6:"), "{e}");
        let e = check_mermaid_flowchart("flowchart TD\n  n1[\"unterminated]\n").unwrap_err();
        assert!(e.starts_with("line 2, column 6:"), "{e}");
        let e = check_mermaid_flowchart("flowchart TD\n  n1[a|b]\n").unwrap_err();
        assert!(e.starts_with("line 2, column 7:"), "{e}");
        let e = check_mermaid_flowchart("flowchart TD\n  end --> n2\n").unwrap_err();
        assert!(e.contains("reserved"), "{e}");
        assert!(check_mermaid_flowchart("n1 --> n2").is_err());
        assert!(check_mermaid_flowchart("flowchart TD\n n1 -->|\"x| n2").is_err());
        assert!(check_mermaid_flowchart("flowchart TD\n n1 -->").is_err());
        assert!(check_mermaid_flowchart("flowchart TD\n n1[\"a\"] extra").is_err());
        assert!(check_mermaid_flowchart("").is_err());
    }
}
