//! HashEmbedder: the offline fallback still ranks the on-topic passage first.

use learnflow_ai::embed::{cosine, EmbedError, Embedder, HashEmbedder};

const PASSAGES: [&str; 5] = [
    "Photosynthesis takes place in the chloroplasts of plant cells. Chlorophyll absorbs light \
     energy, which drives the conversion of carbon dioxide and water into glucose and oxygen.",
    "The French Revolution began in 1789 with the storming of the Bastille and led to the end \
     of the absolute monarchy in France.",
    "Quarterly revenue grew by ten percent as the company's sales increased in Europe and Asia.",
    "A binary search tree keeps its keys sorted so that lookup, insertion and deletion take \
     logarithmic time on average.",
    "The mitochondria are the site of cellular respiration, where glucose is broken down to \
     release energy stored as ATP.",
];

async fn best_for(e: &HashEmbedder, query: &str) -> (usize, Vec<f32>) {
    let passages: Vec<String> = PASSAGES.iter().map(|s| s.to_string()).collect();
    let vecs = e.embed(&passages).await.unwrap();
    let q = e.embed(&[query.to_string()]).await.unwrap().remove(0);
    let scores: Vec<f32> = vecs.iter().map(|v| cosine(&q, v)).collect();
    let best = (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap();
    (best, scores)
}

#[tokio::test]
async fn on_topic_passage_ranks_first() {
    let e = HashEmbedder::new();
    assert_eq!(e.model_id(), "hash-384");
    assert_eq!(e.dimensions(), 384);
    let cases = [
        ("How does photosynthesis convert light energy in chloroplasts?", 0),
        ("When did the French Revolution begin?", 1),
        ("How much did quarterly revenue grow?", 2),
        ("What is the lookup time of a binary search tree?", 3),
        ("Where does cellular respiration happen in the mitochondria?", 4),
    ];
    for (query, expected) in cases {
        let (best, scores) = best_for(&e, query).await;
        assert_eq!(best, expected, "{query:?}: scores {scores:?}");
        let runner_up = scores
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != expected)
            .map(|(_, s)| *s)
            .fold(f32::MIN, f32::max);
        assert!(
            scores[expected] > runner_up + 0.1,
            "{query:?}: margin too small in {scores:?}"
        );
    }
}

#[tokio::test]
async fn batch_and_single_calls_agree_and_empty_text_is_rejected() {
    let e = HashEmbedder::new();
    let texts: Vec<String> = PASSAGES.iter().map(|s| s.to_string()).collect();
    let batch = e.embed(&texts).await.unwrap();
    for (t, v) in texts.iter().zip(&batch) {
        assert_eq!(&e.embed(std::slice::from_ref(t)).await.unwrap()[0], v);
    }
    let err = e.embed(&["fine".to_string(), String::new()]).await.unwrap_err();
    assert!(matches!(err, EmbedError::EmptyInput { index: 1 }));
}
