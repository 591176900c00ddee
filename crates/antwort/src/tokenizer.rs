//! A model's own tokenizer (`backends[].models[].tokenizer`): a Hugging Face
//! `tokenizer.json`, loaded once at start with the `tokenizers` crate and
//! handed to the engine as its [`TokenCounter`]. (The engine does no I/O;
//! loading files is the binary's.)

use antwort_engine::TokenCounter;

pub struct HfTokenizer {
    tokenizer: tokenizers::Tokenizer,
    /// The file, for the logs (`tokens counted by ...`).
    name: String,
}

impl HfTokenizer {
    /// Loads `path`. A file that is not a tokenizer the crate can run (a
    /// model type or pre-tokenizer it does not know) fails here, at start,
    /// rather than on a request.
    pub fn load(path: &str) -> anyhow::Result<Self> {
        let mut tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|error| anyhow::anyhow!("cannot load the tokenizer `{path}`: {error}"))?;
        // A tokenizer.json made for training or embedding may truncate or
        // pad every encoding to a fixed length, which would cap or inflate
        // the count: counting wants neither.
        tokenizer
            .with_truncation(None)
            .map_err(|error| anyhow::anyhow!("the tokenizer `{path}`: {error}"))?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer,
            name: path.to_owned(),
        })
    }
}

impl TokenCounter for HfTokenizer {
    /// Without special tokens: a turn's count adds its own allowance per
    /// message for what the chat template wraps around each.
    fn count(&self, text: &str) -> u64 {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.len() as u64,
            Err(error) => {
                // Not seen with a tokenizer that loaded; an estimate beats
                // failing the request over a count.
                tracing::warn!(tokenizer = %self.name, %error, "the tokenizer failed on a text; counted with o200k_base");
                antwort_engine::tokens::count_text(text)
            }
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is the failure report"
    )]

    use super::*;

    /// A word-level tokenizer that knows three words, splits on whitespace
    /// and punctuation, and (like some tokenizer.json files) truncates to
    /// four tokens unless told not to.
    const WORDS: &str = r#"{
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0},
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1, "world": 2}, "unk_token": "[UNK]"}
    }"#;

    #[test]
    fn a_tokenizer_json_counts_its_tokens_untruncated() {
        let dir = std::env::temp_dir().join(format!("antwort-tokenizer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, WORDS).unwrap();
        let path = path.to_str().unwrap();
        let tokenizer = HfTokenizer::load(path).unwrap();
        assert_eq!(tokenizer.count("hello world"), 2);
        assert_eq!(
            tokenizer.count("hello, strange new world!"),
            6,
            "unknown words count too"
        );
        assert_eq!(tokenizer.name(), path);

        std::fs::write(path, "{\"not\": \"a tokenizer\"}").unwrap();
        let error = HfTokenizer::load(path).err().unwrap().to_string();
        assert!(error.contains(path), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
