//! A stream of messages, one per line (`@N` stands for the N-th real seed
//! message) → `Exporter::ingest` each → `settle` → both exposition formats,
//! which must be well formed; duplicates must change nothing; the same bytes
//! as a `replay` file too (see `checks::check_fold`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Long inputs only slow the search down; hostile sizes are covered by
    // tests/hostile_input.rs.
    if data.len() > 64 * 1024 {
        return;
    }
    codedeploy_exporter_fuzz::checks::check_fold(data);
});
