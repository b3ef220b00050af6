//! `stanchion export-jetstream`: copies STAN channels into a JetStream
//! stream, for teams moving from STAN to JetStream.
//!
//! The export is an ordinary client of the running streaming server (this
//! one, or the reference server): it lists channels through the monitoring
//! endpoint, reads each through a STAN subscription, and publishes every
//! message to `<prefix>.<channel>` with its sequence and timestamp in
//! headers. It keeps no state of its own: where to resume is read back
//! from the stream, and JetStream's `Nats-Msg-Id` deduplication drops what
//! a crash made it publish twice. With `follow`, it keeps mirroring new
//! messages (and, for a pattern, new channels) until stopped.

mod copy;
pub mod progress;
pub mod source;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

pub use copy::{CHANNEL_HEADER, MSG_ID_HEADER, REPLY_HEADER, SEQUENCE_HEADER, TIMESTAMP_HEADER};
use progress::Meter;
use source::{ChannelRange, Monitor};

use crate::client::{Connection, Options};
use crate::protocol::is_valid_channel;

/// What to export, and where to.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The streaming server's cluster ID.
    pub cluster_id: String,
    /// A channel name, or a pattern with NATS wildcards (`orders.*`, `>`).
    pub channels: String,
    /// The streaming server's monitoring endpoint (`http://host:port`).
    pub monitor: String,
    /// The JetStream stream; created, taking `<prefix>.>`, when missing.
    pub stream: String,
    /// Each channel goes to the subject `<prefix>.<channel>`.
    pub subject_prefix: String,
    /// Keep mirroring new messages until stopped.
    pub follow: bool,
    /// Following a pattern: how often to look for new channels.
    pub poll: Duration,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The options cannot work (a bad pattern or prefix, a stream that does
    /// not take the subjects).
    #[error("{0}")]
    Invalid(String),
    /// The monitoring endpoint could not be read.
    #[error("monitoring endpoint: {0}")]
    Monitor(String),
    /// The STAN side failed (connect, subscribe, a lost subscription).
    #[error("streaming server: {0}")]
    Stan(String),
    /// JetStream refused or failed.
    #[error("JetStream: {0}")]
    JetStream(String),
}

/// One channel's part of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelReport {
    /// The channel.
    pub channel: String,
    /// The subject its messages went to.
    pub subject: String,
    /// The last sequence the stream held before this run.
    pub already: u64,
    /// Messages stored by this run.
    pub exported: u64,
    /// Messages published again that JetStream already held.
    pub duplicates: u64,
    /// Sequences removed by the channel's limits before they were read.
    pub removed: u64,
    /// Payload bytes stored by this run.
    pub bytes: u64,
    /// The last sequence settled by this run (0 if none).
    pub last_seq: u64,
    /// Why the channel's copy stopped early, if it did.
    pub error: Option<String>,
}

/// What an export did, channel by channel.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The stream written to.
    pub stream: String,
    /// Every channel copied, in the order they finished.
    pub channels: Vec<ChannelReport>,
}

impl Summary {
    /// Whether every channel's copy completed.
    pub fn ok(&self) -> bool {
        self.channels.iter().all(|c| c.error.is_none())
    }

    fn sum(&self, f: impl Fn(&ChannelReport) -> u64) -> u64 {
        self.channels.iter().map(f).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "exported to JetStream stream {:?}:", self.stream)?;
        writeln!(f, "  channels:   {}", self.channels.len())?;
        writeln!(f, "  messages:   {}", self.sum(|c| c.exported))?;
        writeln!(f, "  bytes:      {}", self.sum(|c| c.bytes))?;
        writeln!(
            f,
            "  duplicates: {} (already in the stream)",
            self.sum(|c| c.duplicates)
        )?;
        let removed = self.sum(|c| c.removed);
        if removed > 0 {
            writeln!(
                f,
                "  removed:    {removed} (by the channels' limits before they were read)"
            )?;
        }
        for c in &self.channels {
            write!(
                f,
                "  {} -> {}: {} new, through sequence {}",
                c.channel,
                c.subject,
                c.exported,
                c.last_seq.max(c.already)
            )?;
            match &c.error {
                Some(e) => writeln!(f, ", FAILED: {e}")?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

/// Runs an export over `nats` (which reaches both the streaming server and
/// JetStream) until it is complete, or, following, until `stop`.
///
/// # Errors
/// Invalid options, a stream that cannot be created or does not take the
/// subjects, a monitoring endpoint or streaming server that cannot be
/// reached. A channel that fails midway is reported in the summary (and,
/// following, stops the export).
pub async fn run(
    nats: async_nats::Client,
    opts: &ExportOptions,
    meter: Arc<Meter>,
    stop: CancellationToken,
) -> Result<Summary, ExportError> {
    validate(opts)?;
    let js = jetstream::new(nats.clone());
    let stream = ensure_stream(&js, &opts.stream, &opts.subject_prefix).await?;
    let monitor = Monitor::new(&opts.monitor);
    let mut channels = resolve(&monitor, &opts.channels).await?;
    let pattern = source::is_pattern(&opts.channels);
    // Following a pattern, new channels are looked for as they come.
    let watch_new = opts.follow && pattern;
    if channels.is_empty() && !pattern {
        return Err(ExportError::Invalid(format!(
            "channel {:?} not found on the streaming server",
            opts.channels
        )));
    }
    if channels.is_empty() && !watch_new {
        tracing::warn!(pattern = %opts.channels, "no channel matches");
    }
    let client_id = format!("stanchion-export-{}", nuid::next());
    let mut stan_opts = Options::new(opts.cluster_id.clone(), client_id);
    stan_opts.connect_wait = Duration::from_secs(5);
    let stan = Connection::connect(nats, stan_opts).await.map_err(|e| {
        ExportError::Stan(format!("connecting to cluster {:?}: {e}", opts.cluster_id))
    })?;
    let copier = copy::Copier {
        stan: &stan,
        js: &js,
        stream: &stream,
        monitor: &monitor,
        meter: &meter,
        stop: &stop,
        follow: opts.follow,
    };
    let mut summary = Summary {
        stream: opts.stream.clone(),
        channels: Vec::new(),
    };
    let mut started = std::collections::HashSet::new();
    let mut copies = FuturesUnordered::new();
    let copy_of = |name: String, range: ChannelRange| {
        let copier = &copier;
        let subject = format!("{}.{name}", opts.subject_prefix);
        async move {
            let result = copier.channel(&name, &subject, range).await;
            result.unwrap_or_else(|e| ChannelReport {
                channel: name,
                subject,
                error: Some(e.to_string()),
                ..ChannelReport::default()
            })
        }
    };
    for (name, range) in channels.drain(..) {
        started.insert(name.clone());
        copies.push(copy_of(name, range));
    }
    loop {
        if copies.is_empty() && (!watch_new || stop.is_cancelled()) {
            break;
        }
        tokio::select! {
            done = copies.next(), if !copies.is_empty() => {
                let Some(report) = done else { continue };
                if let Some(e) = &report.error {
                    tracing::error!(channel = %report.channel, error = %e, "channel export failed");
                    if opts.follow {
                        stop.cancel();
                    }
                }
                summary.channels.push(report);
            }
            () = tokio::time::sleep(opts.poll), if watch_new && !stop.is_cancelled() => {
                match resolve(&monitor, &opts.channels).await {
                    Ok(found) => {
                        for (name, range) in found {
                            if started.insert(name.clone()) {
                                tracing::info!(channel = %name, "new channel, following it");
                                copies.push(copy_of(name, range));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "listing channels failed; retrying"),
                }
            }
            () = stop.cancelled(), if watch_new && !stop.is_cancelled() => {}
        }
    }
    drop(copies);
    let _ = stan.close().await;
    Ok(summary)
}

/// Checks the pattern and prefix before anything is touched.
fn validate(opts: &ExportOptions) -> Result<(), ExportError> {
    let tokens: Vec<&str> = opts.channels.split('.').collect();
    let valid = tokens.iter().enumerate().all(|(i, t)| match *t {
        "*" => true,
        ">" => i + 1 == tokens.len(),
        literal => is_valid_channel(literal),
    });
    if !valid {
        return Err(ExportError::Invalid(format!(
            "{:?} is not a channel name or pattern (tokens separated by '.', '*' for one \
             token, a final '>' for the rest)",
            opts.channels
        )));
    }
    if !is_valid_channel(&opts.subject_prefix) {
        return Err(ExportError::Invalid(format!(
            "subject prefix {:?} must be a subject without wildcards",
            opts.subject_prefix
        )));
    }
    Ok(())
}

/// The channels matching `pattern`, with their ranges.
async fn resolve(
    monitor: &Monitor,
    pattern: &str,
) -> Result<Vec<(String, ChannelRange)>, ExportError> {
    let monitor = monitor.clone();
    let pattern = pattern.to_string();
    tokio::task::spawn_blocking(move || {
        let names = if source::is_pattern(&pattern) {
            let mut names = monitor.channel_names()?;
            names.retain(|n| source::matches(&pattern, n));
            names.sort();
            names
        } else {
            vec![pattern]
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(range) = monitor.channel(&name)? {
                out.push((name, range));
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| ExportError::Monitor(e.to_string()))?
    .map_err(ExportError::Monitor)
}

/// The stream, created to take `<prefix>.>` when missing.
///
/// # Errors
/// JetStream is not enabled, or an existing stream does not take the subjects.
async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    prefix: &str,
) -> Result<stream::Stream, ExportError> {
    let subjects = format!("{prefix}.>");
    let config = stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.clone()],
        ..Default::default()
    };
    let stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| ExportError::JetStream(format!("creating or opening stream {name:?}: {e}")))?;
    let taken = &stream.cached_info().config.subjects;
    if !taken.iter().any(|s| s == &subjects || s == ">") {
        return Err(ExportError::Invalid(format!(
            "stream {name:?} takes {taken:?}, not {subjects:?}: pick another --stream or \
             --subject_prefix, or add {subjects:?} to the stream"
        )));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(channels: &str, prefix: &str) -> ExportOptions {
        ExportOptions {
            cluster_id: "c".into(),
            channels: channels.into(),
            monitor: "http://127.0.0.1:1".into(),
            stream: "STAN".into(),
            subject_prefix: prefix.into(),
            follow: false,
            poll: Duration::from_secs(1),
        }
    }

    #[test]
    fn patterns_and_prefixes_are_checked_before_anything_runs() {
        for ok in ["orders", "orders.*", "orders.>", ">", "*.eu.*"] {
            assert!(validate(&opts(ok, "stan")).is_ok(), "{ok}");
        }
        for bad in ["", "orders..eu", "orders.>.x", "ord*", "orders.>x", "a/b"] {
            let e = validate(&opts(bad, "stan")).unwrap_err().to_string();
            assert!(e.contains("not a channel name or pattern"), "{bad}: {e}");
        }
        for bad in ["", "stan.*", "stan.>", "a..b"] {
            let e = validate(&opts("orders", bad)).unwrap_err().to_string();
            assert!(e.contains("subject prefix"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_summary_names_every_channel_and_any_failure() {
        let summary = Summary {
            stream: "STAN".into(),
            channels: vec![
                ChannelReport {
                    channel: "a".into(),
                    subject: "stan.a".into(),
                    exported: 3,
                    bytes: 30,
                    last_seq: 3,
                    ..Default::default()
                },
                ChannelReport {
                    channel: "b".into(),
                    subject: "stan.b".into(),
                    already: 7,
                    error: Some("boom".into()),
                    ..Default::default()
                },
            ],
        };
        let text = summary.to_string();
        assert!(text.contains("messages:   3"), "{text}");
        assert!(
            text.contains("a -> stan.a: 3 new, through sequence 3"),
            "{text}"
        );
        assert!(
            text.contains("b -> stan.b: 0 new, through sequence 7, FAILED: boom"),
            "{text}"
        );
        assert!(!summary.ok());
    }
}
