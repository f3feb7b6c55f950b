//! libFuzzer entry point of `hardal_fuzz::config_load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hardal_fuzz::config_load(data));
