//! One file per application protocol: a `probe` (identification, see
//! [`crate::app::probe`]) and, where the engine needs something from the protocol, small
//! bounded extractors (HTTP Host, TLS SNI, ...). All operate on byte slices with bounded
//! reads and never panic.

pub mod dns;
pub mod http;
pub mod ssh;
pub mod tls;
