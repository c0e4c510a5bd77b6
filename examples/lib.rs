//! Examples of embedding `dpi-core` in another program; see `examples/`. Run one with
//! `cargo run -p dpi-examples --example payload_by_port -- testdata/pcap/demo.pcap`.
