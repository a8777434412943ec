//! How fast the batch asks: how many queries may be in flight ([`Window`]) and how long the
//! first attempt waits ([`RoundTrip`]), both from what the answers and losses so far say.

use std::time::{Duration, Instant};

/// How many queries may be in flight now, as TCP paces its segments: a few at first, one
/// more per answer up to the configured window (slow start), halved when a query goes
/// unanswered, and from then on one more per window's worth of answers. A server whose
/// receive buffer overflows drops queries rather than answering them slowly: BIND on
/// loopback lost ~580 of 90,000 queries at a window of 400 and none at 100.
pub(super) struct Window {
    size: f64,
    most: f64,
    /// Below it the window grows by one per answer, above it by one per window.
    threshold: f64,
    /// When it was last halved: the losses seen within one timeout after that were of
    /// queries sent before it, and do not halve it again.
    cut: Option<Instant>,
}

/// The window a batch starts with (or the configured one, if smaller).
pub(super) const FIRST_WINDOW: usize = 16;

impl Window {
    pub(super) fn new(most: usize) -> Self {
        Window {
            size: most.min(FIRST_WINDOW) as f64,
            most: most as f64,
            threshold: most as f64,
            cut: None,
        }
    }

    pub(super) fn limit(&self) -> usize {
        self.size as usize
    }

    pub(super) fn answered(&mut self) {
        let step = if self.size < self.threshold {
            1.0
        } else {
            1.0 / self.size
        };
        self.size = (self.size + step).min(self.most);
    }

    pub(super) fn lost(&mut self, now: Instant, timeout: Duration) {
        if self.cut.is_some_and(|at| now.duration_since(at) < timeout) {
            return;
        }
        self.threshold = (self.size / 2.0).max(1.0);
        self.size = self.threshold;
        self.cut = Some(now);
    }
}

/// The first attempt's timeout, from the round trips measured so far (RFC 6298's smoothed
/// round-trip time plus four deviations), between [`SHORTEST_TIMEOUT`] and the configured
/// timeout, which it is until the first answer. A lost query on loopback then costs tens of
/// milliseconds instead of the 800 ms meant for a slow path.
#[derive(Default)]
pub(super) struct RoundTrip {
    smoothed: Option<f64>,
    deviation: f64,
}

/// The shortest first-attempt timeout, however fast the answers came: a server busy with
/// other clients may take that long without having dropped anything.
pub(super) const SHORTEST_TIMEOUT: Duration = Duration::from_millis(50);

impl RoundTrip {
    /// One answer to a first attempt (Karn: a retried query's answer could be to either).
    pub(super) fn sample(&mut self, took: Duration) {
        let took = took.as_secs_f64();
        match self.smoothed {
            None => {
                self.smoothed = Some(took);
                self.deviation = took / 2.0;
            }
            Some(smoothed) => {
                self.deviation = 0.75 * self.deviation + 0.25 * (smoothed - took).abs();
                self.smoothed = Some(0.875 * smoothed + 0.125 * took);
            }
        }
    }

    pub(super) fn timeout(&self, configured: Duration) -> Duration {
        match self.smoothed {
            None => configured,
            Some(smoothed) => Duration::from_secs_f64(smoothed + 4.0 * self.deviation)
                .clamp(SHORTEST_TIMEOUT.min(configured), configured),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_starts_small_grows_per_answer_and_halves_once_per_loss() {
        let mut window = Window::new(100);
        assert_eq!(window.limit(), FIRST_WINDOW);
        for _ in 0..200 {
            window.answered();
        }
        assert_eq!(
            window.limit(),
            100,
            "slow start stops at the configured window"
        );
        let now = Instant::now();
        let timeout = Duration::from_millis(50);
        window.lost(now, timeout);
        assert_eq!(window.limit(), 50);
        // Losses within one timeout of a cut are of queries sent before it.
        window.lost(now + Duration::from_millis(10), timeout);
        assert_eq!(window.limit(), 50);
        window.lost(now + Duration::from_millis(60), timeout);
        assert_eq!(window.limit(), 25);
        // Above the threshold it grows by one per window's worth of answers.
        for _ in 0..27 {
            window.answered();
        }
        assert_eq!(window.limit(), 25 + 1);
        let mut small = Window::new(3);
        assert_eq!(small.limit(), 3);
        small.lost(now, timeout);
        small.lost(now + timeout, timeout);
        assert_eq!(small.limit(), 1, "never below one");
    }

    #[test]
    fn the_timeout_follows_the_measured_round_trips_within_bounds() {
        let configured = Duration::from_millis(800);
        let mut round_trip = RoundTrip::default();
        assert_eq!(
            round_trip.timeout(configured),
            configured,
            "before any answer"
        );
        for _ in 0..20 {
            round_trip.sample(Duration::from_micros(300));
        }
        assert_eq!(round_trip.timeout(configured), SHORTEST_TIMEOUT);
        for _ in 0..20 {
            round_trip.sample(Duration::from_millis(100));
        }
        let slow = round_trip.timeout(configured);
        assert!(
            slow > Duration::from_millis(100) && slow < configured,
            "{slow:?}"
        );
        for _ in 0..20 {
            round_trip.sample(Duration::from_secs(2));
        }
        assert_eq!(
            round_trip.timeout(configured),
            configured,
            "never above --timeout"
        );
        let short = Duration::from_millis(20);
        assert_eq!(round_trip.timeout(short), short, "nor above a shorter one");
    }
}
