//! The binary's only `unsafe` code: mapping a capture file into memory (a replay reads
//! packets where the page cache holds them instead of copying the file through `read`),
//! and joining a network namespace (ports and queues belong to the namespace of the
//! thread that opens them).

#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Map `file` privately (copy-on-write): the engine may rewrite frames in place without
/// the file changing.
pub(crate) fn map_private(file: &File) -> io::Result<memmap2::MmapMut> {
    // SAFETY: the mapping is private, so writes through it never reach the file. What
    // `memmap2` cannot rule out is another process truncating or rewriting the file while
    // it is mapped (reads would then change under us, or fault with SIGBUS). Replay reads
    // finished capture files that nothing else writes, the same assumption every tool
    // that maps its input (ripgrep, tcpdump's readers via libpcap's buffers) makes.
    unsafe { memmap2::MmapOptions::new().map_copy(file) }
}

/// Move the calling thread into the network namespace `ns` (an open namespace file).
pub(crate) fn setns_net(ns: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `ns` is an open file for the duration of the call; setns changes only the
    // calling thread's namespace membership, which the caller owns.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
