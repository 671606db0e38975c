//! One region's circuit breaker: after a few consecutive failures (a refused
//! connection, a timeout, a server error) the region is left alone for a while, so that a
//! region that is down costs one fast refusal per request instead of one timeout.
//!
//! The states:
//! - **closed**: every request goes through; failures are counted, a success resets them.
//! - **open** until an instant: requests are refused at once. The wait starts at
//!   `first_backoff` and doubles with each failed probe, up to `max_backoff`.
//! - **half-open**: the wait is over and one request (the probe) is let through; its
//!   success closes the breaker, its failure opens it again for twice as long. Other
//!   requests are refused while the probe is out.
//!
//! This is a pure state machine: the caller passes the time, so tests need no clock. It
//! does not decide whether a refusal is allowed (a region must still be tried when the
//! others cannot make a majority); `health` does, since only it sees every region.

use std::time::{Duration, Instant};

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// How long it stays open the first time.
    pub first_backoff: Duration,
    /// The longest it stays open, however often its probes fail.
    pub max_backoff: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failures_to_open: 3,
            first_backoff: Duration::from_secs(1),
            // A region that returns is probed again within 20 s, so the repair that
            // waits for it heals it well within a minute of its return; a region still
            // down costs one probe (one timeout at most) per 20 s.
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { until: Instant },
    HalfOpen,
}

impl BreakerState {
    /// The name the status report uses.
    pub fn name(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// What the breaker says about a request about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it.
    Go,
    /// Send it: it is the probe of a half-open breaker.
    Probe,
    /// Do not send it; the breaker opens up again in `retry_in` (zero: a probe is out).
    Refuse { retry_in: Duration },
}

/// A change of state worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened { backoff: Duration, failures: u32 },
    Closed,
}

/// One region's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: BreakerState,
    consecutive_failures: u32,
    backoff: Duration,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            backoff: policy.first_backoff,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Whether a request sent now would go through without forcing.
    pub fn admits(&self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } => now >= until,
            BreakerState::HalfOpen => false,
        }
    }

    /// Decides about a request about to be sent; a `Probe` must be followed by
    /// `succeeded`, `failed` or `probe_abandoned`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            BreakerState::Closed => Admission::Go,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                Admission::Probe
            }
            BreakerState::Open { until } => Admission::Refuse {
                retry_in: until - now,
            },
            BreakerState::HalfOpen => Admission::Refuse {
                retry_in: Duration::ZERO,
            },
        }
    }

    /// The region answered (an answer such as "not found" counts).
    pub fn succeeded(&mut self) -> Option<Transition> {
        let was_closed = self.state == BreakerState::Closed;
        self.state = BreakerState::Closed;
        self.consecutive_failures = 0;
        self.backoff = self.policy.first_backoff;
        (!was_closed).then_some(Transition::Closed)
    }

    /// The region failed to answer.
    pub fn failed(&mut self, now: Instant) -> Option<Transition> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            BreakerState::Closed if self.consecutive_failures >= self.policy.failures_to_open => {
                self.backoff = self.policy.first_backoff;
                Some(self.open(now))
            }
            BreakerState::Closed => None,
            BreakerState::HalfOpen => {
                self.backoff = (self.backoff * 2).min(self.policy.max_backoff);
                Some(self.open(now))
            }
            // A request sent before it opened, or forced through for a quorum: the
            // wait already running stands.
            BreakerState::Open { .. } => None,
        }
    }

    /// The probe was cancelled before it had an answer: the next request probes again.
    pub fn probe_abandoned(&mut self, now: Instant) {
        if self.state == BreakerState::HalfOpen {
            self.state = BreakerState::Open { until: now };
        }
    }

    fn open(&mut self, now: Instant) -> Transition {
        self.state = BreakerState::Open {
            until: now + self.backoff,
        };
        Transition::Opened {
            backoff: self.backoff,
            failures: self.consecutive_failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn opened_breaker(now: Instant) -> Breaker {
        let mut breaker = Breaker::new(BreakerPolicy::default());
        assert_eq!(breaker.failed(now), None);
        assert_eq!(breaker.failed(now), None);
        assert_eq!(
            breaker.failed(now),
            Some(Transition::Opened {
                backoff: SECOND,
                failures: 3
            })
        );
        breaker
    }

    #[test]
    fn opens_after_three_consecutive_failures_and_refuses_until_the_backoff_passes() {
        let start = Instant::now();
        let mut breaker = opened_breaker(start);
        assert_eq!(
            breaker.admit(start + SECOND / 4),
            Admission::Refuse {
                retry_in: SECOND * 3 / 4
            }
        );
        assert_eq!(breaker.admit(start + SECOND), Admission::Probe);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn a_success_between_failures_keeps_it_closed() {
        let now = Instant::now();
        let mut breaker = Breaker::new(BreakerPolicy::default());
        breaker.failed(now);
        breaker.failed(now);
        assert_eq!(breaker.succeeded(), None);
        breaker.failed(now);
        breaker.failed(now);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.admit(now), Admission::Go);
    }

    #[test]
    fn only_one_probe_is_out_at_a_time() {
        let start = Instant::now();
        let mut breaker = opened_breaker(start);
        assert_eq!(breaker.admit(start + SECOND), Admission::Probe);
        assert_eq!(
            breaker.admit(start + SECOND),
            Admission::Refuse {
                retry_in: Duration::ZERO
            }
        );
    }

    #[test]
    fn failed_probes_double_the_backoff_up_to_the_cap() {
        let mut now = Instant::now();
        let mut breaker = opened_breaker(now);
        let mut seen = Vec::new();
        for _ in 0..10 {
            now += Duration::from_secs(100);
            assert_eq!(breaker.admit(now), Admission::Probe);
            match breaker.failed(now) {
                Some(Transition::Opened { backoff, .. }) => seen.push(backoff.as_secs()),
                other => panic!("a failed probe opens the breaker, got {other:?}"),
            }
        }
        assert_eq!(seen, [2, 4, 8, 16, 20, 20, 20, 20, 20, 20]);
    }

    #[test]
    fn a_successful_probe_closes_it_and_resets_the_backoff() {
        let mut now = Instant::now();
        let mut breaker = opened_breaker(now);
        now += SECOND;
        breaker.admit(now);
        breaker.failed(now);
        now += SECOND * 2;
        assert_eq!(breaker.admit(now), Admission::Probe);
        assert_eq!(breaker.succeeded(), Some(Transition::Closed));
        assert_eq!(breaker.consecutive_failures(), 0);
        for _ in 0..3 {
            breaker.failed(now);
        }
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until: now + SECOND
            }
        );
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_request_probe() {
        let start = Instant::now();
        let mut breaker = opened_breaker(start);
        assert_eq!(breaker.admit(start + SECOND), Admission::Probe);
        breaker.probe_abandoned(start + SECOND);
        assert_eq!(breaker.admit(start + SECOND), Admission::Probe);
    }

    #[test]
    fn failures_while_open_do_not_extend_the_wait() {
        let start = Instant::now();
        let mut breaker = opened_breaker(start);
        assert_eq!(breaker.failed(start + SECOND / 2), None);
        assert_eq!(breaker.admit(start + SECOND), Admission::Probe);
    }
}
