//! The bounded event queue: a ring preallocated to `Config::max_pending_events`. When it is
//! full, new events are dropped and counted (`events_dropped`); nothing allocates.

use crate::counters::Counters;
use crate::event::Event;
use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) struct EventQueue {
    q: VecDeque<Event>,
    cap: usize,
}

impl EventQueue {
    pub(crate) fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        EventQueue { q: VecDeque::with_capacity(cap), cap }
    }

    pub(crate) fn push(&mut self, ev: Event, counters: &mut Counters) {
        if self.q.len() >= self.cap {
            counters.events_dropped += 1;
        } else {
            self.q.push_back(ev);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.q.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }
}
