//! servebench-eval

pub mod dataset;
pub mod error;
pub mod evalscope;
pub mod extract;
pub mod grade;
pub mod judge;
pub mod predictions;
pub mod prompt;
pub mod protocol;
pub mod report;
pub mod runner;
pub mod score;
