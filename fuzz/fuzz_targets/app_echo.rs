//! Fuzz the echo parser's probes (and extractors); see `common` for the input layout.

#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run(dpi_core::app::AppId::ECHO, data));
