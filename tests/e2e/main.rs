//! End-to-end tests of the `mvsync` binary: each test gets its own folder
//! with a configuration and CSV files, runs the binary in it and checks what
//! it prints and exports. One test binary (`cargo test -p mvsync-tests --test e2e`).

mod bad_input;
mod browser;
mod console;
mod contract;
mod crash;
mod database;
mod directory;
mod expressions;
mod graph;
mod graph_server;
mod harness;
mod http;
mod identity;
mod ldap;
mod lifecycle;
mod operations;
mod plan;
mod postgres;
mod quickstart;
mod safety;
mod semantics;
mod sql;
mod sync_rules;
mod unique;
mod validate;
mod webdriver;
