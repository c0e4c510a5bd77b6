//! Shared helpers of the engine's integration tests: run frames through a `Ctx` and
//! collect what comes out.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use dpi_core::{Action, Config, Counters, Ctx, Event, SessionRecord, Time};

/// Everything a run produced.
pub(crate) struct Run {
    pub(crate) actions: Vec<Action>,
    pub(crate) starts: Vec<SessionRecord>,
    pub(crate) ends: Vec<SessionRecord>,
    pub(crate) events: Vec<Event>,
    pub(crate) counters: Counters,
}

impl Run {
    /// The single end record whose client or server port is `port`.
    pub(crate) fn end_with_port(&self, port: u16) -> &SessionRecord {
        let v: Vec<_> = self
            .ends
            .iter()
            .filter(|r| r.client.port() == port || r.server.port() == port)
            .collect();
        assert_eq!(v.len(), 1, "sessions with port {port}: {v:#?}");
        v[0]
    }
}

/// Replay `frames` through a fresh engine, then flush.
pub(crate) fn run(frames: &[pcapgen::Frame], cfg: Config) -> Run {
    let mut ctx = Ctx::new(cfg);
    let mut out = Run {
        actions: vec![],
        starts: vec![],
        ends: vec![],
        events: vec![],
        counters: Counters::default(),
    };
    for f in frames {
        ctx.handle_timeout(Time::from_micros(f.ts_micros));
        drain(&mut ctx, &mut out);
        let mut data = f.data.clone();
        out.actions.push(ctx.recv_packet(&mut data));
        drain(&mut ctx, &mut out);
    }
    while ctx.flush() > 0 {
        drain(&mut ctx, &mut out);
    }
    drain(&mut ctx, &mut out);
    out.counters = *ctx.counters();
    assert_eq!(ctx.session_count(), 0);
    assert_eq!(ctx.stream_buffers_in_use(), 0, "stream buffers leaked");
    out
}

fn drain(ctx: &mut Ctx, out: &mut Run) {
    while let Some(ev) = ctx.poll_event() {
        match ev {
            Event::SessionStart(r) => out.starts.push(r),
            Event::SessionEnd(r) => out.ends.push(r),
            _ => {}
        }
        out.events.push(ev);
    }
}

/// Frames of a pcapgen scenario.
pub(crate) fn scenario(name: &str) -> Vec<pcapgen::Frame> {
    pcapgen::scenario(name).unwrap_or_else(|| panic!("no scenario {name}")).frames
}
