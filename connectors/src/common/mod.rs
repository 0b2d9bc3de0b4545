//! Pieces every connector family shares: the secret type (and, as the
//! directory, database and Graph connectors arrive, paging and the
//! streaming adapter). Retry lives in `engine::retry`, the one policy.

pub mod secret;

pub use secret::{Secret, SecretError, SecretRef};
