//! libFuzzer entry point of `hardal_fuzz::template`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hardal_fuzz::template(data));
