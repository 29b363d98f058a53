//! servebench-load
