//! Prints what the analysis finds in a fixture: `cargo run --example inspect -- french_revolution [agent]`.
#[path = "../tests/common/mod.rs"]
mod common;

use learnflow_ai::nlp::Analysis;

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "french_revolution".into());
    let doc = common::load(&name);
    let chunks = common::chunk_document(&doc, 800);
    let a = Analysis::new(&doc, &chunks);
    println!(
        "chunks {} sentences {} words {}",
        chunks.len(),
        a.sentences.len(),
        a.word_count
    );
    for c in &chunks {
        println!("  {} p{} {:?} {}", c.id, c.page, c.heading, c.text.len());
    }
    println!("-- keyphrases");
    for (t, s) in a.top_keyphrases(40) {
        let term = &a.terms[t];
        println!(
            "  {:.2} {:?} {} x{} def={}",
            s,
            term.kind,
            term.text,
            term.count,
            term.definition.is_some()
        );
    }
    println!("-- definitions");
    for d in &a.definitions {
        println!(
            "  [{}] {:?} {} :: {}",
            d.sentence, d.pattern, d.term, d.definition
        );
    }
    println!("-- dates");
    for d in &a.dates {
        println!("  {} {} {:?}", d.expr.key(), d.expr.text, d.expr.precision);
    }
    println!("-- names by kind");
    let mut names: Vec<_> = a
        .terms
        .iter()
        .filter(|t| t.kind != learnflow_ai::nlp::TermKind::Concept && t.count >= 1)
        .collect();
    names.sort_by_key(|t| (t.kind, t.text.clone()));
    for t in names {
        print!("{:?}:{} | ", t.kind, t.text);
    }
    println!("\n-- sections");
    for s in &a.sections {
        println!("  L{} p{} {} {:?}", s.level, s.page, s.title, s.chunks);
    }
    println!("-- examples");
    for e in &a.examples {
        println!("  {} {:?} :: {}", e.marker, e.items, a.sentences[e.sentence].text);
    }
    println!("-- lists");
    for l in &a.lists {
        println!("  {} :: {:?}", l.intro, l.items);
    }
    println!("-- cooccurrence ({} related)", a.cooccurrence.related_concepts());
    for e in a.cooccurrence.edges.iter().take(15) {
        println!("  {} -- {} ({})", a.terms[e.a].text, a.terms[e.b].text, e.weight);
    }
    let mut top: Vec<usize> = (0..a.sentences.len()).collect();
    top.sort_by(|&x, &y| a.sentence_scores[y].total_cmp(&a.sentence_scores[x]));
    println!("-- top sentences");
    for &i in top.iter().take(8) {
        println!("  {:.2} {}", a.sentence_scores[i], a.sentences[i].text);
    }
}
