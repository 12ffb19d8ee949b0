//! Fuzz targets for codedeploy-exporter. The checks live in [`checks`], which
//! `tests/hostile_input.rs` includes by path so that the normal test suite
//! replays every kept corpus and crash file through exactly the same checks.

pub mod checks;
