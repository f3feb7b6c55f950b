//! hardal-destinations: links every destination crate, so that each registers its kind (through
//! `inventory`) in any binary that links this crate. The runner depends on this crate instead of
//! naming kinds; adding a kind is one line under `[dependencies]` in this crate's Cargo.toml
//! (`cargo xtask new-destination` writes it), and `build.rs` turns those lines into the `use`s.

include!(concat!(env!("OUT_DIR"), "/linked.rs"));
