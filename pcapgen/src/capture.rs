//! Timestamped frames and [`Capture`], the simulated clock scenarios record into.
//!
//! Time never comes from the wall clock: a capture starts at [`BASE_TS_MICROS`]
//! (2026-01-01T00:00:00Z) and every frame is stamped a fixed step after the
//! previous one (1 ms by default) unless the scenario asks for another gap.

/// 2026-01-01T00:00:00Z in microseconds since the Unix epoch.
pub const BASE_TS_MICROS: u64 = 1_767_225_600 * 1_000_000;

/// Microseconds in one millisecond.
pub const MILLIS: u64 = 1_000;
/// Microseconds in one second.
pub const SECONDS: u64 = 1_000_000;

/// One captured Ethernet II frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Capture time in microseconds since the Unix epoch.
    pub ts_micros: u64,
    /// The frame, from the destination MAC to the end of the payload (no FCS).
    pub data: Vec<u8>,
}

/// Collects frames and stamps them on a simulated clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    start: u64,
    step: u64,
    last: Option<u64>,
    gap: Option<u64>,
    frames: Vec<Frame>,
}

impl Default for Capture {
    fn default() -> Self {
        Self::new()
    }
}

impl Capture {
    /// An empty capture starting at [`BASE_TS_MICROS`] with a 1 ms step.
    pub fn new() -> Self {
        Self::starting_at(BASE_TS_MICROS)
    }

    /// An empty capture whose first frame is stamped `ts_micros`, 1 ms step.
    pub fn starting_at(ts_micros: u64) -> Self {
        Self { start: ts_micros, step: MILLIS, last: None, gap: None, frames: Vec::new() }
    }

    /// Sets the default time between consecutive frames, in microseconds.
    pub fn set_step(&mut self, micros: u64) {
        self.step = micros;
    }

    /// Stamps the next pushed frame `micros` after the previous one (instead of
    /// the step). Before the first frame it delays the start.
    pub fn next_gap(&mut self, micros: u64) {
        self.gap = Some(micros);
    }

    /// The timestamp the next pushed frame will get.
    pub fn next_ts(&self) -> u64 {
        match self.last {
            None => self.start + self.gap.unwrap_or(0),
            Some(last) => last + self.gap.unwrap_or(self.step),
        }
    }

    /// Appends a frame at the next timestamp.
    pub fn push(&mut self, data: Vec<u8>) {
        let ts = self.next_ts();
        self.last = Some(ts);
        self.gap = None;
        self.frames.push(Frame { ts_micros: ts, data });
    }

    /// Appends frames one step apart (the first one honours [`Capture::next_gap`]).
    pub fn push_all(&mut self, frames: impl IntoIterator<Item = Vec<u8>>) {
        for f in frames {
            self.push(f);
        }
    }

    /// Number of frames so far.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The recorded frames.
    pub fn into_frames(self) -> Vec<Frame> {
        self.frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_and_gap() {
        let mut c = Capture::new();
        c.push(vec![1]);
        c.push(vec![2]);
        c.next_gap(2 * SECONDS);
        c.push(vec![3]);
        c.push(vec![4]);
        let ts: Vec<u64> = c.into_frames().iter().map(|f| f.ts_micros - BASE_TS_MICROS).collect();
        assert_eq!(ts, vec![0, 1_000, 2_001_000, 2_002_000]);
    }
}
