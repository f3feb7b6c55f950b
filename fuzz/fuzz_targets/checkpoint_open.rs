//! libFuzzer entry point of `hardal_fuzz::checkpoint_open`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hardal_fuzz::checkpoint_open(data));
