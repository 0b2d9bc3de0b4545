//! Record encoding: bincode with variable-length integers, so small ids and
//! short strings cost one length byte instead of eight.

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

use super::StoreError;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    options()
        .serialize(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))
}

/// Decodes a record; `what` names it in the error.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &dyn Fn() -> String,
) -> Result<T, StoreError> {
    options()
        .deserialize(bytes)
        .map_err(|e| StoreError::Corrupt(format!("cannot decode {}: {e}", what())))
}
