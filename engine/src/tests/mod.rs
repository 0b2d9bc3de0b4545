//! Engine unit tests: see the modules.
