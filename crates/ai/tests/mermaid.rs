//! The Mermaid checker on the diagram agent's real outputs and on broken variants.

mod common;

use common::{chunk_document, load, FIXTURES};
use learnflow_ai::agents::{check_mermaid_flowchart, run_local, AgentInput, AgentName, Purpose};
use learnflow_ai::nlp::Analysis;

fn diagram(name: &str) -> String {
    let doc = load(name);
    let chunks = chunk_document(&doc, 800);
    let a = Analysis::new(&doc, &chunks);
    let input = AgentInput {
        doc: &doc,
        chunks: &chunks,
        analysis: &a,
        purpose: &Purpose::DeepUnderstanding,
        focus: None,
    };
    run_local(AgentName::Diagram, &input)
        .ok()
        .and_then(|v| v["mermaid"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn outputs_pass_and_broken_variants_fail_with_positions() {
    for name in FIXTURES {
        let m = diagram(name);
        assert_eq!(check_mermaid_flowchart(&m), Ok(()), "{name}\n{m}");
        let lines: Vec<&str> = m.lines().collect();
        // the first node line (line 3), with its closing bracket removed
        let broken = m.replacen("\"]\n", "\"\n", 1);
        let e = check_mermaid_flowchart(&broken).err().unwrap_or_default();
        assert!(e.starts_with("line 3, column "), "{name}: {e}");
        // an unknown arrow on the last line
        let last = lines.len();
        let mut bad: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        bad[last - 1] = bad[last - 1].replace("-->", "->").replace("---", "->");
        let e = check_mermaid_flowchart(&bad.join("\n")).err().unwrap_or_default();
        assert!(e.starts_with(&format!("line {last}, column ")), "{name}: {e}");
        // a bad header
        let e = check_mermaid_flowchart(&m.replacen("flowchart TD", "flowchart XX", 1))
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("line 1, column 11"), "{e}");
        // a pipe inside an unquoted label
        let e = check_mermaid_flowchart(&m.replacen("[\"", "[a|", 1).replacen("\"]", "]", 1))
            .err()
            .unwrap_or_default();
        assert!(e.contains("not allowed"), "{e}");
    }
}

#[test]
fn labels_with_special_characters_are_sanitised() {
    use learnflow_ai::agents::diagram::sanitize_label;
    let l = sanitize_label("a \"quoted\" [x] {y} | z; <b> #1 & `c`");
    assert!(
        !l.contains(['"', '[', ']', '{', '}', '|', ';', '<', '>', '#', '&', '`']),
        "{l}"
    );
    let src = format!("flowchart TD\n    n1[\"{l}\"]\n    n2[\"O(n log n)\"]\n    n1 -->|\"{l}\"| n2\n");
    assert_eq!(check_mermaid_flowchart(&src), Ok(()));
}
