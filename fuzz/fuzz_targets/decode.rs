//! Arbitrary bytes → `decode::decode`: never panics, and what comes out
//! respects the decoder's contract (see `checks::check_decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    codedeploy_exporter_fuzz::checks::check_decode(data);
});
