//! # enforcer: the agent around the dpi-core engine
//!
//! Today this crate replays capture files through the engine; the live adapters, the
//! workload wiring and the daemon will join it. The binary (`src/main.rs`) is a thin clap
//! front end over these modules, so tests and benchmarks call the same code.
//!
//! ## Data flow of a replay
//!
//! ```text
//!  pcap / pcapng ──► capture::CaptureReader ──► Ethernet frame + Time
//!                    (link::to_ethernet: SLL, raw IP, null, PPP, ... → Ethernet II)
//!                                                  │
//!            replay::Replayer ─► dpi_core::Ctx: handle_timeout, recv_packet, poll_event
//!                                                  │ Event::SessionEnd
//!                                   eve::write_flow ──► one EVE "flow" JSON line
//!            replay::Summary ──► report: --stats table / --stats-json
//! ```
//!
//! ## Use
//!
//! ```no_run
//! use enforcer::replay::Replayer;
//! use std::io::Write;
//!
//! let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
//! let mut replayer = Replayer::new(dpi_core::Config::default()).with_records(&mut out);
//! replayer.replay_file("capture.pcap")?;
//! let summary = replayer.into_summary();
//! out.flush()?;
//! eprintln!("{} packets, {} sessions", summary.packets, summary.sessions_created().total());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// `unsafe` is denied everywhere but `sys` (the memory map of capture files).
#![deny(unsafe_code)]

pub mod capture;
pub mod config;
pub mod eve;
pub mod learn;
pub mod netns;
pub mod replay;
pub mod report;
pub mod run;
mod sys;
pub mod wiring;
