//! The harness's `unsafe`: namespace syscalls.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// On the calling thread (which must be a throwaway thread): a new network namespace,
/// returned as an open handle.
pub(crate) fn new_netns() -> io::Result<File> {
    // SAFETY: unshare affects only the calling thread's namespace membership; the caller
    // runs this on a thread that ends right after.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    File::open("/proc/thread-self/ns/net")
}

/// Move the calling thread into the namespace `fd`.
pub(crate) fn setns(fd: i32) -> io::Result<()> {
    // SAFETY: fd is an open namespace handle owned by the caller for the call's duration.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Make `cmd` join the namespace `fd` and die with its parent.
pub(crate) fn join_on_exec(cmd: &mut Command, fd: i32) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe syscalls (setns, prctl); fd stays open across fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
