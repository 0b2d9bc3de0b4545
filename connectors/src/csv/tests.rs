//! Tests of the CSV connector.
