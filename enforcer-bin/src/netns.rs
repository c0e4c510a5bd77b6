//! Network namespaces by path: run code on a thread inside one.
//!
//! A socket belongs for life to the network namespace of the thread that created it, so
//! the enforcer opens a workload's tap port or NFQUEUE socket on a thread that joined the
//! workload's namespace, then uses it from any thread. The daemon's own threads never
//! change namespace: [`run_in`] uses a throwaway thread.

use std::fs::File;
use std::io;
use std::path::Path;

/// Open a namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`, a bind mount).
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("network namespace {}: {e}", path.display())))
}

/// Move the calling thread into `ns` for the rest of its life.
pub fn enter(ns: &File) -> io::Result<()> {
    crate::sys::setns_net(ns)
}

/// Run `f` on a new thread inside the namespace at `path` and return its result.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let ns = open(path)?;
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            enter(&ns)?;
            Ok(f())
        })?
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_namespace_is_a_named_error() {
        let e = run_in(Path::new("/nonexistent/ns"), || ()).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ns"), "{e}");
    }

    #[test]
    fn own_namespace_can_be_entered_when_root() {
        // setns into the namespace we are already in needs CAP_SYS_ADMIN.
        let r = run_in(Path::new("/proc/self/ns/net"), || 7);
        match r {
            Ok(v) => assert_eq!(v, 7),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
    }
}
