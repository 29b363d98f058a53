//! servebench-tokenize: token counts the way the serving engine counts them.
//!
//! - [`Tokenizer`]: a Hugging Face `tokenizer.json` (file, `.json.gz`, or a model folder with
//!   `tokenizer_config.json` and an optional `chat_template.jinja`), or the built-in SmolLM2 tokenizer.
//! - [`ChatTemplate`]: chat templates rendered with minijinja configured as transformers renders them.

mod byte_bpe;
mod chat;
mod disk;
mod encoded_cache;
mod fast_load;
mod shared;
mod stamp;
mod tokenizer;
mod word_cache;

pub use chat::ChatTemplate;
pub use fast_load::fast_load_matches;
pub use shared::{shared, shared_builtin};
pub use tokenizer::Tokenizer;

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot read tokenizer file {path}: {source}. Pass --tokenizer with a tokenizer.json file or a model folder that holds one")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid tokenizer.json: {message}")]
    Parse { path: String, message: String },
    #[error(
        "no tokenizer.json in folder {0}: pass the file itself or a Hugging Face model folder"
    )]
    NoTokenizerInFolder(String),
    #[error(
        "tokenizer file {0} changed while servebench was using it: run again once it is written"
    )]
    Changed(String),
    #[error("tokenizing failed: {0}")]
    Encode(String),
    #[error("chat template error: {0}")]
    Template(String),
}
