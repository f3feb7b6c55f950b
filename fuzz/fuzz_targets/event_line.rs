//! libFuzzer entry point of `hardal_fuzz::event_line`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hardal_fuzz::event_line(data));
