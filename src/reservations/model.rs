//! The property test.
