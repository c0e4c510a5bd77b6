//! The kernel's own view of the queues: `/proc/net/netfilter/nfnetlink_queue`, one line
//! per bound queue of the reading thread's network namespace:
//!
//! ```text
//! queue portid total mode range dropped user_dropped id_sequence 1
//!     0  12345     0    2 65531      0     0       1042  1
//! ```
//!
//! Read through `/proc/thread-self/net`, not `/proc/net` (which is `/proc/self/net`, the
//! namespace of the process's *main* thread): a worker thread that joined another
//! namespace sees its own queues.

use std::io::{Read, Seek};

/// One queue's line of `/proc/net/netfilter/nfnetlink_queue`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueKernelStats {
    /// Queue number.
    pub queue_num: u16,
    /// Netlink port id of the bound socket ([`Queue::portid`](crate::Queue::portid)).
    pub portid: u32,
    /// Packets waiting for a verdict now.
    pub queue_total: u32,
    /// Copy mode (0 none, 1 meta, 2 packet).
    pub copy_mode: u8,
    /// Bytes of each packet copied to user space.
    pub copy_range: u32,
    /// Packets dropped because the queue was full (`queue_maxlen`) without fail-open.
    pub queue_dropped: u32,
    /// Packets dropped because the socket buffer was full (the `ENOBUFS` case) without
    /// fail-open.
    pub user_dropped: u32,
    /// Last packet id handed out: packets queued since the bind. A packet that finds the
    /// queue full gets no id; one that does not fit in the socket buffer already has one
    /// (and is then accepted with fail-open, dropped as `user_dropped` without).
    pub id_sequence: u32,
}

/// The path of the queue table for the calling thread's namespace.
pub(crate) const PROC_PATH: &str = "/proc/thread-self/net/netfilter/nfnetlink_queue";

/// Parse the table and return queue `num`'s line.
pub fn parse_kernel_stats(text: &str, num: u16) -> Option<QueueKernelStats> {
    text.lines().find_map(|line| {
        let mut f = line.split_ascii_whitespace();
        let mut next = || f.next();
        let queue_num: u16 = next()?.parse().ok()?;
        if queue_num != num {
            return None;
        }
        Some(QueueKernelStats {
            queue_num,
            portid: next()?.parse().ok()?,
            queue_total: next()?.parse().ok()?,
            copy_mode: next()?.parse().ok()?,
            copy_range: next()?.parse().ok()?,
            queue_dropped: next()?.parse().ok()?,
            user_dropped: next()?.parse().ok()?,
            id_sequence: next()?.parse().ok()?,
        })
    })
}

/// Queue `num` as the kernel counts it, in the calling thread's network namespace;
/// `None` when no socket has that queue bound there (or the table cannot be read).
pub fn kernel_stats(num: u16) -> Option<QueueKernelStats> {
    let text = std::fs::read_to_string(PROC_PATH)
        .or_else(|_| std::fs::read_to_string("/proc/net/netfilter/nfnetlink_queue"))
        .ok()?;
    parse_kernel_stats(&text, num)
}

/// Re-read an already opened table (its namespace was fixed when it was opened).
pub(crate) fn reread(
    file: &mut std::fs::File,
    num: u16,
    text: &mut String,
) -> Option<QueueKernelStats> {
    text.clear();
    file.rewind().ok()?;
    file.read_to_string(text).ok()?;
    parse_kernel_stats(text, num)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format() {
        let text = "    0   4242     3 2 65531     7     1     1042  1\n\
                    \x20   5  99999     0 2   128     0     0        0  1\n";
        let q0 = parse_kernel_stats(text, 0).unwrap();
        assert_eq!(
            q0,
            QueueKernelStats {
                queue_num: 0,
                portid: 4242,
                queue_total: 3,
                copy_mode: 2,
                copy_range: 65531,
                queue_dropped: 7,
                user_dropped: 1,
                id_sequence: 1042,
            }
        );
        assert_eq!(parse_kernel_stats(text, 5).unwrap().copy_range, 128);
        assert_eq!(parse_kernel_stats(text, 1), None);
        assert_eq!(parse_kernel_stats("garbage\n0 x y\n", 0), None);
        assert_eq!(parse_kernel_stats("", 0), None);
    }
}
