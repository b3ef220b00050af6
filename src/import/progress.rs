//! Progress of a long import: a bar on a terminal, log lines otherwise.

use std::time::{Duration, Instant};

/// Receives an import's progress, measured in bytes of the source's data files.
pub trait Progress {
    /// The import begins: `bytes` of message files over `channels` channels.
    fn start(&mut self, bytes: u64, channels: usize);
    /// `bytes` more of the message files were read and written.
    fn advance(&mut self, bytes: u64);
    /// A channel is complete.
    fn channel_done(&mut self, name: &str, msgs: u64);
    /// The import is complete.
    fn finish(&mut self);
}

impl dyn Progress {
    /// A bar when stderr is a terminal, else a log line per channel and at
    /// most every few seconds.
    pub fn for_stderr() -> Box<dyn Progress> {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Box::new(Bar::default())
        } else {
            Box::new(Lines::default())
        }
    }
}

/// An indicatif bar on stderr.
#[derive(Default)]
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    channels: usize,
    done: usize,
}

impl Progress for Bar {
    fn start(&mut self, bytes: u64, channels: usize) {
        let bar = indicatif::ProgressBar::new(bytes);
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(format!("0/{channels} channels"));
        self.bar = Some(bar);
        self.channels = channels;
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    fn channel_done(&mut self, name: &str, _msgs: u64) {
        self.done += 1;
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "{}/{} channels, last {name}",
                self.done, self.channels
            ));
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Log lines for logs and pipes: a line per channel, and between channels
/// at most one every [`Lines::EVERY`].
#[derive(Default)]
struct Lines {
    total: u64,
    done: u64,
    channels: usize,
    channels_done: usize,
    last_line: Option<Instant>,
}

impl Lines {
    const EVERY: Duration = Duration::from_secs(5);

    fn percent(&self) -> u64 {
        (self.done * 100).checked_div(self.total).unwrap_or(100)
    }
}

impl Progress for Lines {
    fn start(&mut self, bytes: u64, channels: usize) {
        self.total = bytes;
        self.channels = channels;
        self.last_line = Some(Instant::now());
        tracing::info!(channels, bytes, "importing");
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if self.last_line.is_none_or(|t| t.elapsed() >= Self::EVERY) {
            self.last_line = Some(Instant::now());
            tracing::info!(
                percent = self.percent(),
                bytes = self.done,
                of = self.total,
                "import progress"
            );
        }
    }

    fn channel_done(&mut self, name: &str, msgs: u64) {
        self.channels_done += 1;
        tracing::info!(
            channel = name,
            msgs,
            done = self.channels_done,
            of = self.channels,
            percent = self.percent(),
            "channel imported"
        );
    }

    fn finish(&mut self) {}
}

/// Reports nothing (tests, library callers).
pub struct Quiet;

impl Progress for Quiet {
    fn start(&mut self, _bytes: u64, _channels: usize) {}
    fn advance(&mut self, _bytes: u64) {}
    fn channel_done(&mut self, _name: &str, _msgs: u64) {}
    fn finish(&mut self) {}
}
