//! Very long texts: the tokenizer reads a byte-bounded prefix, cut at whitespace, and gives the
//! tokens the whole text gives (checked against the tokenizers crate on the whole text, with the
//! same truncation), including texts whose prefix runs short of tokens.

use std::time::Instant;

use streampool_models::loading::{Encoding, Tokenizer};
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use crate::common::model_files;

/// The tokenizers crate's own encoding of the whole `text`, truncated to 256 tokens.
fn whole(path: &std::path::Path, text: &str) -> Encoding {
    let mut t = tokenizers::Tokenizer::from_file(path).unwrap();
    let truncation = TruncationParams {
        direction: TruncationDirection::Right,
        max_length: 256,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
    };
    t.with_truncation(Some(truncation)).unwrap();
    t.with_padding(None);
    let e = t.encode(text, true).unwrap();
    Encoding {
        input_ids: e.get_ids().to_vec(),
        attention_mask: e.get_attention_mask().to_vec(),
        token_type_ids: e.get_type_ids().to_vec(),
        pool_from: 0,
    }
}

#[test]
fn long_texts_give_the_whole_texts_tokens() {
    let Some(files) = model_files() else { return };
    let tokenizer = Tokenizer::from_file(&files.tokenizer, 256).unwrap();
    let bound = tokenizer.byte_bound();
    let texts = [
        // 1 MB of prose.
        "The quick brown fox jumps over the lazy dog; café, naïve 東京 and more. ".repeat(14_000),
        // A word straddling the byte bound.
        format!("{}{} tail", "ab ".repeat(bound / 3), "x".repeat(500)),
        // Mostly whitespace: the first prefix holds too few tokens, the bound doubles.
        format!("{}{}", " \n\t".repeat(bound), "word ".repeat(400)),
        // Control characters (dropped by the normaliser) then words.
        format!("{}{}", "\u{7}".repeat(3 * bound), "late words ".repeat(300)),
        // No whitespace after the bound: read whole.
        format!("short start {}", "y".repeat(3 * bound)),
        // Under the bound: untouched.
        "just a sentence".to_owned(),
    ];
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batch = tokenizer.encode_batch(&refs).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let want = whole(&files.tokenizer, text);
        assert_eq!(batch[i], want, "text {i} ({} bytes)", text.len());
        assert_eq!(tokenizer.encode(text).unwrap(), want, "text {i} alone");
    }
    assert_eq!(batch[0].len(), 256);
}

/// A 10 MB text gives its first page's tokens: it is cut before tokenising (the whole text took
/// seconds and gigabytes).
#[test]
fn a_ten_megabyte_text_is_cut_before_tokenising() {
    let Some(files) = model_files() else { return };
    let tokenizer = Tokenizer::from_file(&files.tokenizer, 256).unwrap();
    let huge = "a sentence of several words, ".repeat(350_000);
    assert!(huge.len() > 10_000_000);
    let start = Instant::now();
    let e = tokenizer.encode(&huge).unwrap();
    let took = start.elapsed();
    assert_eq!(e.len(), 256);
    let page = tokenizer.encode(&huge[..tokenizer.byte_bound() + 64]).unwrap();
    assert_eq!(e, page, "the tokens of its first page");
    println!("10 MB text tokenised in {took:?}");
}
