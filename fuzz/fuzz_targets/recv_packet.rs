//! Feed `recv_packet` a sequence of frames carved out of the fuzz input, with time moving
//! forward, and check the engine's bounds after every step.
//!
//! Input layout, repeated: `len: u16 LE`, `dt: u8` (time step in 100 ms units), `len`
//! bytes of frame. Frames are short-lived copies, mutated by nothing but the engine.
//! Small bounds (sessions, stream buffers, fragments, events) make eviction and overflow
//! paths reachable.

#![no_main]

use dpi_core::{Config, Ctx, FragConfig, Time};
use libfuzzer_sys::fuzz_target;

const MAX_SESSIONS: usize = 64;
const MAX_STREAM_BUFFERS: usize = 4;
const MAX_EVENTS: usize = 32;

fuzz_target!(|data: &[u8]| {
    let cfg = Config {
        max_sessions: MAX_SESSIONS,
        max_stream_buffers: MAX_STREAM_BUFFERS,
        max_pending_events: MAX_EVENTS,
        listener_cache_entries: 16,
        frag: FragConfig { max_datagrams: 8, max_bytes: 64 * 1024, timeout_secs: 10 },
        verify_checksums: data.first().is_some_and(|b| b & 1 == 1),
        // The smallest stream buffers reach the overflow paths with small inputs.
        stream_buffer_bytes: if data.first().is_some_and(|b| b & 2 == 2) { 16 << 10 } else { 64 << 10 },
        ..Config::default()
    };
    let mut ctx = Ctx::new(cfg);
    let mut now = Time::from_secs(1_700_000_000);
    let mut rest = data.get(1..).unwrap_or_default();
    let mut frame = Vec::with_capacity(2048);
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        now = now.add_micros(u64::from(rest[2]) * 100_000);
        rest = &rest[3..];
        let take = len.min(rest.len());
        frame.clear();
        frame.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        ctx.handle_timeout(now);
        let _ = ctx.recv_packet(&mut frame);
        assert!(ctx.session_count() <= MAX_SESSIONS);
        assert!(ctx.stream_buffers_in_use() <= MAX_STREAM_BUFFERS);
        assert!(ctx.fragment_count() <= 8);
        assert!(ctx.pending_events() <= MAX_EVENTS);
        while ctx.poll_event().is_some() {}
    }
    // Everything still live ends cleanly; nothing leaks from the pools.
    ctx.handle_timeout(now.add_micros(4_000 * 1_000_000));
    while ctx.poll_event().is_some() {}
    while ctx.flush() > 0 {
        while ctx.poll_event().is_some() {}
    }
    assert_eq!(ctx.session_count(), 0);
    assert_eq!(ctx.stream_buffers_in_use(), 0);
});
