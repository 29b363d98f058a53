//! servebench-core
