//! libFuzzer entry point of `hardal_fuzz::judge_insider`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hardal_fuzz::judge_insider(data));
