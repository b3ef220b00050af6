//! Progress of an export: counters every channel's copy adds to, shown as
//! a bar on a terminal and as log lines otherwise.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Counts shared by every channel's copy.
#[derive(Debug, Default)]
pub struct Meter {
    /// Messages the copies set out to export (grows as channels start).
    total: AtomicU64,
    /// Messages stored in the stream by this run.
    exported: AtomicU64,
    /// Messages the stream already held (JetStream reported a duplicate).
    duplicates: AtomicU64,
}

impl Meter {
    /// A channel's copy starts with `msgs` to go.
    pub fn add_total(&self, msgs: u64) {
        self.total.fetch_add(msgs, Relaxed);
    }

    pub(super) fn exported(&self) {
        self.exported.fetch_add(1, Relaxed);
    }

    pub(super) fn duplicate(&self) {
        self.duplicates.fetch_add(1, Relaxed);
    }

    /// Messages done (stored or found stored) and the total known so far.
    pub fn done_of(&self) -> (u64, u64) {
        let done = self.exported.load(Relaxed) + self.duplicates.load(Relaxed);
        (done, self.total.load(Relaxed).max(done))
    }
}

/// Shows `meter` on stderr until `stop`: a bar on a terminal, else a log
/// line every few seconds while it moves.
pub async fn report(meter: Arc<Meter>, follow: bool, stop: CancellationToken) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = tty.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        let template = if follow {
            "{spinner} [{elapsed_precise}] {pos} messages exported, following"
        } else {
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} messages ({eta})"
        };
        let style = indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    });
    let every = if tty {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    };
    let mut shown = (u64::MAX, 0);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        let (done, total) = meter.done_of();
        match &bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
            }
            None if (done, total) != shown => {
                tracing::info!(done, of = total, "export progress");
            }
            None => {}
        }
        shown = (done, total);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
