//! Timeline agent: dated events sorted chronologically. One event per dated sentence
//! (its first date that is not a life span), with the date as written, a sortable
//! integer key (`year * 10000 + month * 100 + day`, negative before the common era),
//! the precision, the condensed sentence and a citation. A document without dates
//! gives an empty list.

use std::collections::HashSet;

use serde::Serialize;

use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::condense;

/// Output of the timeline agent.
#[derive(Debug, Serialize)]
pub struct TimelineOutput {
    /// Events in chronological order.
    pub events: Vec<Event>,
}

/// One dated event.
#[derive(Debug, Serialize)]
pub struct Event {
    /// The date as written ("14 July 1789").
    pub date: String,
    /// Sortable key: year * 10000 + month * 100 + day.
    pub sort_key: i64,
    /// day, month, year, range, decade or century.
    pub precision: &'static str,
    /// What happened (the condensed sentence).
    pub event: String,
    /// Where it is stated.
    pub source: Citation,
}

/// Builds the timeline.
pub fn build(input: &AgentInput<'_>) -> TimelineOutput {
    let a = input.analysis;
    let mut seen: HashSet<usize> = HashSet::new();
    let mut events: Vec<(i64, usize, Event)> = Vec::new();
    for d in &a.dates {
        if !seen.insert(d.sentence) {
            continue;
        }
        let s = &a.sentences[d.sentence];
        events.push((
            d.expr.key(),
            d.sentence,
            Event {
                date: d.expr.text.clone(),
                sort_key: d.expr.key(),
                precision: d.expr.precision.as_str(),
                event: condense(&s.text, 280),
                source: a.cite(d.sentence),
            },
        ));
    }
    events.sort_by_key(|e| (e.0, e.1));
    events.truncate(100);
    TimelineOutput {
        events: events.into_iter().map(|e| e.2).collect(),
    }
}
