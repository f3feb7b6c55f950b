//! libFuzzer entry point of `hardal_fuzz::judge_custom_api`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hardal_fuzz::judge_custom_api(data));
