//! libFuzzer entry point of `hardal_fuzz::retry_after`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hardal_fuzz::retry_after(data));
