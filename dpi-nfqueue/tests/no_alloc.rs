//! Steady state allocates nothing: after a warm-up batch, receiving, handing out packets
//! (with the in-place Ethernet frame) and sending batched verdicts makes no heap
//! allocation. A counting global allocator counts only on the thread being measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dpi_nfqueue::{QueueConfig, Verdict};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY (of the impl as a whole): every call is forwarded unchanged to the system
// allocator; the thread-locals are const-initialised Cells, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: ptr came from System.alloc with this layout.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_receive_and_verdicts_do_not_allocate() {
    let Some(lab) = Lab::new() else { return };
    lab.iptables("-A INPUT -p udp --dport 9000 -j NFQUEUE --queue-num 0");
    let mut queue = lab.open(QueueConfig { batch: 16, ..cfg() });
    queue.set_poll_timeout(Duration::from_millis(200));
    let udp = lab.udp_server(S4, 9000);
    let mut step = |n: usize| {
        lab.udp_send(S4, 9000, n, 64, Duration::ZERO);
        assert!(eventually(Duration::from_secs(2), || {
            lab.kernel_stats(0).is_some_and(|k| k.queue_total as usize == n)
        }));
        COUNTING.with(|c| c.set(true));
        let mut handled = 0;
        while handled < n {
            handled += queue
                .recv_batch(16, |p| {
                    let frame = p.frame_mut([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
                    assert_eq!(frame.get(12..14), Some(&[0x08, 0x00][..]));
                    Verdict::Accept
                })
                .unwrap();
        }
        COUNTING.with(|c| c.set(false));
        ALLOCS.with(|a| a.replace(0))
    };
    step(40); // warm-up
    let allocs = step(40);
    assert_eq!(allocs, 0, "allocations while receiving and answering 40 packets");
    assert_eq!(udp_count(&udp, 80, Duration::from_secs(2)), 80);
    assert!(queue.stats().batch_msgs >= 2);
}
