//! Embedding dpi-core: a custom [`Inspector`] that receives every session's reassembled
//! payload, in order, and tallies bytes per server port. Reads an Ethernet pcap.
//!
//! ```text
//! cargo run -p dpi-examples --example payload_by_port -- testdata/pcap/demo.pcap
//! ```

use dpi_core::{Config, Ctx, Dir, Event, HookCx, Inspector, SessionView, Time};
use pcap_file::pcap::PcapReader;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Bytes seen per (server port, direction).
#[derive(Default)]
struct Tally(Arc<Mutex<BTreeMap<(u16, &'static str), u64>>>);

impl Inspector for Tally {
    fn on_payload(
        &mut self,
        s: &SessionView<'_>,
        dir: Dir,
        data: &[u8],
        _: &mut HookCx<'_>,
    ) -> usize {
        let d = if dir == Dir::ToServer { "to server" } else { "to client" };
        if let Ok(mut t) = self.0.lock() {
            *t.entry((s.server().port(), d)).or_default() += data.len() as u64;
        }
        data.len() // consumed everything; the engine keeps nothing back
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: payload_by_port FILE.pcap")?;
    let mut reader = PcapReader::new(std::fs::File::open(&path)?)?;
    let tally = Tally::default();
    let totals = tally.0.clone();
    let mut ctx = Ctx::with_inspector(Config::default(), Box::new(tally));
    let mut sessions = 0;
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt?;
        ctx.handle_timeout(Time::from_micros(pkt.timestamp.as_micros() as u64));
        let mut frame = pkt.data.into_owned();
        ctx.recv_packet(&mut frame);
        while let Some(ev) = ctx.poll_event() {
            sessions += usize::from(matches!(ev, Event::SessionStart(_)));
        }
    }
    while ctx.flush() > 0 {
        while ctx.poll_event().is_some() {}
    }
    println!("{sessions} sessions");
    for ((port, dir), bytes) in totals.lock().map_err(|_| "poisoned")?.iter() {
        println!("port {port:>5} {dir}: {bytes} bytes");
    }
    Ok(())
}
