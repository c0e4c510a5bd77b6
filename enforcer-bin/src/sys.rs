//! The binary's only `unsafe` code: mapping a capture file into memory, so a replay reads
//! packets where the page cache holds them instead of copying the file through `read`.

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
