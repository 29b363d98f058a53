//! servebench-eval
