//! libFuzzer entry point of `hardal_fuzz::judge`: judges answers for the destination kind named by
//! `HARDAL_FUZZ_KIND` (`cargo xtask fuzz judge_<kind>` sets it), so one binary serves every kind.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hardal_fuzz::judge::from_env(data));
