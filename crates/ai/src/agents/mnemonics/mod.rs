//! Mnemonics agent: memory aids for the lists found in the text (bulleted lists and
//! enumerations "A, B and C" of 3–7 items): the acronym of the items' first letters
//! and an invented first-letter phrase ("Clever Newts Nap …") built from a fixed
//! word bank. The output says plainly that the aids are generated, not from the text;
//! only the items are.

use std::collections::HashSet;

use serde::Serialize;

use super::common::fnv;
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::truncate_chars;

/// Output of the mnemonics agent.
#[derive(Debug, Serialize)]
pub struct MnemonicsOutput {
    /// How the aids were made.
    pub note: &'static str,
    /// One aid per list.
    pub mnemonics: Vec<Mnemonic>,
}

/// A memory aid for one list.
#[derive(Debug, Serialize)]
pub struct Mnemonic {
    /// What the list is about.
    pub topic: String,
    /// The items, in the document's order.
    pub items: Vec<String>,
    /// First letters of the items.
    pub acronym: String,
    /// An invented phrase whose words start with those letters.
    pub phrase: String,
    /// The passage with the list.
    pub source: Citation,
}

/// The honest note attached to every output.
pub const NOTE: &str = "These memory aids were generated automatically from lists in the text. The items come from the cited passage; the acronyms and phrases are invented study aids, not statements of the document.";

/// Word bank: per letter, adjectives, plural nouns, verbs, adverbs.
const BANK: [(&str, &str, &str, &str); 26] = [
    ("able|artful", "ants|apes", "admire|ask", "always"),
    ("brave|busy", "bears|bakers", "bake|bounce", "boldly"),
    ("clever|calm", "cats|cooks", "chase|climb", "calmly"),
    ("daring|dizzy", "dogs|dancers", "dance|dig", "daily"),
    ("eager|early", "eagles|elephants", "eat|explore", "easily"),
    ("friendly|funny", "foxes|farmers", "fly|find", "fast"),
    ("gentle|giant", "goats|giraffes", "grin|gallop", "gladly"),
    ("happy|hungry", "horses|hens", "hum|hop", "happily"),
    ("idle|icy", "iguanas|inventors", "imagine|invent", "instantly"),
    ("jolly|jumpy", "jaguars|jugglers", "juggle|jump", "joyfully"),
    ("kind|keen", "kangaroos|kings", "knit|kick", "kindly"),
    ("lazy|little", "lions|llamas", "laugh|leap", "loudly"),
    ("mighty|merry", "monkeys|moles", "munch|march", "merrily"),
    ("noisy|nimble", "newts|nurses", "nap|nod", "nightly"),
    ("old|odd", "owls|otters", "open|orbit", "often"),
    ("proud|playful", "penguins|pirates", "paint|play", "politely"),
    ("quiet|quick", "quails|queens", "quiz|quack", "quickly"),
    ("rapid|royal", "rabbits|robots", "race|row", "rarely"),
    ("silly|sleepy", "snakes|sailors", "sing|swim", "softly"),
    ("tiny|tall", "tigers|turtles", "talk|trot", "twice"),
    ("upbeat|unusual", "unicorns|umpires", "unite|unpack", "usually"),
    ("vivid|vast", "vultures|vikings", "visit|vote", "vigorously"),
    ("wise|wild", "wolves|whales", "wave|wander", "wildly"),
    ("xylophone-playing", "xylophones", "x-ray", "xylophonically"),
    ("young|yellow", "yaks|yetis", "yell|yawn", "yearly"),
    ("zany|zealous", "zebras|zombies", "zoom|zigzag", "zestfully"),
];

#[derive(Clone, Copy)]
enum Slot {
    Adj,
    Noun,
    Verb,
    Adv,
}

fn pattern(n: usize) -> Vec<Slot> {
    use Slot::*;
    match n {
        3 => vec![Adj, Noun, Verb],
        4 => vec![Adj, Noun, Verb, Adv],
        5 => vec![Adj, Noun, Verb, Adj, Noun],
        6 => vec![Adj, Noun, Verb, Adj, Noun, Adv],
        _ => vec![Adj, Adj, Noun, Verb, Adj, Noun, Adv],
    }
}

fn word_for(letter: char, slot: Slot, seed: u64) -> Option<String> {
    let idx = (letter.to_ascii_lowercase() as usize).checked_sub('a' as usize)?;
    let (adj, noun, verb, adv) = BANK.get(idx)?;
    let list = match slot {
        Slot::Adj => adj,
        Slot::Noun => noun,
        Slot::Verb => verb,
        Slot::Adv => adv,
    };
    let options: Vec<&str> = list.split('|').collect();
    let w = options[(seed as usize) % options.len()];
    Some(crate::nlp::text::capitalize_first(w))
}

/// First letter of an item (its first alphabetic character, upper-cased).
fn initial(item: &str) -> Option<char> {
    let c = item.chars().next()?;
    c.is_ascii_alphabetic().then(|| c.to_ascii_uppercase())
}

/// Builds a phrase whose words start with `letters`.
pub fn phrase_for(letters: &[char], seed: u64) -> Option<String> {
    let slots = pattern(letters.len());
    let mut words = Vec::with_capacity(letters.len());
    for (i, (&l, slot)) in letters.iter().zip(slots).enumerate() {
        words.push(word_for(l, slot, seed.rotate_left(i as u32 * 7))?);
    }
    Some(format!("{}.", words.join(" ")))
}

/// Builds the mnemonics.
pub fn build(input: &AgentInput<'_>) -> MnemonicsOutput {
    let a = input.analysis;
    let mut seen: HashSet<String> = HashSet::new();
    let mut mnemonics = Vec::new();
    for l in &a.lists {
        if !(3..=7).contains(&l.items.len()) || mnemonics.len() >= 12 {
            continue;
        }
        let key = l
            .items
            .iter()
            .map(|i| i.to_lowercase())
            .collect::<Vec<_>>()
            .join("|");
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(letters) = l.items.iter().map(|i| initial(i)).collect::<Option<Vec<char>>>() else {
            continue;
        };
        let Some(phrase) = phrase_for(&letters, fnv(&key)) else {
            continue;
        };
        let topic = if l.intro_is_heading && l.after.split_whitespace().count() >= 2 {
            format!("{} ({})", l.after, l.intro)
        } else {
            l.intro.trim().trim_end_matches(':').to_string()
        };
        mnemonics.push(Mnemonic {
            topic: truncate_chars(&topic, 200),
            items: l.items.clone(),
            acronym: letters.iter().collect(),
            phrase,
            source: a.cite(l.sentence),
        });
    }
    MnemonicsOutput {
        note: NOTE,
        mnemonics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrase_words_start_with_the_letters() {
        for n in 3..=7 {
            let letters: Vec<char> = "CNRXQZA".chars().take(n).collect();
            let p = phrase_for(&letters, 42).unwrap_or_default();
            let firsts: Vec<char> = p
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .map(|c| c.to_ascii_uppercase())
                .collect();
            assert_eq!(firsts, letters, "{p}");
        }
    }
}
