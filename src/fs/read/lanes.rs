//! How many ranged GETs one sequential read keeps in flight, found by measuring.
//!
//! A read starts as one long GET. Once it has received `probe_after` bytes, its rate
//! (bytes over the time spent waiting for them, not for the reader) decides: at or
//! above `parallel_below` one stream is fast enough, and stays alone (a server that pays
//! for the whole object on every ranged GET, as moto does, is never asked twice). Below
//! it, the rest of the file is cut into parts fetched by two GETs at once; then by one
//! more each time the parts finished at the new count add up to `GAIN` times what the
//! previous count gave, up to `max`. When they do not, the count steps back once, if it
//! lost, and stays there.

/// How much more the streams must give together for one more to stay.
const GAIN: f64 = 1.2;

#[derive(Debug)]
pub(super) struct Lanes {
    /// Streams in flight; 1 until the read is cut into parts.
    target: usize,
    max: usize,
    state: State,
    /// What the streams gave together at `target - 1` (bytes a second).
    previous: f64,
    /// Rates of the parts finished since `target` last changed.
    rates: Vec<f64>,
    /// Parts to finish before measuring: those started at the previous count.
    skip: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// One long GET, not measured yet.
    Probing,
    /// Cut into parts, the count still changing.
    Growing,
    /// Decided.
    Settled,
}

impl Lanes {
    pub(super) fn new(max: usize) -> Self {
        Lanes {
            target: 1,
            max: max.max(1),
            state: if max > 1 {
                State::Probing
            } else {
                State::Settled
            },
            previous: 0.0,
            rates: Vec::new(),
            skip: 0,
        }
    }

    /// Whether the one long GET still waits for its measure.
    pub(super) fn probing(&self) -> bool {
        self.state == State::Probing
    }

    /// Whether the rest of the file is fetched in parts.
    pub(super) fn in_parts(&self) -> bool {
        self.state != State::Probing && self.target > 1
    }

    /// Streams to keep in flight.
    pub(super) fn target(&self) -> usize {
        self.target
    }

    /// Stays with one long GET from now on.
    pub(super) fn settle(&mut self) {
        self.state = State::Settled;
    }

    /// The long GET ran at `rate`: true when the rest is to be cut into parts.
    pub(super) fn measured(&mut self, rate: f64, parallel_below: f64) -> bool {
        if self.state != State::Probing {
            return false;
        }
        if rate >= parallel_below {
            self.state = State::Settled;
            return false;
        }
        self.state = State::Growing;
        self.previous = rate;
        self.target = 2;
        true
    }

    /// A part finished, received at `rate`.
    pub(super) fn finished(&mut self, rate: f64) {
        if self.state != State::Growing {
            return;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        self.rates.push(rate);
        if self.rates.len() < self.target {
            return;
        }
        let together =
            self.rates.iter().sum::<f64>() / self.rates.len() as f64 * self.target as f64;
        self.rates.clear();
        if together >= self.previous * GAIN && self.target < self.max {
            self.previous = together;
            self.skip = self.target - 1;
            self.target += 1;
        } else {
            if together < self.previous {
                self.target -= 1;
            }
            self.state = State::Settled;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1e6;

    /// Feeds `lanes` parts whose rate is `per_stream(count)` until it settles.
    fn run(lanes: &mut Lanes, per_stream: impl Fn(usize) -> f64) {
        for _ in 0..100 {
            if lanes.state == State::Settled {
                return;
            }
            lanes.finished(per_stream(lanes.target));
        }
        panic!("never settled: {lanes:?}");
    }

    #[test]
    fn a_fast_stream_stays_alone() {
        let mut lanes = Lanes::new(4);
        assert!(lanes.probing());
        assert!(!lanes.measured(700.0 * MB, 256.0 * MB));
        assert!(!lanes.in_parts());
        assert_eq!(lanes.target(), 1);
        lanes.finished(1.0);
        assert_eq!(lanes.target(), 1);
    }

    #[test]
    fn streams_bounded_each_grow_to_the_maximum() {
        let mut lanes = Lanes::new(4);
        assert!(lanes.measured(90.0 * MB, 256.0 * MB));
        assert!(lanes.in_parts());
        run(&mut lanes, |_| 90.0 * MB);
        assert_eq!(lanes.target(), 4);
    }

    #[test]
    fn a_server_bounded_in_total_steps_back_to_what_paid() {
        // 100 MB/s whatever the count, but two streams each get 60 (a little more).
        let mut lanes = Lanes::new(4);
        assert!(lanes.measured(100.0 * MB, 256.0 * MB));
        run(&mut lanes, |n| {
            if n == 2 {
                60.0 * MB
            } else {
                100.0 * MB / n as f64
            }
        });
        assert_eq!(lanes.target(), 2);
        // Two streams that add nothing go back to one.
        let mut lanes = Lanes::new(4);
        assert!(lanes.measured(100.0 * MB, 256.0 * MB));
        run(&mut lanes, |n| 90.0 * MB / n as f64);
        assert_eq!(lanes.target(), 1);
    }

    #[test]
    fn parts_started_before_a_change_are_not_measured() {
        let mut lanes = Lanes::new(4);
        assert!(lanes.measured(90.0 * MB, 256.0 * MB));
        lanes.finished(90.0 * MB);
        lanes.finished(90.0 * MB);
        assert_eq!(lanes.target(), 3);
        // One part started at two streams: its low rate is not counted.
        lanes.finished(1.0);
        assert_eq!(lanes.target(), 3);
        for _ in 0..3 {
            lanes.finished(90.0 * MB);
        }
        assert_eq!(lanes.target(), 4);
    }

    #[test]
    fn one_lane_at_most_never_probes() {
        let mut lanes = Lanes::new(1);
        assert!(!lanes.probing());
        assert!(!lanes.measured(1.0, 256.0 * MB));
        assert_eq!(lanes.target(), 1);
    }
}
