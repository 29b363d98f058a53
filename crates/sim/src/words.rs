//! Output text: filler words and the split of scripted text into simulated tokens.
//!
//! Every filler token is one of [`WORDS`]: a common English word with a leading space. Each of these is a single
//! token in the byte-level BPE vocabularies of Llama-3, Qwen2, DeepSeek (V3/R1 family) and SmolLM2 (checked against
//! their `tokenizer.json` vocabularies), and the pre-tokenizers of those models split a run of such words at each
//! space, so a client that re-tokenizes filler output counts exactly the `completion_tokens` the simulator reports.

use crate::rng::SplitMix;

/// The filler vocabulary (124 words, each `" " + lowercase ASCII letters`).
pub const WORDS: &[&str] = &[
    " the", " of", " and", " to", " in", " is", " that", " it", " for", " on", " was", " with",
    " as", " at", " by", " be", " this", " are", " from", " or", " have", " an", " they", " which",
    " one", " you", " were", " all", " we", " can", " her", " has", " there", " been", " if",
    " more", " when", " will", " would", " who", " so", " no", " time", " people", " new", " also",
    " some", " what", " up", " out", " about", " into", " than", " them", " only", " other",
    " its", " then", " first", " any", " like", " over", " after", " do", " most", " made",
    " between", " many", " before", " must", " through", " back", " years", " where", " much",
    " your", " way", " well", " down", " should", " because", " each", " just", " those", " how",
    " too", " good", " very", " make", " world", " still", " own", " see", " men", " work",
    " long", " get", " here", " both", " life", " being", " under", " never", " day", " same",
    " another", " know", " while", " last", " might", " us", " great", " old", " year", " off",
    " come", " since", " against", " go", " came", " right", " used", " take", " three",
];

/// Draw the next filler word.
pub(crate) fn next_word(rng: &mut SplitMix) -> &'static str {
    WORDS[rng.below(WORDS.len() as u64) as usize]
}

/// Append `n` filler words to `out`.
pub(crate) fn push_words(rng: &mut SplitMix, n: u32, out: &mut String) {
    for _ in 0..n {
        out.push_str(next_word(rng));
    }
}

/// Longest run of non-space characters in one simulated token of scripted text.
const MAX_PIECE_CHARS: usize = 6;

/// Split scripted text (answer-key responses) into simulated tokens: each piece is an optional run of whitespace
/// followed by at most [`MAX_PIECE_CHARS`] non-whitespace characters. Concatenating the pieces gives the text back.
/// This is the simulator's own token count for such text; a real tokenizer counts it differently (only filler words
/// are guaranteed to re-tokenize exactly).
pub(crate) fn split_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut word_chars = 0usize;
    for c in text.chars() {
        if c.is_whitespace() {
            if word_chars > 0 {
                pieces.push(std::mem::take(&mut cur));
                word_chars = 0;
            }
            cur.push(c);
        } else {
            if word_chars == MAX_PIECE_CHARS {
                pieces.push(std::mem::take(&mut cur));
                word_chars = 0;
            }
            cur.push(c);
            word_chars += 1;
        }
    }
    if !cur.is_empty() {
        pieces.push(cur);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_space_prefixed_lowercase_and_unique() {
        assert_eq!(WORDS.len(), 124);
        let mut seen = std::collections::HashSet::new();
        for w in WORDS {
            assert!(w.starts_with(' '), "{w:?}");
            assert!(w[1..].chars().all(|c| c.is_ascii_lowercase()), "{w:?}");
            assert!(seen.insert(*w), "duplicate {w:?}");
        }
    }

    #[test]
    fn words_are_deterministic_for_a_seed() {
        let mut a = String::new();
        let mut b = String::new();
        push_words(&mut SplitMix::new(42), 20, &mut a);
        push_words(&mut SplitMix::new(42), 20, &mut b);
        assert_eq!(a, b);
        assert_eq!(a.matches(' ').count(), 20);
        let mut c = String::new();
        push_words(&mut SplitMix::new(43), 20, &mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn pieces_round_trip_and_respect_the_limit() {
        let text = "<think>\nLet me see.\n</think>\n\nThe final answer is \\boxed{12345678}.";
        let pieces = split_pieces(text);
        assert_eq!(pieces.concat(), text);
        for p in &pieces {
            assert!(p.trim_start().chars().count() <= MAX_PIECE_CHARS, "{p:?}");
            assert!(!p.trim_start().is_empty(), "{p:?}");
        }
        assert_eq!(split_pieces(" the of"), vec![" the", " of"]);
        assert_eq!(split_pieces("abcdefgh"), vec!["abcdef", "gh"]);
        assert!(split_pieces("").is_empty());
    }
}
