//! Plugs a real tokenizer into the simulator so its `usage.prompt_tokens` is exact.

use servebench_sim::prompt::{ChatMessage, PromptCounter};
use servebench_tokenize::Tokenizer;
use std::sync::Arc;

/// A [`PromptCounter`] backed by a `tokenizer.json` (and its chat template for chat requests).
pub struct TokenizerCounter(pub Arc<Tokenizer>);

impl TokenizerCounter {
    /// A counter whose tokenizer has its whole pipeline built before the server answers anything: a chat
    /// prompt holds added tokens, which only `tokenizers`' pipeline counts, and building it on the first
    /// request would pause the simulator's event loop there.
    pub fn new(tok: Tokenizer) -> Result<TokenizerCounter, servebench_tokenize::TokenizeError> {
        tok.build_pipeline()?;
        Ok(TokenizerCounter(Arc::new(tok)))
    }
}

impl PromptCounter for TokenizerCounter {
    fn count_text(&self, text: &str) -> usize {
        self.0.count(text).unwrap_or(0)
    }

    fn count_chat(&self, messages: &[ChatMessage]) -> usize {
        let msgs: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.content}))
            .collect();
        match &self.0.chat_template {
            Some(t) => t
                .render(&msgs, true)
                .ok()
                .and_then(|s| self.0.count(&s).ok())
                .unwrap_or(0),
            None => messages.iter().map(|m| self.count_text(&m.content)).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_counter_has_its_pipeline_built_before_any_request() {
        let tok = Tokenizer::builtin().unwrap();
        assert!(!tok.pipeline_built(), "the built-in tokenizer loads lazily");
        let counter = TokenizerCounter::new(tok).unwrap();
        assert!(counter.0.pipeline_built());
        // A chat prompt (added tokens) is then counted without building anything on a request.
        let msgs = [ChatMessage {
            role: "user".into(),
            content: "Hello there".into(),
        }];
        assert!(counter.count_chat(&msgs) > 2);
    }
}
