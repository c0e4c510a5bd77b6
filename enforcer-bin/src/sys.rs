//! The binary's only `unsafe` code: mapping a capture file into memory (a replay reads
//! packets where the page cache holds them instead of copying the file through `read`),
//! joining a network namespace (ports and queues belong to the namespace of the thread
//! that opens them), and raw IP sockets for the resets of the NFQUEUE path.

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

/// A raw IP socket (`IPPROTO_RAW`: the caller writes the whole IP header, IPv4 or IPv6)
/// whose packets carry `mark` (`SO_MARK`), so the enforcer's own queue rules can let them
/// by. Created in the calling thread's network namespace.
pub(crate) fn raw_ip_socket(v6: bool, mark: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2) call with constant arguments; the result is checked.
    let fd =
        unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor this function owns from here on.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let m: libc::c_int = mark as libc::c_int;
    // SAFETY: `m` lives across the call and its size is passed; `fd` is open.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&m as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

/// Send one whole IP packet (`packet` starts with its IP header) to `dst` on a socket from
/// [`raw_ip_socket`] of the same family.
pub(crate) fn send_raw(
    sock: &std::os::fd::OwnedFd,
    packet: &[u8],
    dst: std::net::IpAddr,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // The destination is only used for routing; the header carries the addresses.
    let (addr, len) = match dst {
        std::net::IpAddr::V4(a) => {
            // SAFETY: an all-zero sockaddr_in is a valid value.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.octets()) };
            let mut st: libc::sockaddr_storage =
                // SAFETY: an all-zero sockaddr_storage is a valid value.
                unsafe { std::mem::zeroed() };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut st as *mut libc::sockaddr_storage).cast(), sa) };
            (st, std::mem::size_of::<libc::sockaddr_in>())
        }
        std::net::IpAddr::V6(a) => {
            // SAFETY: an all-zero sockaddr_in6 is a valid value.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_addr = libc::in6_addr { s6_addr: a.octets() };
            let mut st: libc::sockaddr_storage =
                // SAFETY: an all-zero sockaddr_storage is a valid value.
                unsafe { std::mem::zeroed() };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe { std::ptr::write((&mut st as *mut libc::sockaddr_storage).cast(), sa) };
            (st, std::mem::size_of::<libc::sockaddr_in6>())
        }
    };
    // SAFETY: `packet` and `addr` are valid for the lengths passed for the whole call.
    let n = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            libc::MSG_DONTWAIT,
            (&addr as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
