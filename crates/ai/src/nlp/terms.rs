//! Terms of a document: candidate phrases (capitalised names, lower-case concept
//! phrases between stopwords and verbs, acronyms, numbers with units, dates), their
//! occurrences in every sentence, a "kind" for each (person, place, organisation,
//! event, other name, year, date, period, number, concept) from simple cues, and the
//! keyphrase score (word-level TextRank × frequency × bonuses).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::dates::{DateExpr, DatePrecision};
use super::rank::pagerank;
use super::stopwords::{is_common_verb, is_generic, is_stopword, is_unit};
use super::text::{tokenize, TokenKind};
use super::Sentence;

/// What sort of thing a term names; distractors in a quiz are taken from the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TermKind {
    /// A person: "Louis XVI", "Maximilien Robespierre".
    Person,
    /// A place: "Paris", "Versailles".
    Place,
    /// An organisation or body: "National Assembly", "Jacobin Club".
    Organization,
    /// A named event or document: "Reign of Terror", "Tennis Court Oath".
    Event,
    /// Another capitalised name without a clear cue.
    Name,
    /// A year: "1789", "44 BC".
    Year,
    /// A day or month: "14 July 1789".
    Date,
    /// A range, decade or century: "the 1920s".
    Period,
    /// A number with a unit: "40 percent", "8 minutes".
    Number,
    /// A lower-case concept phrase or acronym: "light-dependent reactions", "ATP".
    Concept,
}

impl TermKind {
    /// Lower-case name ("person", "concept", …).
    pub fn as_str(self) -> &'static str {
        match self {
            TermKind::Person => "person",
            TermKind::Place => "place",
            TermKind::Organization => "organization",
            TermKind::Event => "event",
            TermKind::Name => "name",
            TermKind::Year => "year",
            TermKind::Date => "date",
            TermKind::Period => "period",
            TermKind::Number => "number",
            TermKind::Concept => "concept",
        }
    }

    /// True for the capitalised-name kinds.
    pub fn is_proper(self) -> bool {
        matches!(
            self,
            TermKind::Person | TermKind::Place | TermKind::Organization | TermKind::Event | TermKind::Name
        )
    }

    /// True for years, dates, periods and numbers.
    pub fn is_value(self) -> bool {
        matches!(
            self,
            TermKind::Year | TermKind::Date | TermKind::Period | TermKind::Number
        )
    }
}

/// A term of the document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Term {
    /// Normalised key: the normalised tokens joined by spaces ("calvin cycl").
    pub key: String,
    /// Display form: the most frequent way it is written mid-sentence.
    pub text: String,
    /// What it names.
    pub kind: TermKind,
    /// Number of occurrences in the document's sentences.
    pub count: usize,
    /// Sentences it occurs in, ascending.
    pub sentences: Vec<usize>,
    /// Number of distinct chunks it occurs in.
    pub chunk_count: usize,
    /// Keyphrase score in 0..=1 (0 for terms that are not keyphrase candidates).
    pub score: f64,
    /// It occurs in a heading or the title.
    pub in_heading: bool,
    /// Index into `Analysis::definitions` when the document defines it.
    pub definition: Option<usize>,
    /// Only ever seen inside a longer term with the same count (e.g. "Calvin" in "Calvin cycle").
    pub subsumed: bool,
    /// Number of word tokens.
    pub words: usize,
    /// For years, dates and periods: the sortable date key.
    pub date_key: Option<i64>,
}

/// One occurrence of a term in a sentence (byte offsets into the sentence text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermHit {
    /// Index into `Analysis::terms`.
    pub term: usize,
    /// Byte offset of the occurrence.
    pub start: usize,
    /// Byte offset just after it.
    pub end: usize,
}

const TITLE_WORDS: &[&str] = &[
    "king",
    "queen",
    "emperor",
    "empress",
    "prince",
    "princess",
    "duke",
    "duchess",
    "count",
    "countess",
    "lord",
    "lady",
    "sir",
    "saint",
    "st",
    "pope",
    "president",
    "general",
    "marquis",
    "abbé",
    "abbe",
    "dr",
    "mr",
    "mrs",
    "ms",
    "professor",
    "prof",
    "father",
    "madame",
    "monsieur",
    "cardinal",
    "archbishop",
    "bishop",
    "captain",
    "admiral",
    "tsar",
    "czar",
    "sultan",
    "pharaoh",
    "chancellor",
];
const ORG_WORDS: &[&str] = &[
    "assembly",
    "convention",
    "committee",
    "club",
    "party",
    "council",
    "church",
    "parliament",
    "company",
    "university",
    "society",
    "academy",
    "army",
    "guard",
    "court",
    "commune",
    "directory",
    "senate",
    "congress",
    "institute",
    "bank",
    "ministry",
    "government",
    "union",
    "league",
    "order",
    "estates-general",
    "estate",
    "legislature",
    "tribunal",
    "school",
    "laboratory",
    "corporation",
    "association",
    "federation",
    "navy",
];
const EVENT_WORDS: &[&str] = &[
    "revolution",
    "war",
    "battle",
    "treaty",
    "reign",
    "terror",
    "siege",
    "storming",
    "declaration",
    "massacre",
    "revolt",
    "rebellion",
    "crisis",
    "act",
    "edict",
    "constitution",
    "decree",
    "conference",
    "era",
    "age",
    "coup",
    "oath",
    "march",
    "flight",
    "insurrection",
    "uprising",
    "code",
    "law",
    "reform",
    "restoration",
    "fear",
    "plague",
    "famine",
    "campaign",
];
const PLACE_WORDS: &[&str] = &[
    "river",
    "sea",
    "ocean",
    "mountains",
    "mount",
    "island",
    "islands",
    "lake",
    "city",
    "kingdom",
    "province",
    "street",
    "square",
    "palace",
    "castle",
    "bay",
    "valley",
    "forest",
    "desert",
    "coast",
    "peninsula",
    "county",
    "region",
    "bastille",
    "prison",
    "tuileries",
    "cathedral",
];
const PLACE_PREPS: &[&str] = &[
    "in",
    "at",
    "near",
    "from",
    "to",
    "across",
    "outside",
    "into",
    "towards",
    "toward",
    "throughout",
    "via",
    "around",
];
const ROLE_NOUNS: &[&str] = &[
    "lawyer",
    "journalist",
    "king",
    "queen",
    "scientist",
    "mathematician",
    "physicist",
    "chemist",
    "biologist",
    "philosopher",
    "writer",
    "author",
    "leader",
    "minister",
    "general",
    "revolutionary",
    "engineer",
    "economist",
    "statesman",
    "priest",
    "monk",
    "botanist",
    "inventor",
    "researcher",
    "explorer",
    "poet",
    "historian",
    "deputy",
    "orator",
    "banker",
    "officer",
    "emperor",
    "politician",
    "physician",
    "naturalist",
    "professor",
    "programmer",
    "computer",
    "wife",
    "husband",
    "son",
    "daughter",
    "brother",
    "sister",
    "mother",
    "thinker",
    "thinkers",
    "banker",
    "chemist",
    "astronomer",
    "architect",
    "painter",
    "composer",
];
const PASSIVE_PERSON: &[&str] = &[
    "executed",
    "born",
    "crowned",
    "guillotined",
    "arrested",
    "elected",
    "tried",
    "married",
    "killed",
    "assassinated",
    "exiled",
    "appointed",
    "imprisoned",
    "buried",
    "educated",
    "raised",
];
const PERSON_NEXT: &[&str] = &[
    "said",
    "wrote",
    "argued",
    "believed",
    "proposed",
    "declared",
    "invented",
    "discovered",
    "described",
    "developed",
    "published",
    "died",
    "fled",
    "married",
    "who",
    "himself",
    "herself",
    "was",
    "claimed",
    "showed",
    "designed",
    "demanded",
    "insisted",
    "became",
    "tried",
    "refused",
    "called",
];
const CONNECTORS: &[&str] = &[
    "of", "de", "du", "des", "la", "le", "von", "van", "der", "den", "da", "del", "y",
];
const MONTH_DAY_NAMES: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

#[derive(Default)]
struct Cand {
    surfaces_mid: HashMap<String, usize>,
    surfaces_initial: HashMap<String, usize>,
    proper_votes: usize,
    concept_votes: usize,
    person: f64,
    place: f64,
    org: f64,
    event: f64,
    value_kind: Option<TermKind>,
    date_key: Option<i64>,
    acronym: bool,
    attributive: usize,
}

fn is_acronym(raw: &str) -> bool {
    raw.chars().filter(|c| c.is_alphabetic()).count() >= 2 && raw.chars().all(|c| !c.is_lowercase())
}

fn key_of(tokens: &[super::text::Token]) -> String {
    let mut k = String::new();
    for t in tokens {
        if !k.is_empty() {
            k.push(' ');
        }
        k.push_str(&t.norm);
    }
    k
}

/// Extracts all terms and their occurrences (`hits[sentence]`).
pub fn extract_terms(sentences: &[Sentence], dates: &[Vec<DateExpr>]) -> (Vec<Term>, Vec<Vec<TermHit>>) {
    // words seen in lower case anywhere, and capitalised mid-sentence
    let mut lower_seen: HashSet<String> = HashSet::new();
    let mut cap_mid: HashSet<String> = HashSet::new();
    for s in sentences {
        let first = s.tokens.iter().position(|t| t.kind == TokenKind::Word);
        for (p, t) in s.tokens.iter().enumerate() {
            if t.kind != TokenKind::Word {
                continue;
            }
            let raw = t.text(&s.text);
            if raw.chars().next().is_some_and(char::is_lowercase) {
                lower_seen.insert(raw.to_string());
            } else if Some(p) != first && !s.list_item {
                cap_mid.insert(raw.to_string());
            }
        }
    }

    let mut cands: HashMap<String, Cand> = HashMap::new();
    for (si, s) in sentences.iter().enumerate() {
        collect_candidates(
            s,
            dates.get(si).map(Vec::as_slice).unwrap_or(&[]),
            &lower_seen,
            &cap_mid,
            &mut cands,
        );
    }

    // build terms
    let mut terms: Vec<Term> = Vec::with_capacity(cands.len());
    let mut acronyms: Vec<bool> = Vec::with_capacity(cands.len());
    let mut keys: Vec<(String, Cand)> = cands.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, c) in keys {
        // a capitalised word mostly used before a noun is an adjective ("French society")
        if c.value_kind.is_none()
            && c.concept_votes == 0
            && c.proper_votes > 0
            && c.attributive * 2 >= c.proper_votes
        {
            continue;
        }
        let kind = if let Some(k) = c.value_kind {
            k
        } else if c.proper_votes > 0 && c.proper_votes * 2 >= c.proper_votes + c.concept_votes {
            let best = [
                (c.person, TermKind::Person),
                (c.org, TermKind::Organization),
                (c.event, TermKind::Event),
                (c.place, TermKind::Place),
            ]
            .into_iter()
            .fold((0.0, TermKind::Name), |acc, x| if x.0 > acc.0 { x } else { acc });
            let ties = [c.person, c.org, c.event, c.place]
                .iter()
                .filter(|&&v| v == best.0)
                .count();
            if best.0 >= 1.0 && ties == 1 {
                best.1
            } else {
                TermKind::Name
            }
        } else {
            TermKind::Concept
        };
        let pick = |m: &HashMap<String, usize>| -> Option<String> {
            let mut v: Vec<(&String, &usize)> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            v.first().map(|x| x.0.clone())
        };
        let text = match pick(&c.surfaces_mid) {
            Some(t) => t,
            None => match pick(&c.surfaces_initial) {
                Some(t) if kind == TermKind::Concept && !c.acronym => lower_first(&t),
                Some(t) => t,
                None => continue,
            },
        };
        let words = text.split_whitespace().count();
        acronyms.push(c.acronym);
        terms.push(Term {
            key,
            text,
            kind,
            count: 0,
            sentences: Vec::new(),
            chunk_count: 0,
            score: 0.0,
            in_heading: false,
            definition: None,
            subsumed: false,
            words,
            date_key: c.date_key,
        });
    }
    let hits = scan_hits(sentences, &mut terms);
    refine_person_kinds(&mut terms);
    mark_subsumed(&mut terms);
    (terms, hits)
}

fn lower_first(s: &str) -> String {
    let mut cs = s.chars();
    match cs.next() {
        Some(f) => f.to_lowercase().chain(cs).collect(),
        None => String::new(),
    }
}

fn collect_candidates(
    s: &Sentence,
    dates: &[DateExpr],
    lower_seen: &HashSet<String>,
    cap_mid: &HashSet<String>,
    cands: &mut HashMap<String, Cand>,
) {
    let toks = &s.tokens;
    let text = s.text.as_str();
    let first_word = toks.iter().position(|t| t.is_wordlike());
    let in_date = |t: &super::text::Token| dates.iter().any(|d| t.start >= d.start && t.end <= d.end);

    // dates
    for d in dates {
        if d.lifespan {
            continue;
        }
        let span: Vec<super::text::Token> = toks
            .iter()
            .filter(|t| t.start >= d.start && t.end <= d.end)
            .cloned()
            .collect();
        if span.is_empty() {
            continue;
        }
        let key = key_of(&span);
        let c = cands.entry(key).or_default();
        *c.surfaces_mid.entry(d.text.clone()).or_insert(0) += 1;
        c.value_kind = Some(match d.precision {
            DatePrecision::Year => TermKind::Year,
            DatePrecision::Day | DatePrecision::Month => TermKind::Date,
            _ => TermKind::Period,
        });
        c.date_key = Some(d.key());
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Class {
        Break,
        Proper,
        Acronym,
        Concept,
        Stop,
    }
    let classes: Vec<Class> = toks
        .iter()
        .enumerate()
        .map(|(p, t)| {
            if t.kind != TokenKind::Word || in_date(t) {
                return Class::Break;
            }
            let raw = t.text(text);
            let lower = raw.to_lowercase();
            if is_stopword(&lower) {
                return Class::Stop;
            }
            if MONTH_DAY_NAMES.contains(&lower.as_str()) && raw.chars().next().is_some_and(char::is_uppercase)
            {
                return Class::Break;
            }
            if is_acronym(raw) {
                return Class::Acronym;
            }
            let upper = raw.chars().next().is_some_and(char::is_uppercase);
            let initial = Some(p) == first_word || s.list_item && Some(p) == first_word;
            if upper {
                let next_cap = toks.get(p + 1).is_some_and(|n| {
                    let nt = n.text(text);
                    n.kind == TokenKind::Word
                        && nt.chars().next().is_some_and(char::is_uppercase)
                        && !is_stopword(&nt.to_lowercase())
                });
                let proper = if initial {
                    !lower_seen.contains(&lower) && (cap_mid.contains(raw) || next_cap)
                } else {
                    true
                };
                if proper {
                    return Class::Proper;
                }
            }
            if is_common_verb(&lower)
                || is_generic(&lower)
                || (lower.ends_with("ly") && lower.len() > 4)
                || lower.chars().count() < 2
            {
                return Class::Break;
            }
            Class::Concept
        })
        .collect();

    let n = toks.len();
    let mut p = 0;
    while p < n {
        match classes[p] {
            Class::Proper => {
                // extend a capitalised run with connectors and roman numerals
                let mut end = p + 1;
                loop {
                    if end < n
                        && matches!(classes[end], Class::Proper | Class::Acronym)
                        && toks[end].kind == TokenKind::Word
                    {
                        end += 1;
                        continue;
                    }
                    // connector(s) then a proper word
                    let mut q = end;
                    let mut used = 0;
                    let event_head = EVENT_WORDS.contains(&toks[end - 1].text(text).to_lowercase().as_str());
                    while q < n && used < 2 {
                        let l = toks[q].text(text).to_lowercase();
                        if CONNECTORS.contains(&l.as_str())
                            || (used == 1 && l == "the")
                            || (used == 0 && event_head && (l == "to" || l == "on"))
                        {
                            q += 1;
                            used += 1;
                        } else {
                            break;
                        }
                    }
                    if used > 0 && q < n && classes[q] == Class::Proper && q - p < 8 {
                        end = q + 1;
                        continue;
                    }
                    break;
                }
                let span = &toks[p..end];
                let surface = &text[span[0].start..span[span.len() - 1].end];
                let lower_words: Vec<String> = span.iter().map(|t| t.text(text).to_lowercase()).collect();
                let single_title = span.len() == 1 && TITLE_WORDS.contains(&lower_words[0].as_str());
                let tiny = span.len() == 1 && span[0].text(text).chars().count() < 2;
                // lower-case nouns right after a name: "Calvin cycle", "Big O notation"
                let mut ce = end;
                while ce < n && ce - end < 3 && classes[ce] == Class::Concept {
                    ce += 1;
                }
                if ce > end {
                    let cspan = &toks[p..ce];
                    let surface = &text[cspan[0].start..cspan[cspan.len() - 1].end];
                    let c = cands.entry(key_of(cspan)).or_default();
                    *c.surfaces_mid.entry(surface.to_string()).or_insert(0) += 1;
                    c.concept_votes += 1;
                }
                let attributive = span.len() == 1 && ce > end;
                if !single_title && !tiny {
                    let key = key_of(span);
                    let c = cands.entry(key).or_default();
                    let initial = Some(p) == first_word;
                    if initial {
                        *c.surfaces_initial.entry(surface.to_string()).or_insert(0) += 1;
                    } else {
                        *c.surfaces_mid.entry(surface.to_string()).or_insert(0) += 1;
                    }
                    c.proper_votes += 1;
                    if attributive {
                        c.attributive += 1;
                    }
                    add_kind_cues(c, toks, text, p, end, &lower_words, dates);
                }
                p = if ce > end { ce } else { end };
            }
            Class::Concept | Class::Acronym => {
                let mut end = p;
                while end < n && matches!(classes[end], Class::Concept | Class::Acronym) {
                    end += 1;
                }
                // trim trailing past participles ("light energy stored" → "light energy")
                let mut e = end;
                while e > p + 1 {
                    let w = toks[e - 1].text(text);
                    if w.len() > 4 && w.ends_with("ed") && w.chars().all(|c| c.is_lowercase() || c == '-') {
                        e -= 1;
                    } else {
                        break;
                    }
                }
                let len = e - p;
                let spans: Vec<(usize, usize)> = if len <= 4 {
                    vec![(p, e)]
                } else {
                    (p..e).map(|i| (i, i + 1)).collect()
                };
                for (a, b) in spans {
                    let span = &toks[a..b];
                    if b - a == 1 {
                        let w = span[0].text(text);
                        let l = w.to_lowercase();
                        let adjective_like = ["ed", "ical", "ous", "ful", "less", "able", "ible", "ive"]
                            .iter()
                            .any(|suf| l.ends_with(suf) && l.len() > suf.len() + 2)
                            && !is_acronym(w);
                        if w.chars().count() < 3
                            || is_generic(&l)
                            || !w.chars().any(char::is_alphabetic)
                            || adjective_like
                        {
                            continue;
                        }
                    }
                    let surface = &text[span[0].start..span[span.len() - 1].end];
                    let key = key_of(span);
                    let c = cands.entry(key).or_default();
                    let initial = Some(a) == first_word;
                    if initial {
                        *c.surfaces_initial.entry(surface.to_string()).or_insert(0) += 1;
                    } else {
                        *c.surfaces_mid.entry(surface.to_string()).or_insert(0) += 1;
                        c.concept_votes += 1;
                    }
                    if b - a == 1 && classes[a] == Class::Acronym {
                        c.acronym = true;
                    }
                }
                p = end;
            }
            Class::Break | Class::Stop => {
                // numbers with units
                let t = &toks[p];
                if t.kind == TokenKind::Number && !in_date(t) {
                    if let Some(u) = toks.get(p + 1) {
                        let ut = u.text(text);
                        let is_u = (u.kind == TokenKind::Punct && ut == "%")
                            || (u.kind == TokenKind::Word && is_unit(&ut.to_lowercase()));
                        if is_u && u.start <= t.end + 1 {
                            let span = &toks[p..p + 2];
                            let surface = &text[t.start..u.end];
                            let c = cands.entry(key_of(span)).or_default();
                            *c.surfaces_mid.entry(surface.to_string()).or_insert(0) += 1;
                            c.value_kind = Some(TermKind::Number);
                        }
                    }
                }
                p += 1;
            }
        }
    }
}

fn add_kind_cues(
    c: &mut Cand,
    toks: &[super::text::Token],
    text: &str,
    a: usize,
    b: usize,
    lower_words: &[String],
    dates: &[DateExpr],
) {
    if TITLE_WORDS.contains(&lower_words[0].as_str()) {
        c.person += 3.0;
    }
    // the head noun: the word before the first connector, else the last word
    let head = lower_words
        .iter()
        .position(|w| CONNECTORS.contains(&w.as_str()))
        .map(|i| i.saturating_sub(1))
        .unwrap_or(lower_words.len() - 1);
    for (i, w) in lower_words.iter().enumerate() {
        let wt = if i == head { 3.0 } else { 1.0 };
        if ORG_WORDS.contains(&w.as_str()) {
            c.org += wt;
        }
        if EVENT_WORDS.contains(&w.as_str()) {
            c.event += wt;
        }
        if PLACE_WORDS.contains(&w.as_str()) {
            c.place += wt * 0.7;
        }
    }
    if a > 0 {
        let prev = toks[a - 1].text(text).to_lowercase();
        if PLACE_PREPS.contains(&prev.as_str()) {
            c.place += if matches!(prev.as_str(), "to" | "from") {
                0.5
            } else {
                1.0
            };
        }
        if ROLE_NOUNS.contains(&prev.as_str()) {
            c.person += 2.0;
        }
        if prev == "," && a > 1 && ROLE_NOUNS.contains(&toks[a - 2].text(text).to_lowercase().as_str()) {
            c.person += 2.0;
        }
        if prev == "the" && a > 1 {
            // "the Bastille", "the Assembly": names after "the" are rarely people
            c.person -= 0.5;
        }
    }
    if let Some(nx) = toks.get(b) {
        let l = nx.text(text).to_lowercase();
        if PERSON_NEXT.contains(&l.as_str()) {
            c.person += match l.as_str() {
                "was" => 0.3,
                "who" => 0.5,
                _ => 1.0,
            };
        }
        if l == "was" || l == "were" {
            if let Some(n2) = toks.get(b + 1) {
                if PASSIVE_PERSON.contains(&n2.text(text).to_lowercase().as_str()) {
                    c.person += 1.5;
                }
            }
        }
        if l == "("
            && dates
                .iter()
                .any(|d| d.lifespan && d.start > nx.start && d.start <= nx.end + 1)
        {
            c.person += 3.0;
        }
        if l == "," {
            if let Some(n2) = toks.get(b + 1) {
                let l2 = n2.text(text).to_lowercase();
                if l2 == "who" {
                    c.person += 1.5;
                } else if l2 == "a" || l2 == "an" || l2 == "the" {
                    let role = toks
                        .iter()
                        .skip(b + 2)
                        .take(3)
                        .take_while(|t| t.kind == TokenKind::Word)
                        .any(|t| ROLE_NOUNS.contains(&t.text(text).to_lowercase().as_str()));
                    if role {
                        c.person += 2.0;
                    }
                }
            }
        }
    }
}

fn scan_hits(sentences: &[Sentence], terms: &mut [Term]) -> Vec<Vec<TermHit>> {
    let keys: Vec<String> = terms.iter().map(|t| t.key.clone()).collect();
    let parts: Vec<Vec<&str>> = keys.iter().map(|k| k.split(' ').collect()).collect();
    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in parts.iter().enumerate() {
        if let Some(f) = p.first() {
            index.entry(f).or_default().push(i);
        }
    }
    let mut hits: Vec<Vec<TermHit>> = Vec::with_capacity(sentences.len());
    let mut chunk_seen: Vec<Option<usize>> = vec![None; terms.len()];
    for (si, s) in sentences.iter().enumerate() {
        let mut hs = Vec::new();
        let toks = &s.tokens;
        for p in 0..toks.len() {
            let Some(cands) = index.get(toks[p].norm.as_str()) else {
                continue;
            };
            for &ti in cands {
                let kp = &parts[ti];
                if p + kp.len() > toks.len() {
                    continue;
                }
                if kp.iter().enumerate().all(|(k, w)| toks[p + k].norm == *w) {
                    hs.push(TermHit {
                        term: ti,
                        start: toks[p].start,
                        end: toks[p + kp.len() - 1].end,
                    });
                }
            }
        }
        for h in &hs {
            let t = &mut terms[h.term];
            t.count += 1;
            if t.sentences.last() != Some(&si) {
                t.sentences.push(si);
            }
            if chunk_seen[h.term] != Some(s.chunk_index) {
                chunk_seen[h.term] = Some(s.chunk_index);
                t.chunk_count += 1;
            }
        }
        hits.push(hs);
    }
    hits
}

fn refine_person_kinds(terms: &mut [Term]) {
    let person_last: HashSet<String> = terms
        .iter()
        .filter(|t| t.kind == TermKind::Person && t.words >= 2)
        .filter_map(|t| t.text.split_whitespace().last().map(str::to_string))
        .collect();
    let person_single: HashSet<String> = terms
        .iter()
        .filter(|t| t.kind == TermKind::Person && t.words == 1)
        .map(|t| t.text.clone())
        .collect();
    for t in terms.iter_mut() {
        if t.kind != TermKind::Name {
            continue;
        }
        let single = t.words == 1 && person_last.contains(&t.text);
        if single
            || t.words >= 2
                && (t
                    .text
                    .split_whitespace()
                    .last()
                    .is_some_and(|l| person_single.contains(l))
                    || t.text
                        .split_whitespace()
                        .next()
                        .is_some_and(|f| person_single.contains(f)))
        {
            t.kind = TermKind::Person;
        }
    }
}

fn mark_subsumed(terms: &mut [Term]) {
    let by_key: HashMap<String, usize> = terms
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.clone(), i))
        .collect();
    let mut sub = vec![false; terms.len()];
    for t in terms.iter() {
        let parts: Vec<&str> = t.key.split(' ').collect();
        if parts.len() < 2 {
            continue;
        }
        for a in 0..parts.len() {
            for b in a + 1..=parts.len() {
                if b - a == parts.len() {
                    continue;
                }
                let k = parts[a..b].join(" ");
                if let Some(&j) = by_key.get(&k) {
                    if terms[j].count <= t.count {
                        sub[j] = true;
                    }
                }
            }
        }
    }
    for (t, s) in terms.iter_mut().zip(sub) {
        t.subsumed = s;
    }
}

/// Word-level TextRank over content words (window of 4 within a sentence). Returns a
/// score in 0..=1 per normalised word.
pub fn word_rank(sentences: &[Sentence]) -> HashMap<String, f64> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut edges: HashMap<(usize, usize), f32> = HashMap::new();
    for s in sentences {
        let words: Vec<usize> = s
            .tokens
            .iter()
            .filter(|t| t.kind == TokenKind::Word)
            .filter(|t| {
                let l = t.text(&s.text).to_lowercase();
                !is_stopword(&l) && !is_common_verb(&l) && !is_generic(&l) && l.chars().count() > 2
            })
            .map(|t| {
                let n = ids.len();
                *ids.entry(t.norm.as_str()).or_insert_with(|| {
                    names.push(t.norm.as_str());
                    n
                })
            })
            .collect();
        for i in 0..words.len() {
            for j in i + 1..(i + 4).min(words.len()) {
                let (a, b) = (words[i].min(words[j]), words[i].max(words[j]));
                if a != b {
                    *edges.entry((a, b)).or_insert(0.0) += 1.0;
                }
            }
        }
    }
    let mut adj: Vec<Vec<(usize, f32)>> = vec![Vec::new(); names.len()];
    for ((a, b), w) in edges {
        adj[a].push((b, w));
        adj[b].push((a, w));
    }
    for v in adj.iter_mut() {
        v.sort_by_key(|x| x.0);
    }
    let pr = pagerank(&adj, 40);
    let max = pr.iter().copied().fold(0.0f64, f64::max).max(1e-9);
    names
        .into_iter()
        .zip(pr)
        .map(|(n, s)| (n.to_string(), s / max))
        .collect()
}

/// True for a term that can be a keyphrase (a name or concept of 3+ characters that
/// is not a lone generic word and not always part of a longer term).
pub fn keyphrase_candidate(t: &Term) -> bool {
    let gerund = t.words == 1 && t.text.ends_with("ing") && t.definition.is_none() && !t.in_heading;
    let lone_generic = t.words == 1 && is_generic(&t.text.to_lowercase());
    !gerund
        && !t.kind.is_value()
        && !t.subsumed
        && t.key.chars().count() >= 3
        && !lone_generic
        && (t.count >= 2 || t.definition.is_some() || t.in_heading)
}

/// Scores keyphrase candidates in place (`score` in 0..=1) and returns their indices,
/// best first.
pub fn score_keyphrases(
    terms: &mut [Term],
    word_scores: &HashMap<String, f64>,
    n_chunks: usize,
) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, t) in terms.iter_mut().enumerate() {
        if !keyphrase_candidate(t) {
            t.score = 0.0;
            continue;
        }
        let parts: Vec<&str> = t
            .key
            .split(' ')
            .filter(|w| !is_stopword(w) && !CONNECTORS.contains(w))
            .collect();
        let ws: Vec<f64> = parts
            .iter()
            .map(|w| word_scores.get(*w).copied().unwrap_or(0.0))
            .collect();
        let tr = if ws.is_empty() {
            0.0
        } else {
            ws.iter().sum::<f64>() / ws.len() as f64
        };
        let freq = (1.0 + t.count as f64 + if t.in_heading { 2.0 } else { 0.0 }).ln();
        let len_bonus = 1.0 + 0.4 * (parts.len().saturating_sub(1)).min(3) as f64;
        let spread = 0.7 + 0.3 * (t.chunk_count as f64 / n_chunks.max(1) as f64).sqrt();
        let mut s = (0.15 + tr).sqrt() * freq * len_bonus * spread;
        if t.definition.is_some() {
            s *= 1.8;
        }
        if t.in_heading {
            s *= 1.3;
        }
        if t.kind.is_proper() {
            s *= 0.95;
        }
        t.score = s;
        out.push(i);
    }
    let max = out
        .iter()
        .map(|&i| terms[i].score)
        .fold(0.0f64, f64::max)
        .max(1e-9);
    for &i in &out {
        terms[i].score /= max;
    }
    out.sort_by(|&a, &b| terms[b].score.total_cmp(&terms[a].score).then(a.cmp(&b)));
    out
}

/// Marks terms that occur in any of `headings` (whole-token match).
pub fn mark_in_headings(terms: &mut [Term], headings: &[String]) {
    let heads: Vec<Vec<String>> = headings
        .iter()
        .map(|h| tokenize(h).into_iter().map(|t| t.norm).collect())
        .collect();
    for t in terms.iter_mut() {
        let parts: Vec<&str> = t.key.split(' ').collect();
        t.in_heading = heads.iter().any(|h| {
            h.windows(parts.len())
                .any(|w| w.iter().zip(&parts).all(|(a, b)| a == b))
        });
    }
}
