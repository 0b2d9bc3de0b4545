//! Pieces every connector family shares: the secret type, initial
//! passwords and the async streaming adapter for imports. Retry lives in
//! `engine::retry`, the one policy.

pub mod password;
pub mod secret;
pub mod stream;

pub use secret::{Secret, SecretError, SecretRef};
