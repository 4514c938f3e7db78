//! The ASCII WordPiece fast path gives the tokenizers crate's ids, truncation and truncation flag
//! for every text: the fixtures, and generated texts built to hit its edges (controls,
//! punctuation, casing, long and unknown words, added tokens in the text, non-ASCII).

use std::path::Path;

use super::real_model;
use streampool_models::loading::{Encoding, Side, Tokenizer};

/// A small deterministic generator (xorshift64*), so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The WordPiece vocabulary of `tokenizer.json`, whole entries and `##` pieces without `##`.
fn vocabulary(path: &Path) -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    vocab.keys().map(|k| k.trim_start_matches("##").to_owned()).collect()
}

/// `count` texts mixing vocabulary words (as they are, capitalised, glued to their neighbours),
/// every ASCII byte, long words, added tokens and some non-ASCII characters.
fn texts(vocab: &[String], count: usize, seed: u64) -> Vec<String> {
    const ODD: &[&str] = &[
        "[CLS]", "[SEP]", "[MASK]", "[mask]", "<s>", "</s>", "<mask>", "[UNK", "##", "é", "中文",
        "\u{3000}", "\u{85}", "\u{a0}", "\u{fffd}", "naïve", "\u{200b}",
    ];
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let mut text = String::new();
            for _ in 0..rng.below(40) {
                match rng.below(20) {
                    0..=9 => text.push_str(&vocab[rng.below(vocab.len())]),
                    10 => {
                        let word = &vocab[rng.below(vocab.len())];
                        text.push_str(&word.to_uppercase());
                    }
                    11..=13 => text.push(char::from(rng.below(128) as u8)),
                    14 => text.push_str(&"ab".repeat(rng.below(80))),
                    15 if rng.below(4) == 0 => text.push_str(ODD[rng.below(ODD.len())]),
                    16 => text
                        .push_str(["\t", "\n", "\r\n", "  ", "\x0b", "\x0c", "\0"][rng.below(7)]),
                    _ => {}
                }
                if rng.below(3) > 0 {
                    text.push(' ');
                }
            }
            text
        })
        .collect()
}

/// Asserts that `path`'s tokenizer gives the same encodings with and without the fast path, in
/// batches and one text at a time from either side, at `max_length`; returns how many of the
/// texts were ASCII (so the fast path, not the fallback, answered them).
fn compare(path: &Path, max_length: usize, texts: &[String]) -> usize {
    let fast = Tokenizer::from_file(path, max_length).unwrap();
    assert!(fast.has_fast_path(), "{}: BERT's pipeline has the fast path", path.display());
    let slow = Tokenizer::from_file(path, max_length).unwrap().without_fast_path();
    assert!(!slow.has_fast_path());

    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (a, b) = (fast.encode_batch(&refs).unwrap(), slow.encode_batch(&refs).unwrap());
    for ((text, a), b) in texts.iter().zip(&a).zip(&b) {
        assert_eq!(a, b, "{}, {max_length} tokens: {text:?}", path.display());
    }
    for text in texts {
        for side in [Side::Right, Side::Left] {
            let (a, b): ((Encoding, bool), (Encoding, bool)) =
                (fast.encode_side(text, side).unwrap(), slow.encode_side(text, side).unwrap());
            assert_eq!(a, b, "{}, {max_length} tokens, {side:?}: {text:?}", path.display());
        }
    }
    texts.iter().filter(|t| t.is_ascii()).count()
}

#[test]
fn fast_path_matches_the_tokenizers_crate_on_every_bert_fixture() {
    let mut covered = 0;
    for dir in streampool_models::testing::tiny_models() {
        let path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&path, 64).unwrap();
        let json = std::fs::read_to_string(&path).unwrap();
        if !json.contains("\"BertPreTokenizer\"") {
            // SentencePiece (Gemma, XLM-R): everything goes to the tokenizers crate.
            assert!(!tokenizer.has_fast_path(), "{}", dir.display());
            continue;
        }
        let vocab = vocabulary(&path);
        let texts = texts(&vocab, 400, 0x5eed ^ covered as u64);
        for max_length in [5, 64] {
            let ascii = compare(&path, max_length, &texts);
            assert!(ascii > texts.len() / 2, "only {ascii} ASCII texts of {}", texts.len());
        }
        covered += 1;
    }
    assert!(covered >= 8, "{covered} BERT-pipeline fixtures");
}

#[test]
fn fast_path_matches_the_tokenizers_crate_on_the_real_vocabulary() {
    let Some(files) = real_model() else { return };
    let vocab = vocabulary(&files.tokenizer);
    let mut texts = texts(&vocab, 2000, 7);
    // The reference fixture's texts: real prose, some of it long enough to truncate.
    let fixture = std::fs::read_to_string(streampool_models::testing::reference_fixture_path());
    let json: serde_json::Value = serde_json::from_str(&fixture.unwrap()).unwrap();
    texts.extend(
        json["cases"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap().into()),
    );
    texts.push("streams and events keep the device busy ".repeat(400));
    for max_length in [16, 256] {
        compare(&files.tokenizer, max_length, &texts);
    }
}
