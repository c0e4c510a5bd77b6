//! Per-direction in-order delivery of TCP payload, with bounded out-of-order buffering.
//!
//! Each direction has a frontier, `next_seq`: every byte before it has been delivered to
//! the inspector. A segment that starts at the frontier is delivered straight from the
//! packet (zero copy) when nothing is buffered. The inspector says how many bytes it
//! consumed; bytes it did not consume are kept and presented again, followed by the new
//! ones, with the next segment. A segment that starts beyond the frontier (a hole) is
//! copied into a stream buffer and delivered once the hole is filled.
//!
//! A stream buffer is 64 KiB by default ([`STREAM_BUF_BYTES`], `Config::stream_buffer_bytes`)
//! and covers sequence numbers `[base, base + size)`, where `base` is the first unconsumed
//! byte. Out-of-order data
//! beyond that, more than [`MAX_HOLES`] separate ranges, or no free buffer in the pool
//! stops inspection of the session (bypass: tracking goes on, payload is no longer
//! delivered). Buffers come from a pool bounded by `Config::max_stream_buffers`; they are
//! allocated once and recycled, so steady-state operation does not allocate.
//!
//! Overlaps: bytes already received win ("first copy wins", the policy of most stacks,
//! Linux included); the overlapping part of a later segment is discarded and counted.

use arrayvec::ArrayVec;

/// Default bytes a direction may hold: unconsumed plus out-of-order data.
pub const STREAM_BUF_BYTES: usize = 64 * 1024;
/// Stream buffer size for input with GSO super-frames (`Config::stream_buffer_bytes`): one
/// 64 KiB super-frame beyond a missing one, with room to spare.
pub const STREAM_BUF_BYTES_GSO: usize = 256 * 1024;
/// Smallest and largest stream buffer (`Config::stream_buffer_bytes` is clamped to them).
pub const STREAM_BUF_RANGE: (usize, usize) = (16 * 1024, 16 * 1024 * 1024);

/// Separate out-of-order ranges a direction may hold.
pub const MAX_HOLES: usize = 16;

/// Serial-number comparison (RFC 1982): `a - b` as a signed distance.
#[inline]
pub(crate) fn seq_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// One direction's buffer.
#[derive(Debug)]
pub(crate) struct StreamBuf {
    data: Box<[u8]>,
    /// Sequence number of `data[0]`.
    base: u32,
    /// `data[..contig]` is present and contiguous from `base` (delivered but unconsumed).
    contig: u32,
    /// Out-of-order ranges `[start, end)` relative to `base`, sorted, disjoint, all
    /// beyond `contig` (not touching it).
    ranges: ArrayVec<(u32, u32), MAX_HOLES>,
}

impl StreamBuf {
    fn new(size: usize) -> Self {
        StreamBuf {
            data: vec![0; size].into_boxed_slice(),
            base: 0,
            contig: 0,
            ranges: ArrayVec::new(),
        }
    }
}

/// Why a segment could not be buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// Beyond the buffer size from the first unconsumed byte, or too many holes.
    Overflow,
    /// No buffer left in the pool.
    PoolExhausted,
}

/// The pool of stream buffers of one worker.
#[derive(Debug)]
pub(crate) struct StreamPool {
    bufs: Vec<StreamBuf>,
    free: Vec<u32>,
    max: usize,
    /// Bytes of each buffer.
    size: usize,
}

impl StreamPool {
    #[cfg(test)]
    pub(crate) fn new(max: usize) -> Self {
        Self::with_size(max, STREAM_BUF_BYTES)
    }

    /// At most `max` buffers of `size` bytes (clamped to [`STREAM_BUF_RANGE`]).
    pub(crate) fn with_size(max: usize, size: usize) -> Self {
        let size = size.clamp(STREAM_BUF_RANGE.0, STREAM_BUF_RANGE.1);
        StreamPool { bufs: Vec::new(), free: Vec::new(), max, size }
    }

    /// Buffers currently lent out.
    pub(crate) fn in_use(&self) -> usize {
        self.bufs.len() - self.free.len()
    }

    fn take(&mut self, base: u32) -> Result<u32, StreamError> {
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.bufs.len() < self.max => {
                self.bufs.push(StreamBuf::new(self.size));
                (self.bufs.len() - 1) as u32
            }
            None => return Err(StreamError::PoolExhausted),
        };
        let b = &mut self.bufs[id as usize];
        b.base = base;
        b.contig = 0;
        b.ranges.clear();
        Ok(id)
    }

    /// Return a buffer to the pool.
    pub(crate) fn release(&mut self, id: u32) {
        debug_assert!(!self.free.contains(&id));
        self.free.push(id);
    }

    /// Store out-of-order `data` at sequence `seq` (beyond the frontier `next_seq`) in the
    /// direction's buffer `*buf` (taken from the pool if `NIL`). Returns true if the bytes
    /// were all already present (a retransmission of buffered data).
    pub(crate) fn store_ahead(
        &mut self,
        buf: &mut u32,
        next_seq: u32,
        seq: u32,
        data: &[u8],
    ) -> Result<bool, StreamError> {
        if *buf == super::session::NIL {
            *buf = self.take(next_seq)?;
        }
        let b = &mut self.bufs[*buf as usize];
        let start = seq.wrapping_sub(b.base) as usize;
        let end = start + data.len();
        if end > b.data.len() {
            return Err(StreamError::Overflow);
        }
        let (start, end) = (start as u32, end as u32);
        if b.ranges.iter().any(|&(s, e)| s <= start && end <= e) {
            return Ok(true);
        }
        // Copy only where nothing is stored yet (first copy wins).
        let mut pos = start;
        for &(s, e) in b.ranges.iter().filter(|&&(s, e)| e > start && s < end) {
            if s > pos {
                b.data[pos as usize..s as usize]
                    .copy_from_slice(&data[(pos - start) as usize..(s - start) as usize]);
            }
            pos = pos.max(e);
        }
        if pos < end {
            b.data[pos as usize..end as usize].copy_from_slice(&data[(pos - start) as usize..]);
        }
        // Merge [start, end) into the range list.
        let mut lo = start;
        let mut hi = end;
        let mut merged: ArrayVec<(u32, u32), MAX_HOLES> = ArrayVec::new();
        let mut placed = false;
        for &(s, e) in &b.ranges {
            if e < lo {
                merged.push((s, e));
            } else if s > hi {
                if !placed {
                    if merged.try_push((lo, hi)).is_err() {
                        return Err(StreamError::Overflow);
                    }
                    placed = true;
                }
                if merged.try_push((s, e)).is_err() {
                    return Err(StreamError::Overflow);
                }
            } else {
                lo = lo.min(s);
                hi = hi.max(e);
            }
        }
        if !placed && merged.try_push((lo, hi)).is_err() {
            return Err(StreamError::Overflow);
        }
        b.ranges = merged;
        Ok(false)
    }

    /// Append in-order `data` (starting exactly at the frontier) to the buffer, absorb any
    /// out-of-order ranges it now touches, and return the new frontier.
    pub(crate) fn append_in_order(&mut self, buf: u32, data: &[u8]) -> Result<u32, StreamError> {
        let b = &mut self.bufs[buf as usize];
        let start = b.contig as usize;
        let end = start + data.len();
        if end > b.data.len() {
            return Err(StreamError::Overflow);
        }
        // Bytes already held out of order win over the new copy.
        let mut pos = start as u32;
        for &(s, e) in b.ranges.iter().filter(|&&(s, e)| (e as usize) > start && (s as usize) < end)
        {
            if s > pos {
                b.data[pos as usize..s as usize]
                    .copy_from_slice(&data[(pos as usize - start)..(s as usize - start)]);
            }
            pos = pos.max(e);
        }
        if (pos as usize) < end {
            b.data[pos as usize..end].copy_from_slice(&data[(pos as usize - start)..]);
        }
        b.contig = end as u32;
        Ok(Self::absorb(b))
    }

    /// Absorb ranges touching the contiguous prefix; returns the frontier.
    fn absorb(b: &mut StreamBuf) -> u32 {
        while let Some(&(s, e)) = b.ranges.first() {
            if s > b.contig {
                break;
            }
            b.contig = b.contig.max(e);
            b.ranges.remove(0);
        }
        b.base.wrapping_add(b.contig)
    }

    /// The contiguous, unconsumed bytes of a buffer.
    pub(crate) fn contiguous(&self, buf: u32) -> &[u8] {
        let b = &self.bufs[buf as usize];
        &b.data[..b.contig as usize]
    }

    /// Drop the first `n` contiguous bytes (consumed by the inspector). Returns true when
    /// the buffer is now empty (the caller then releases it).
    pub(crate) fn consume(&mut self, buf: u32, n: usize) -> bool {
        let b = &mut self.bufs[buf as usize];
        let n = n.min(b.contig as usize) as u32;
        if n == 0 {
            return b.contig == 0 && b.ranges.is_empty();
        }
        let high = b.ranges.last().map_or(b.contig, |r| r.1);
        b.data.copy_within(n as usize..high as usize, 0);
        b.base = b.base.wrapping_add(n);
        b.contig -= n;
        for r in &mut b.ranges {
            r.0 -= n;
            r.1 -= n;
        }
        b.contig == 0 && b.ranges.is_empty()
    }

    /// Keep `data` (unconsumed bytes at the frontier's old position) in a new buffer whose
    /// base is `seq`.
    pub(crate) fn keep_unconsumed(
        &mut self,
        buf: &mut u32,
        seq: u32,
        data: &[u8],
    ) -> Result<(), StreamError> {
        debug_assert!(*buf == super::session::NIL);
        if data.len() > self.size {
            return Err(StreamError::Overflow);
        }
        let id = self.take(seq)?;
        let b = &mut self.bufs[id as usize];
        b.data[..data.len()].copy_from_slice(data);
        b.contig = data.len() as u32;
        *buf = id;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::session::NIL;
    use super::*;

    #[test]
    fn out_of_order_ranges_merge_and_fill() {
        let mut p = StreamPool::new(4);
        let mut buf = NIL;
        // frontier at 1000; store [1010,1020) and [1030,1040)
        assert_eq!(p.store_ahead(&mut buf, 1000, 1010, &[1; 10]), Ok(false));
        assert_eq!(p.store_ahead(&mut buf, 1000, 1030, &[3; 10]), Ok(false));
        assert_eq!(p.store_ahead(&mut buf, 1000, 1030, &[9; 10]), Ok(true), "duplicate");
        // fill [1020,1030) out of order too: merges into one range [10,40)
        assert_eq!(p.store_ahead(&mut buf, 1000, 1020, &[2; 10]), Ok(false));
        // in-order [1000,1010) absorbs everything
        assert_eq!(p.append_in_order(buf, &[0; 10]), Ok(1040));
        let c = p.contiguous(buf);
        assert_eq!(c.len(), 40);
        assert_eq!(&c[..10], &[0; 10]);
        assert_eq!(&c[30..], &[3; 10], "first copy won");
        assert!(!p.consume(buf, 25));
        assert_eq!(p.contiguous(buf).len(), 15);
        assert!(p.consume(buf, 15));
        p.release(buf);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn overflow_and_pool_bounds() {
        let mut p = StreamPool::new(1);
        let mut a = NIL;
        assert_eq!(
            p.store_ahead(&mut a, 0, STREAM_BUF_BYTES as u32 - 5, &[0; 10]),
            Err(StreamError::Overflow)
        );
        let mut b = NIL;
        assert_eq!(p.store_ahead(&mut b, 0, 10, &[0; 10]), Err(StreamError::PoolExhausted));
    }

    #[test]
    fn a_larger_buffer_holds_a_super_frame_beyond_a_super_frame_hole() {
        // GSO: one 65 160-byte super-frame arrives after the one before it went missing.
        let seg = vec![7u8; 65_160];
        let mut small = StreamPool::new(1);
        let mut a = NIL;
        assert_eq!(small.store_ahead(&mut a, 0, 65_160, &seg), Err(StreamError::Overflow));
        let mut big = StreamPool::with_size(1, 256 * 1024);
        let mut b = NIL;
        assert_eq!(big.store_ahead(&mut b, 0, 65_160, &seg), Ok(false));
        assert_eq!(big.append_in_order(b, &seg), Ok(2 * 65_160));
        // Sizes are clamped.
        assert_eq!(StreamPool::with_size(1, 1).size, STREAM_BUF_RANGE.0);
    }

    #[test]
    fn too_many_holes_overflow() {
        let mut p = StreamPool::new(1);
        let mut a = NIL;
        for i in 0..MAX_HOLES as u32 {
            assert!(p.store_ahead(&mut a, 0, 10 + i * 20, &[0; 5]).is_ok());
        }
        assert_eq!(p.store_ahead(&mut a, 0, 10 + 100 * 20, &[0; 5]), Err(StreamError::Overflow));
    }

    #[test]
    fn sequence_wraparound() {
        let mut p = StreamPool::new(1);
        let mut a = NIL;
        let front = u32::MAX - 4;
        assert_eq!(p.store_ahead(&mut a, front, front.wrapping_add(10), &[7; 10]), Ok(false));
        assert_eq!(p.append_in_order(a, &[1; 10]), Ok(front.wrapping_add(20)));
        assert_eq!(seq_diff(5, u32::MAX - 4), 10);
    }
}
