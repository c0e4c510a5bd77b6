//! The crate's only `unsafe`: the netlink socket and its system calls (`socket`, `bind`,
//! `getsockname`, `setsockopt`, `poll`, `recvmmsg`, `send`, `sendmsg`), each behind a safe
//! function that takes slices and borrowed descriptors.
//!
//! Invariants the callers rely on: every buffer passed to the kernel is a live Rust slice
//! whose length is the length given to the kernel, and no function keeps a pointer past
//! its return.

#![allow(unsafe_code)]

pub(crate) mod abi;

pub(crate) use abi::*;

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Most datagrams one [`recv_many`] call can return (the size of its on-stack header
/// arrays).
pub(crate) const MAX_SLOTS: usize = 64;

/// One datagram received by [`recv_many`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Received {
    /// Bytes stored in the slot (at most the slot size; a longer datagram is cut, and
    /// its last message then fails to parse and is counted malformed).
    pub(crate) len: usize,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A non-blocking, close-on-exec `NETLINK_NETFILTER` socket in the calling thread's
/// network namespace.
pub(crate) fn open_netfilter() -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new descriptor that
    // nothing else owns, so wrapping it in OwnedFd is sound.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_NETFILTER,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Bind the socket with a kernel-chosen port id and return that id.
pub(crate) fn bind_auto(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: sockaddr_nl is plain data, valid all-zero; the pointers passed to bind and
    // getsockname point at `addr`, which lives across both calls, with its true size.
    unsafe {
        let mut addr: libc::sockaddr_nl = zeroed();
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let len = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        cvt(libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len))?;
        let mut out_len = len;
        cvt(libc::getsockname(fd.as_raw_fd(), (&raw mut addr).cast(), &mut out_len))?;
        Ok(addr.nl_pid)
    }
}

fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, opt: i32, val: i32) -> io::Result<()> {
    // SAFETY: the option value points at a live c_int and its size is given exactly.
    unsafe {
        cvt(libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&raw const val).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
    }
    Ok(())
}

fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, opt: i32) -> io::Result<i32> {
    let mut val: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: val and len are live locals; len holds val's size.
    unsafe {
        cvt(libc::getsockopt(fd.as_raw_fd(), level, opt, (&raw mut val).cast(), &mut len))?;
    }
    Ok(val)
}

/// Set the receive buffer to `bytes` (`SO_RCVBUFFORCE`, which needs CAP_NET_ADMIN and
/// ignores `net.core.rmem_max`; `SO_RCVBUF` otherwise). Returns the size the kernel
/// granted (it doubles the request for its bookkeeping).
pub(crate) fn set_rcvbuf(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let v = i32::try_from(bytes).unwrap_or(i32::MAX / 2);
    if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, v)?;
    }
    Ok(usize::try_from(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?).unwrap_or(0))
}

/// Set the send buffer (`SO_SNDBUFFORCE`, falling back to `SO_SNDBUF`).
pub(crate) fn set_sndbuf(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    let v = i32::try_from(bytes).unwrap_or(i32::MAX / 2);
    if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, v).is_err() {
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, v)?;
    }
    Ok(())
}

/// `NETLINK_CAP_ACK`: error messages carry only the header of the rejected request, not
/// its payload (a rejected verdict would otherwise echo a whole packet back).
pub(crate) fn set_cap_ack(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_NETLINK, libc::NETLINK_CAP_ACK, 1)
}

/// `NETLINK_NO_ENOBUFS`: stop reporting receive-buffer overruns as `ENOBUFS`.
pub(crate) fn set_no_enobufs(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, i32::from(on))
}

/// Wait up to `timeout` for the socket to be readable (or to have an error pending).
/// `Ok(false)` on timeout or on a signal.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: pfd is a live pollfd and the count is 1.
    let r = unsafe { libc::poll(&raw mut pfd, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    Ok(r > 0)
}

/// Receive up to `count` datagrams without blocking, one per `slot`-byte slot of `buf`
/// (`recvmmsg`, one system call). Returns how many arrived; `out[i]` describes slot `i`.
/// `WouldBlock` when none are waiting; a pending socket error (such as `ENOBUFS` after an
/// overrun) is returned once and cleared by the kernel.
pub(crate) fn recv_many(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    slot: usize,
    count: usize,
    out: &mut [Received],
) -> io::Result<usize> {
    let n = count.min(MAX_SLOTS).min(out.len()).min(buf.len().checked_div(slot).unwrap_or(0));
    if n == 0 {
        return Ok(0);
    }
    let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    let mut iov = [empty; MAX_SLOTS];
    // SAFETY: mmsghdr is plain data (integers and pointers) for which all-zero is valid:
    // no name, no control data, no iovecs yet.
    let mut hdrs: [libc::mmsghdr; MAX_SLOTS] = unsafe { zeroed() };
    for (i, chunk) in buf.chunks_exact_mut(slot).take(n).enumerate() {
        iov[i] = libc::iovec { iov_base: chunk.as_mut_ptr().cast(), iov_len: chunk.len() };
        hdrs[i].msg_hdr.msg_iov = &raw mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first n headers each point at one iovec describing a distinct,
    // exclusively borrowed slot of `buf` of exactly `slot` bytes; `iov`, `hdrs` and `buf`
    // outlive the call and the kernel writes only within those bounds. No timeout pointer.
    let r = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    let got = usize::try_from(cvt(r)?).unwrap_or(0).min(n);
    for (o, h) in out.iter_mut().zip(hdrs.iter()).take(got) {
        *o = Received { len: (h.msg_len as usize).min(slot) };
    }
    Ok(got)
}

/// Send one buffer of netlink messages to the kernel (port 0, the socket's default
/// destination). The kernel processes the messages in order before this returns.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<()> {
    // SAFETY: buf is a live slice and its exact length is passed.
    let r = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r as usize != buf.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short netlink send"));
    }
    Ok(())
}
