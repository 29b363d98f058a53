//! servebench-eval

pub mod dataset;
pub mod error;
pub mod extract;
pub mod grade;
pub mod judge;
pub mod predictions;
pub mod prompt;
pub mod report;
pub mod runner;
pub mod score;
