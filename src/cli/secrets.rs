//! The redaction rule lives in the library ([`crate::secrets`]); re-exported here for the commands.

pub use crate::secrets::*;
