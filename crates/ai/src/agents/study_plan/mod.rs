//! Study-plan agent: learning sessions of about 25 minutes sized to the document
//! (about 12 pages per session; 20 for a quick review, 8 for deep understanding),
//! each covering whole consecutive sections (every section exactly once), followed
//! by spaced review sessions 1, 3 and 7 days after the last learning day (only one
//! review for a quick review), with the materials to use in each.

use serde::Serialize;

use super::notes::section_terms;
use super::{AgentInput, AgentName, Purpose};

/// Minutes of a full session.
pub const SESSION_MINUTES: u32 = 25;

/// Output of the study-plan agent.
#[derive(Debug, Serialize)]
pub struct StudyPlanOutput {
    /// The purpose the plan was made for.
    pub purpose: String,
    /// Sum of all session minutes.
    pub total_minutes: u32,
    /// Length of a full session.
    pub session_minutes: u32,
    /// Sessions in order.
    pub sessions: Vec<Session>,
}

/// One study session.
#[derive(Debug, Serialize)]
pub struct Session {
    /// 1, 2, …
    pub number: u32,
    /// Day of the plan (1 = first day).
    pub day: u32,
    /// "learn" or "review".
    pub kind: &'static str,
    /// Planned minutes.
    pub minutes: u32,
    /// Short title.
    pub title: String,
    /// Sections studied (learn sessions; empty for reviews).
    pub sections: Vec<String>,
    /// Pages covered.
    pub pages: PageRange,
    /// Concepts to concentrate on.
    pub concepts: Vec<String>,
    /// Study materials to use.
    pub materials: Vec<AgentName>,
    /// What to do.
    pub activity: String,
    /// For reviews: the learn sessions reviewed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub review_of: Vec<u32>,
}

/// An inclusive page range.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PageRange {
    /// First page.
    pub from: u32,
    /// Last page.
    pub to: u32,
}

fn materials(p: &Purpose, review: bool) -> Vec<AgentName> {
    use AgentName::*;
    match (p, review) {
        (Purpose::ExamPrep, false) => vec![Summary, KeyConcepts, Flashcards],
        (Purpose::ExamPrep, true) => vec![Quiz, Flashcards, Cloze],
        (Purpose::QuickReview, false) => vec![Summary, KeyConcepts],
        (Purpose::QuickReview, true) => vec![Flashcards],
        (Purpose::DeepUnderstanding, false) => vec![Notes, Examples, Diagram],
        (Purpose::DeepUnderstanding, true) => vec![Faq, Quiz, Diagram],
        (Purpose::LectureNotes, false) => vec![Notes, Outline],
        (Purpose::LectureNotes, true) => vec![Notes, Quiz],
        (Purpose::Custom(_), false) => vec![Notes, KeyConcepts],
        (Purpose::Custom(_), true) => vec![Flashcards, Quiz],
    }
}

/// Builds the study plan.
pub fn build(input: &AgentInput<'_>) -> StudyPlanOutput {
    let a = input.analysis;
    let (pages_per_session, per_day, review_days): (usize, u32, &[u32]) = match input.purpose {
        Purpose::QuickReview => (20, 3, &[1]),
        Purpose::DeepUnderstanding => (8, 2, &[1, 3, 7]),
        _ => (12, 2, &[1, 3, 7]),
    };
    let secs = &a.sections;
    let weights: Vec<usize> = secs
        .iter()
        .map(|s| {
            s.sentences
                .clone()
                .map(|i| a.sentences[i].words)
                .sum::<usize>()
                .max(1)
        })
        .collect();
    let total: usize = weights.iter().sum::<usize>().max(1);
    let pages = a.page_count.max(1);
    let n = pages.div_ceil(pages_per_session).clamp(1, secs.len().max(1));
    let target = total as f64 / n as f64;
    // contiguous partition: a section goes to the session its midpoint falls in
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut cum = 0usize;
    for (i, w) in weights.iter().enumerate() {
        let mid = cum as f64 + *w as f64 / 2.0;
        let g = ((mid / target) as usize).min(n - 1);
        groups[g].push(i);
        cum += w;
    }
    groups.retain(|g| !g.is_empty());
    let mut sessions: Vec<Session> = Vec::new();
    let mut day = 1u32;
    let mut on_day = 0u32;
    for g in &groups {
        if on_day == per_day {
            day += 1;
            on_day = 0;
        }
        on_day += 1;
        let w: usize = g.iter().map(|&i| weights[i]).sum();
        let minutes = ((SESSION_MINUTES as f64) * w as f64 / target)
            .round()
            .clamp(10.0, 35.0) as u32;
        let from = g.iter().map(|&i| secs[i].page).min().unwrap_or(1).max(1);
        let to = g
            .iter()
            .map(|&i| secs[i].last_page)
            .max()
            .unwrap_or(from)
            .max(from);
        let range = secs[g[0]].sentences.start..secs[g[g.len() - 1]].sentences.end;
        let concepts: Vec<String> = section_terms(a, range, 6)
            .into_iter()
            .map(|t| a.terms[t].text.clone())
            .collect();
        let names: Vec<String> = g.iter().map(|&i| secs[i].title.clone()).collect();
        let title = if names.len() == 1 {
            names[0].clone()
        } else {
            format!("{} … {}", names[0], names[names.len() - 1])
        };
        let mats = materials(input.purpose, false);
        let mat_names: Vec<&str> = mats.iter().map(|m| m.title()).collect();
        let activity = format!(
            "Read pages {from}–{to} actively: note the main idea of each section in your own words, then check your notes against the {}.",
            mat_names.join(", ").to_lowercase()
        );
        sessions.push(Session {
            number: sessions.len() as u32 + 1,
            day,
            kind: "learn",
            minutes,
            title: crate::nlp::text::truncate_chars(&title, 200),
            sections: names,
            pages: PageRange { from, to },
            concepts,
            materials: mats,
            activity,
            review_of: Vec::new(),
        });
    }
    let learn_numbers: Vec<u32> = sessions.iter().map(|s| s.number).collect();
    let last_day = day;
    let top: Vec<String> = a
        .keyphrases
        .iter()
        .take(8)
        .map(|&t| a.terms[t].text.clone())
        .collect();
    let first_page = a.chunks.first().map(|c| c.page).unwrap_or(1).max(1);
    let last_page = a
        .chunks
        .last()
        .map(|c| c.page)
        .unwrap_or(first_page)
        .max(first_page);
    for &offset in review_days {
        let mats = materials(input.purpose, true);
        let mat_names: Vec<&str> = mats.iter().map(|m| m.title()).collect();
        sessions.push(Session {
            number: sessions.len() as u32 + 1,
            day: last_day + offset,
            kind: "review",
            minutes: if matches!(input.purpose, Purpose::QuickReview) { 10 } else { 15 },
            title: format!("Spaced review after {offset} day{}", if offset == 1 { "" } else { "s" }),
            sections: Vec::new(),
            pages: PageRange { from: first_page, to: last_page },
            concepts: top.clone(),
            materials: mats,
            activity: format!(
                "Recall before rereading: work through the {} from memory, then reread only the passages you got wrong.",
                mat_names.join(", ").to_lowercase()
            ),
            review_of: learn_numbers.clone(),
        });
    }
    let total_minutes = sessions.iter().map(|s| s.minutes).sum();
    StudyPlanOutput {
        purpose: input.purpose.to_string(),
        total_minutes,
        session_minutes: SESSION_MINUTES,
        sessions,
    }
}
