//! The fold of `fold`, committed to a `RedbStore` message by message with a
//! restart half way; restored exporters must render byte-identical
//! expositions (see `checks::check_store`). Set TMPDIR to a tmpfs
//! (/dev/shm) when running it: every execution creates a store.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    codedeploy_exporter_fuzz::checks::check_store(data);
});
