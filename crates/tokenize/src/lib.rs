//! servebench-tokenize
