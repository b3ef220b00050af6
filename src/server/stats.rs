//! The server's counters: relaxed atomics bumped on the hot path and read
//! by monitoring, and lock-free histogram buckets.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of what the server did since it started, as NSS counts them
/// (`in_*` per received publish, `out_*` per delivery, redeliveries too),
/// plus stanchion's own.
#[derive(Debug, Default)]
pub struct Stats {
    /// Publish requests received and decoded.
    pub in_msgs: AtomicU64,
    /// Their payload bytes (the encoded PubMsg, as NSS counts).
    pub in_bytes: AtomicU64,
    /// Messages sent to subscribers, redeliveries included.
    pub out_msgs: AtomicU64,
    /// Their encoded bytes.
    pub out_bytes: AtomicU64,
    /// Messages sent again after their AckWait expired.
    pub redeliveries: AtomicU64,
    /// Heartbeats a client did not answer in time.
    pub hb_failures: AtomicU64,
    /// Clients closed because they stopped answering heartbeats.
    pub hb_closed: AtomicU64,
    /// Internal NATS subscriptions that overflowed and dropped messages.
    pub slow_consumers: AtomicU64,
    /// Times the NATS connection was re-established after a disconnect.
    pub reconnects: AtomicU64,
    /// Histogram of publish batch sizes (messages), see [`BATCH_BUCKETS`].
    pub batch_sizes: Buckets<{ BATCH_BUCKETS.len() }>,
    /// Histogram of store flush latency (seconds), see [`FLUSH_BUCKETS`].
    pub flush_seconds: Buckets<{ FLUSH_BUCKETS.len() }>,
}

/// Upper bounds of the publish batch size histogram.
pub const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0];

/// Upper bounds (seconds) of the flush latency histogram.
pub const FLUSH_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// A histogram of atomic buckets: observing is a few relaxed adds, never a lock.
#[derive(Debug)]
pub struct Buckets<const N: usize> {
    counts: [AtomicU64; N],
    /// Observations above the last bound.
    over: AtomicU64,
    /// Sum of the observed values, in millionths.
    sum_micros: AtomicU64,
}

impl<const N: usize> Default for Buckets<N> {
    fn default() -> Self {
        Buckets {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            over: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Buckets<N> {
    /// Counts `value` in the first bucket whose bound is at least it.
    pub fn observe(&self, bounds: &[f64; N], value: f64) {
        match bounds.iter().position(|b| value <= *b) {
            Some(i) => self.counts[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        // In millionths: exact for counts, sub-microsecond for seconds.
        let micros = (value * 1e6).round();
        if micros.is_finite() && micros >= 0.0 {
            // A float to integer `as` saturates; values here are far below u64::MAX.
            self.sum_micros.fetch_add(micros as u64, Ordering::Relaxed);
        }
    }

    /// Per-bucket counts (not cumulative), the count above the last bound,
    /// and the sum of observed values.
    pub fn read(&self) -> ([u64; N], u64, f64) {
        let counts = std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed));
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (counts, self.over.load(Ordering::Relaxed), sum)
    }
}
