//! End-to-end tests: one test binary (it links once). Each module starts the built-in simulator on an
//! ephemeral loopback port and drives servebench against it.

mod bench;
mod capacity;
mod cli;
mod common;
mod compare;
mod connections;
mod endpoints;
mod eval;
mod eval_protocols;
mod faults;
mod float_flags;
mod grade;
mod hardening;
mod launch;
mod newcomer;
mod parity;
mod report_browser;
mod scaleout;
mod sim;
mod study;
mod sweep;
mod tokens;
mod workload;
