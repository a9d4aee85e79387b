//! One folder per remote service, each with the same parts: `wire` (the document's types),
//! `config` (its table, validated), its source and/or target, and `sim` (its simulator).

pub mod shopsys;
