//! Shared harness of the `app_*` fuzz targets: one target per entry of
//! `dpi_core::app::probe::PARSERS`, each a one-line call of [`run`] with its `AppId`.
//!
//! Input layout: `split: u8`, `flags: u8`, `client_port: u8`, `server_port: u8`, then the
//! payload bytes. The first `len * split / 255` payload bytes are the client's (`c2s`), the
//! rest the server's (`s2c`). Flags: bit 0 `c2s_done`, bit 1 `s2c_done`, bit 2
//! `mid_stream`, bits 3–4 `first` (0 none, 1 client, 2 server, 3 none). A port byte below
//! `PORTS.len()` picks a port some probe treats specially; others map to 30000 + byte.
//!
//! Checks, for the parser's TCP and UDP probes (whichever exist): no panic, the same answer
//! twice for the same context (probes are pure functions of it), and never `Match` on a
//! context with no bytes in either direction. The parser's extractors (TLS SNI, HTTP Host
//! and request/status lines, DNS message check) run on both directions.

use dpi_core::app::parsers::{dns, http, tls};
use dpi_core::app::probe::{Probe, ProbeCtx, PARSERS};
use dpi_core::app::AppId;
use dpi_core::Dir;

const TCP: u8 = 6;
const UDP: u8 = 17;

/// Ports with a meaning to some probe (port hints, mDNS/LLMNR, well-known services).
const PORTS: [u16; 32] = [
    0, 7, 53, 67, 68, 69, 80, 123, 137, 443, 554, 1433, 1521, 2181, 3306, 4222, 5060, 5353, 5355,
    5432, 5672, 6379, 7077, 8080, 9042, 9092, 11210, 11211, 1883, 27017, 50051, 65535,
];

fn port(b: u8) -> u16 {
    PORTS.get(usize::from(b)).copied().unwrap_or(30_000 + u16::from(b))
}

/// Fuzz the parser registered for `app` with `data`.
pub fn run(app: AppId, data: &[u8]) {
    let parser =
        PARSERS.iter().find(|p| p.app == app).unwrap_or_else(|| panic!("{app} is not in PARSERS"));
    let [split, flags, cport, sport, payload @ ..] = data else { return };
    let cut = payload.len() * usize::from(*split) / 255;
    let (c2s, s2c) = payload.split_at(cut);
    let first = match (flags >> 3) & 3 {
        1 => Some(Dir::ToServer),
        2 => Some(Dir::ToClient),
        _ => None,
    };
    let cx = ProbeCtx {
        proto: TCP,
        client_port: port(*cport),
        server_port: port(*sport),
        c2s,
        s2c,
        c2s_done: flags & 1 != 0,
        s2c_done: flags & 2 != 0,
        first,
        mid_stream: flags & 4 != 0,
    };
    for (proto, f) in [(TCP, parser.tcp), (UDP, parser.udp)] {
        let Some(f) = f else { continue };
        let cx = ProbeCtx { proto, ..cx };
        let answer = f(&cx);
        assert_eq!(f(&cx), answer, "{app}: same context, different answer");
        let empty = ProbeCtx { c2s: b"", s2c: b"", ..cx };
        assert_ne!(f(&empty), Probe::Match, "{app}: matched a context without bytes");
    }
    extract(app, c2s);
    extract(app, s2c);
}

/// The extractors of `app` on one direction's bytes.
fn extract(app: AppId, b: &[u8]) {
    match app {
        AppId::TLS => {
            let sni = tls::sni(b);
            assert_eq!(tls::sni(b), sni);
            if let Some(name) = sni {
                assert!(!name.is_empty());
            }
        }
        AppId::HTTP | AppId::RTSP | AppId::SIP => {
            let host = http::host(b);
            assert_eq!(http::host(b), host);
            if let Some(h) = host {
                assert!(!h.is_empty() && h.len() <= 253);
            }
            let _ = http::request_line(b);
            let _ = http::status_line(b);
        }
        AppId::DNS => {
            let q = dns::message(b, true);
            let r = dns::message(b, false);
            assert_eq!(dns::message(b, true), q);
            // A message is a query or a response, never both.
            assert!(!(q == Some(true) && r == Some(true)), "dns: query and response at once");
        }
        _ => {}
    }
}
