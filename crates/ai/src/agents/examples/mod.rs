//! Examples agent: worked examples and illustrations found in the text ("for
//! example", "for instance", "such as", "e.g.", "consider", "imagine", "Example 1:"),
//! grouped by the concept they illustrate: the best keyphrase of the sentence that is
//! not one of the examples, else of the sentence before it, else the section title.

use serde::Serialize;

use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::{condense, contains_word_ci};
use crate::nlp::Analysis;

/// Output of the examples agent.
#[derive(Debug, Serialize)]
pub struct ExamplesOutput {
    /// Groups in order of first appearance.
    pub groups: Vec<ExampleGroup>,
}

/// Examples of one concept.
#[derive(Debug, Serialize)]
pub struct ExampleGroup {
    /// The concept illustrated.
    pub concept: String,
    /// Its examples.
    pub examples: Vec<ExampleItem>,
}

/// One example.
#[derive(Debug, Serialize)]
pub struct ExampleItem {
    /// The sentence that gives the example.
    pub text: String,
    /// The marker that introduced it.
    pub marker: String,
    /// Items named as examples ("such as A, B and C").
    pub items: Vec<String>,
    /// Where it comes from.
    pub source: Citation,
}

fn concept_of(a: &Analysis, sentence: usize, items: &[String]) -> String {
    let best = |s: usize| -> Option<usize> {
        a.terms_in(s)
            .into_iter()
            .filter(|&t| a.terms[t].score > 0.0)
            .filter(|&t| {
                !items
                    .iter()
                    .any(|i| contains_word_ci(i, &a.terms[t].text) || contains_word_ci(&a.terms[t].text, i))
            })
            .max_by(|&x, &y| a.terms[x].score.total_cmp(&a.terms[y].score).then(y.cmp(&x)))
    };
    let s = &a.sentences[sentence];
    let prev_same_chunk = sentence
        .checked_sub(1)
        .filter(|&p| a.sentences[p].chunk_index == s.chunk_index);
    best(sentence)
        .or_else(|| prev_same_chunk.and_then(best))
        .map(|t| a.terms[t].text.clone())
        .or_else(|| a.sections.get(s.section).map(|x| x.title.clone()))
        .unwrap_or_else(|| "General".to_string())
}

/// Builds the examples.
pub fn build(input: &AgentInput<'_>) -> ExamplesOutput {
    let a = input.analysis;
    let mut groups: Vec<ExampleGroup> = Vec::new();
    for e in a.examples.iter().take(60) {
        let concept = concept_of(a, e.sentence, &e.items);
        let item = ExampleItem {
            text: condense(&a.sentences[e.sentence].text, 400),
            marker: e.marker.clone(),
            items: e.items.iter().take(10).cloned().collect(),
            source: a.cite(e.sentence),
        };
        match groups
            .iter_mut()
            .find(|g| g.concept.eq_ignore_ascii_case(&concept))
        {
            Some(g) if g.examples.len() < 10 => g.examples.push(item),
            Some(_) => {}
            None => groups.push(ExampleGroup {
                concept,
                examples: vec![item],
            }),
        }
    }
    groups.truncate(30);
    ExamplesOutput { groups }
}
