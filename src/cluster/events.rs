//! The simulator's scheduler: one agenda of events ordered by virtual time. The simulation pops the
//! earliest event, lets the actor it concerns handle it, and schedules what that handler caused
//! (a message's arrival after its network delay, the end of a computation after its duration).
//! Virtual time only moves forward, from event to event; real time plays no part.
//!
//! Ties are broken deterministically: at equal times, by the event's rank (so that, for example,
//! a report arriving exactly at a deadline counts as in time), then by the order of scheduling.
//! The order of scheduling is itself deterministic, because handlers run one at a time in the
//! agenda's order; so the whole sequence of events is a function of the inputs and the seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What decides the order of events that fall at the same virtual time: lower ranks first.
pub trait Ranked {
    /// The event's rank among events of the same time.
    fn rank(&self) -> u8;
}

/// Events waiting for their virtual time.
pub struct Agenda<E> {
    heap: BinaryHeap<Entry<E>>,
    scheduled: u64,
    now: f64,
}

struct Entry<E> {
    time: f64,
    rank: u8,
    seq: u64,
    event: E,
}

impl<E> Entry<E> {
    fn key(&self) -> (f64, u8, u64) {
        (self.time, self.rank, self.seq)
    }
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    /// Reversed, so that the max-heap pops the earliest `(time, rank, seq)`.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.key(), other.key());
        b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2))
    }
}

impl<E: Ranked> Agenda<E> {
    /// An empty agenda at virtual time 0.
    pub fn new() -> Agenda<E> {
        Agenda { heap: BinaryHeap::new(), scheduled: 0, now: 0.0 }
    }

    /// Schedules `event` at virtual time `time`, which may not lie before the current time.
    pub fn at(&mut self, time: f64, event: E) {
        assert!(time >= self.now, "an event scheduled in the past: {time} < {}", self.now);
        let rank = event.rank();
        self.heap.push(Entry { time, rank, seq: self.scheduled, event });
        self.scheduled += 1;
    }

    /// The earliest event and its time, which becomes the current time; `None` when none is left.
    pub fn pop(&mut self) -> Option<(f64, E)> {
        let e = self.heap.pop()?;
        self.now = e.time;
        Some((e.time, e.event))
    }
}

impl<E: Ranked> Default for Agenda<E> {
    fn default() -> Self {
        Agenda::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Ev(&'static str, u8);

    impl Ranked for Ev {
        fn rank(&self) -> u8 {
            self.1
        }
    }

    #[test]
    fn events_come_out_by_time_then_rank_then_scheduling_order() {
        let mut a = Agenda::new();
        a.at(2.0, Ev("late", 0));
        a.at(1.0, Ev("deadline", 1));
        a.at(1.0, Ev("first arrival", 0));
        a.at(1.0, Ev("second arrival", 0));
        a.at(0.5, Ev("early", 3));
        let order: Vec<&str> = std::iter::from_fn(|| a.pop()).map(|(_, e)| e.0).collect();
        assert_eq!(order, ["early", "first arrival", "second arrival", "deadline", "late"]);
    }

    #[test]
    #[should_panic(expected = "scheduled in the past")]
    fn the_past_cannot_be_scheduled() {
        let mut a = Agenda::new();
        a.at(1.0, Ev("x", 0));
        a.pop();
        a.at(0.5, Ev("y", 0));
    }
}
