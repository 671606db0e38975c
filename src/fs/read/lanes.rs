//! How many ranged GETs one sequential read keeps in flight, found by measuring.
//!
//! A read starts as one long GET. Once it has received `probe_after` bytes, what the
//! server gives the whole daemon decides (the rates of all its GETs to that server
//! added up, this one's being bytes over the time spent waiting for them, not for the
//! reader; see `server_pace`): at or above `parallel_below` the server is fast enough,
//! and the stream stays alone (a server that pays for the whole object on every ranged
//! GET, as moto does, is never asked twice; a stream slowed by the daemon's other
//! streams is not a slow server). Below it, the rest of the file is cut into parts
//! fetched by up to `max` GETs at once (fewer when other readers share the server's
//! bound of GETs in flight, and none when its share is one GET), and what
//! they give together is weighed against the one stream: at least `GAIN` times as much
//! and they stay; less, and the streams do not add up (a server bounded in total), so
//! the rest comes in one stream again. "Together" is the bytes of `max` parts over the
//! time from the first part's end to the last of theirs: the first `max` start at once
//! and end close together, so the window opens once they flow (not at the requests).
//!
//! What the streams give together is measured, not each part's own rate: parts of a
//! sequential read are consumed in order, so one part's pace says little about the
//! whole (a part that waits behind another is paced by its reader, not its server).

use std::time::Instant;

/// How much more the streams must give together than one for them to stay.
const GAIN: f64 = 1.2;

#[derive(Debug)]
pub(super) struct Lanes {
    /// Streams in flight; 1 until the read is cut into parts.
    target: usize,
    max: usize,
    state: State,
    /// What the one stream gave (bytes a second).
    alone: f64,
    /// When the first part ended, and the parts that ended since.
    window_from: Option<Instant>,
    parts: usize,
    bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// One long GET, not measured yet.
    Probing,
    /// Cut into parts, what they give together not known yet.
    Weighing,
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
            alone: 0.0,
            window_from: None,
            parts: 0,
            bytes: 0,
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

    /// Streams to keep receiving at once.
    pub(super) fn target(&self) -> usize {
        self.target
    }

    /// Stays with one long GET from now on.
    pub(super) fn settle(&mut self) {
        self.state = State::Settled;
    }

    /// The long GET ran at `own` while the daemon's GETs to its server gave `together`
    /// (its own included), and the reader may hope for `share` GETs at once (its share
    /// of the server's bound): true when the rest is to be cut into parts, at most
    /// `share` at once. A server that gives the daemon `parallel_below` is fast enough,
    /// however its readers split it; with no room for a second GET, one it is.
    pub(super) fn measured(
        &mut self,
        own: f64,
        together: f64,
        share: usize,
        parallel_below: f64,
    ) -> bool {
        if self.state != State::Probing {
            return false;
        }
        let target = self.max.min(share);
        if together >= parallel_below || target < 2 {
            self.state = State::Settled;
            return false;
        }
        self.state = State::Weighing;
        self.alone = own;
        self.target = target;
        true
    }

    /// A part of `bytes` finished at `now`. Returns what the streams gave together
    /// (bytes a second) when this decided whether they stay.
    pub(super) fn finished(&mut self, bytes: u64, now: Instant) -> Option<f64> {
        if self.state != State::Weighing {
            return None;
        }
        let Some(from) = self.window_from else {
            self.window_from = Some(now);
            return None;
        };
        self.parts += 1;
        self.bytes += bytes;
        if self.parts < self.target {
            return None;
        }
        let took = now.saturating_duration_since(from);
        let together = self.bytes as f64 / took.as_secs_f64().max(1e-6);
        if together < self.alone * GAIN {
            self.target = 1;
        }
        self.state = State::Settled;
        Some(together)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MB: f64 = 1e6;
    const PART: u64 = 8 << 20;

    /// Feeds `lanes` parts of `PART` bytes ending one after the other at `together`
    /// bytes a second, from `start`, until it settles.
    fn run(lanes: &mut Lanes, start: Instant, together: f64) -> f64 {
        let mut received = 0;
        for _ in 0..100 {
            received += PART;
            let at = start + Duration::from_secs_f64(received as f64 / together);
            if let Some(rate) = lanes.finished(PART, at) {
                return rate;
            }
        }
        panic!("never settled: {lanes:?}");
    }

    #[test]
    fn a_fast_stream_stays_alone() {
        let mut lanes = Lanes::new(8);
        assert!(lanes.probing());
        assert!(!lanes.measured(700.0 * MB, 700.0 * MB, 8, 256.0 * MB));
        assert!(!lanes.in_parts());
        assert_eq!(lanes.target(), 1);
        assert_eq!(lanes.finished(PART, Instant::now()), None);
        assert_eq!(lanes.target(), 1);
    }

    #[test]
    fn streams_that_add_up_stay_at_the_maximum() {
        let start = Instant::now();
        let mut lanes = Lanes::new(8);
        assert!(lanes.measured(90.0 * MB, 90.0 * MB, 8, 256.0 * MB));
        assert!(lanes.in_parts());
        assert_eq!(lanes.target(), 8);
        // Eight streams of 90 MB/s each.
        let together = run(&mut lanes, start, 8.0 * 90.0 * MB);
        assert!((together - 720.0 * MB).abs() < MB, "{together}");
        assert_eq!(lanes.target(), 8);
        assert!(lanes.in_parts());
        // Settled: later parts change nothing.
        assert_eq!(lanes.finished(PART, start + Duration::from_secs(60)), None);
        assert_eq!(lanes.target(), 8);
    }

    #[test]
    fn a_server_bounded_in_total_goes_back_to_one_stream() {
        // 100 MB/s alone, 110 MB/s however many ask: not worth eight requests.
        let start = Instant::now();
        let mut lanes = Lanes::new(8);
        assert!(lanes.measured(100.0 * MB, 100.0 * MB, 8, 256.0 * MB));
        run(&mut lanes, start, 110.0 * MB);
        assert_eq!(lanes.target(), 1);
        assert!(!lanes.in_parts(), "the rest comes in one long GET");
    }

    #[test]
    fn the_weighing_opens_at_the_first_part_and_spans_as_many_as_streams() {
        let start = Instant::now();
        let mut lanes = Lanes::new(4);
        assert!(lanes.measured(100.0 * MB, 100.0 * MB, 8, 256.0 * MB));
        // The first part took 2 s (its request, the others' start): it opens the window
        // and is not counted.
        assert_eq!(lanes.finished(PART, start + Duration::from_secs(2)), None);
        // The three that ended with it add nothing to the time.
        for _ in 0..3 {
            assert_eq!(lanes.finished(PART, start + Duration::from_secs(2)), None);
        }
        // The fourth since came 200 ms later: 4 x 8 MiB in 0.2 s is 168 MB/s together,
        // more than 1.2 x 100 MB/s.
        let together = lanes.finished(PART, start + Duration::from_millis(2200));
        let expected = 4.0 * PART as f64 / 0.2;
        assert!(
            together.is_some_and(|t| (t - expected).abs() < MB),
            "{together:?}"
        );
        assert_eq!(lanes.target(), 4);
    }

    #[test]
    fn one_lane_at_most_never_probes() {
        let mut lanes = Lanes::new(1);
        assert!(!lanes.probing());
        assert!(!lanes.measured(1.0, 1.0, 8, 256.0 * MB));
        assert_eq!(lanes.target(), 1);
    }

    #[test]
    fn many_readers_slowed_by_each_other_do_not_cut() {
        // Eight readers at once, each at 100 MB/s: the server gives the daemon 800 MB/s.
        let mut lanes = Lanes::new(8);
        assert!(!lanes.measured(100.0 * MB, 800.0 * MB, 2, 256.0 * MB));
        assert!(!lanes.in_parts());
        assert!(!lanes.probing());
        assert_eq!(lanes.target(), 1);
    }

    #[test]
    fn one_reader_slow_alone_cuts_into_as_many_as_the_bound_allows() {
        let mut alone = Lanes::new(8);
        assert!(alone.measured(30.0 * MB, 30.0 * MB, 16, 256.0 * MB));
        assert_eq!(alone.target(), 8);
        // Four slow readers share a bound of 16: four GETs each at most.
        let mut shared = Lanes::new(8);
        assert!(shared.measured(30.0 * MB, 120.0 * MB, 4, 256.0 * MB));
        assert_eq!(shared.target(), 4);
    }

    #[test]
    fn no_room_for_a_second_get_keeps_one() {
        let mut lanes = Lanes::new(8);
        assert!(!lanes.measured(10.0 * MB, 200.0 * MB, 1, 256.0 * MB));
        assert_eq!(lanes.target(), 1);
        assert!(!lanes.in_parts());
    }
}
