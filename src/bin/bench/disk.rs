//! Disk-space scenario: the store directory's size over time while
//! retention limits (`max_msgs`, `max_age`) remove messages.
//!
//! One publisher writes `--count` messages to one channel, at `--rate`
//! msgs/s or as fast as PubAcks allow, while a sampler thread adds up the
//! sizes of every file under `--dir` (the server's store directory),
//! separately for the segment files (`msgs/`) and for sled's files (the
//! rest). Sampling goes on for `--tail-secs` after the last PubAck, so that
//! expiry shows. The samples go to a CSV file and a PNG plot; the run fails
//! (exit 1) if the directory exceeded `--max-dir-mb` (or sled's files
//! `--max-sled-mb`) at any sample after the warm-up, or if the segment
//! files still exceed `--max-final-segments-mb` at the last sample.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use stanchion::client::Connection;

mod output;

/// Bytes in a MiB, the unit of every figure here (segments are 64 MiB).
const MIB: f64 = (1u64 << 20) as f64;

/// Flags of this scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The nats-server and cluster ID of the server under test.
    #[command(flatten)]
    target: crate::Target,
    /// Messages to publish (all on one channel).
    #[arg(long, short = 'n', default_value_t = 2_000_000)]
    count: u64,
    /// Publish rate in msgs/s; 0 = as fast as PubAcks allow.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Unacknowledged publishes at most.
    #[arg(long, default_value_t = 16_384)]
    max_inflight: usize,
    /// Channel to publish on (a unique suffix is added).
    #[arg(long, default_value = "disk")]
    channel: String,
    /// The server's store directory, whose size is sampled.
    #[arg(long)]
    dir: PathBuf,
    /// Milliseconds between two samples.
    #[arg(long, default_value_t = 250)]
    sample_ms: u64,
    /// Seconds to keep sampling after the last PubAck.
    #[arg(long, default_value_t = 10.0)]
    tail_secs: f64,
    /// Fraction of the messages published before the bounds apply.
    #[arg(long, default_value_t = 0.2)]
    warmup: f64,
    /// Write the samples to this CSV file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Plot the samples into this PNG file.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Fail if the store directory exceeds this many MiB (2^20 bytes)
    /// after the warm-up.
    #[arg(long)]
    max_dir_mb: Option<f64>,
    /// Fail if sled's files (everything but `msgs/`) exceed this many MiB
    /// after the warm-up.
    #[arg(long)]
    max_sled_mb: Option<f64>,
    /// Fail if the segment files at the last sample (the end of the tail)
    /// exceed this many MiB: 0 when every message has expired by then.
    #[arg(long)]
    max_final_segments_mb: Option<f64>,
    /// Title of the plot.
    #[arg(long, default_value = "stanchion store directory size")]
    title: String,
}

/// Sizes of the store directory at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    /// Sum of the file sizes (apparent, as `ls` shows them).
    total: u64,
    /// The part under `msgs/` (segment files).
    segments: u64,
    /// The rest: sled's files.
    sled: u64,
    /// Space allocated on disk (`du`), all files.
    allocated: u64,
    /// Number of segment files.
    segment_files: u64,
}

/// One sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Seconds since the first publish.
    t: f64,
    /// Whether the publisher was still running.
    publishing: bool,
    /// Messages acknowledged so far.
    acked: u64,
    usage: Usage,
}

/// Adds the sizes of every file under `path` to `usage`; files and
/// directories that vanish meanwhile (deleted segments) are skipped. The
/// top level's `msgs/` holds the segment files, everything else is sled's.
fn walk(path: &Path, top: bool, in_segments: bool, usage: &mut Usage) -> std::io::Result<()> {
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let meta = match entry.path().symlink_metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            let seg = in_segments || (top && entry.file_name() == "msgs");
            walk(&entry.path(), false, seg, usage)?;
        } else if meta.is_file() {
            usage.total += meta.len();
            usage.allocated += meta.blocks() * 512;
            if in_segments {
                usage.segments += meta.len();
                if entry.path().extension().is_some_and(|e| e == "seg") {
                    usage.segment_files += 1;
                }
            } else {
                usage.sled += meta.len();
            }
        }
    }
    Ok(())
}

/// The sizes of the store directory `dir`.
fn dir_usage(dir: &Path) -> std::io::Result<Usage> {
    let mut usage = Usage::default();
    walk(dir, true, false, &mut usage)?;
    Ok(usage)
}

/// Runs the scenario.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&args.warmup) {
        bail!("--warmup must be in [0, 1), got {}", args.warmup);
    }
    if !args.dir.is_dir() {
        bail!("--dir {} is not a directory", args.dir.display());
    }
    let before = dir_usage(&args.dir)?;
    println!(
        "store directory {}: {:.1} MiB before the run",
        args.dir.display(),
        before.total as f64 / MIB
    );

    let id = format!("bench-disk-{}", nuid::next());
    let wait = Duration::from_secs(10);
    let conn = crate::stan_connect(
        &args.target.url,
        &args.target.cluster_id,
        id,
        args.max_inflight,
        wait,
    )
    .await?;
    let channel = format!("{}.{}", args.channel, nuid::next());

    let acked = Arc::new(AtomicU64::new(0));
    let publishing = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let sampler = {
        let (dir, acked, publishing, stop) = (
            args.dir.clone(),
            acked.clone(),
            publishing.clone(),
            stop.clone(),
        );
        let every = Duration::from_millis(args.sample_ms.max(1));
        std::thread::spawn(move || -> std::io::Result<Vec<Sample>> {
            let mut samples = Vec::new();
            let mut next = start;
            loop {
                // Read the flags first: a sample marked "publishing" was
                // taken while the publisher still ran.
                let publishing = publishing.load(Ordering::Acquire);
                let acked = acked.load(Ordering::Acquire);
                let t = start.elapsed().as_secs_f64();
                let usage = dir_usage(&dir)?;
                samples.push(Sample {
                    t,
                    publishing,
                    acked,
                    usage,
                });
                if stop.load(Ordering::Acquire) {
                    return Ok(samples);
                }
                next += every;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };

    let published = publish(&args, &conn, &channel, &acked, start).await;
    let pub_elapsed = start.elapsed().as_secs_f64();
    publishing.store(false, Ordering::Release);
    let _ = conn.close().await;
    if published.is_ok() {
        tokio::time::sleep(Duration::from_secs_f64(args.tail_secs.max(0.0))).await;
    }
    stop.store(true, Ordering::Release);
    let samples = tokio::task::spawn_blocking(move || sampler.join())
        .await?
        .map_err(|_| anyhow::anyhow!("sampler thread panicked"))?
        .context("sampling the store directory")?;
    published?;

    let n = acked.load(Ordering::Acquire);
    let payload_mib = n as f64 * args.size as f64 / MIB;
    println!(
        "published {n} msgs of {} B ({payload_mib:.1} MiB of payload) in {pub_elapsed:.1} s: {:.0} msgs/s",
        args.size,
        n as f64 / pub_elapsed
    );

    let report = Report::new(&args, &samples, pub_elapsed);
    report.print(&args);
    if let Some(path) = &args.csv {
        output::write_csv(path, &args, &samples)?;
        println!("samples written to {}", path.display());
    }
    if let Some(path) = &args.png {
        output::plot(path, &args, &samples, &report)?;
        println!("plot written to {}", path.display());
    }
    report.check(&args)
}

/// Publishes `--count` messages, pacing them to `--rate`, and counts the
/// PubAcks in `acked`.
async fn publish(
    args: &Args,
    conn: &Connection,
    channel: &str,
    acked: &Arc<AtomicU64>,
    start: Instant,
) -> anyhow::Result<()> {
    let payload = Bytes::from(vec![b'x'; args.size]);
    // PubAcks are awaited in publish order by a task of their own, so the
    // count stays current whatever the pacing; the client's in-flight limit
    // bounds this queue.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<stanchion::client::PubAckFuture>();
    let reaper = {
        let acked = acked.clone();
        tokio::spawn(async move {
            while let Some(ack) = rx.recv().await {
                let (guid, result) = ack.await;
                result.with_context(|| format!("publish {guid}"))?;
                acked.fetch_add(1, Ordering::Release);
            }
            anyhow::Ok(())
        })
    };
    let mut sent = Ok(());
    for i in 0..args.count {
        if args.rate > 0.0 {
            let due = start + Duration::from_secs_f64(i as f64 / args.rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        match conn.publish_async(channel, payload.clone()).await {
            Ok(ack) => {
                if tx.send(ack).is_err() {
                    break; // the reaper stopped on an error: it reports it
                }
            }
            Err(e) => {
                sent = Err(anyhow::Error::from(e).context("publish"));
                break;
            }
        }
    }
    drop(tx);
    reaper.await??;
    sent
}

/// Figures drawn from the samples.
struct Report {
    /// Time at which the warm-up ended (the first sample past it).
    warmup_t: f64,
    /// Time of the last PubAck.
    pub_end_t: f64,
    /// Samples after the warm-up (publishing and tail).
    checked: Vec<Sample>,
    /// Largest sample after the warm-up.
    peak: Usage,
    /// Time of the largest total after the warm-up.
    peak_t: f64,
    /// Largest total over the whole run.
    peak_all: u64,
    /// Largest total in the first and the second half of the publishing
    /// time after the warm-up: equal-ish when the size levels off.
    halves: (u64, u64),
    /// sled's files at the end of the warm-up and at the end of publishing.
    sled_span: (u64, u64),
    /// The last sample.
    last: Sample,
}

impl Report {
    fn new(args: &Args, samples: &[Sample], pub_end_t: f64) -> Report {
        let threshold = (args.warmup * args.count as f64).ceil() as u64;
        let warm = samples
            .iter()
            .position(|s| s.acked >= threshold.max(1) || !s.publishing)
            .unwrap_or(samples.len().saturating_sub(1));
        let checked: Vec<Sample> = samples[warm..].to_vec();
        let warmup_t = checked.first().map_or(0.0, |s| s.t);
        let mut peak = Usage::default();
        let mut peak_t = 0.0;
        for s in &checked {
            if s.usage.total > peak.total {
                peak.total = s.usage.total;
                peak_t = s.t;
            }
            peak.segments = peak.segments.max(s.usage.segments);
            peak.sled = peak.sled.max(s.usage.sled);
            peak.allocated = peak.allocated.max(s.usage.allocated);
            peak.segment_files = peak.segment_files.max(s.usage.segment_files);
        }
        let mid = (warmup_t + pub_end_t) / 2.0;
        let half_max = |keep: &dyn Fn(f64) -> bool| {
            checked
                .iter()
                .filter(|s| s.publishing && keep(s.t))
                .map(|s| s.usage.total)
                .max()
                .unwrap_or(0)
        };
        let halves = (half_max(&|t| t < mid), half_max(&|t| t >= mid));
        let sled_at_pub_end = samples
            .iter()
            .rev()
            .find(|s| s.publishing)
            .map_or(0, |s| s.usage.sled);
        Report {
            warmup_t,
            pub_end_t,
            peak,
            peak_t,
            peak_all: samples.iter().map(|s| s.usage.total).max().unwrap_or(0),
            halves,
            sled_span: (checked.first().map_or(0, |s| s.usage.sled), sled_at_pub_end),
            last: *samples.last().expect("at least one sample"),
            checked,
        }
    }

    fn print(&self, args: &Args) {
        let m = |b: u64| b as f64 / MIB;
        println!(
            "{} samples after the warm-up ({:.0} % of the messages), which ended at {:.1} s; last PubAck at {:.1} s",
            self.checked.len(),
            args.warmup * 100.0,
            self.warmup_t,
            self.pub_end_t
        );
        println!(
            "after the warm-up: peak {:.1} MiB at {:.1} s (segments peak {:.1} MiB in up to {} files, sled peak {:.1} MiB, allocated peak {:.1} MiB); peak over the whole run {:.1} MiB",
            m(self.peak.total),
            self.peak_t,
            m(self.peak.segments),
            self.peak.segment_files,
            m(self.peak.sled),
            m(self.peak.allocated),
            m(self.peak_all)
        );
        println!(
            "levels off: peak {:.1} MiB in the first half of the publishing after the warm-up, {:.1} MiB in the second; sled {:.1} MiB at the end of the warm-up, {:.1} MiB at the end of publishing",
            m(self.halves.0),
            m(self.halves.1),
            m(self.sled_span.0),
            m(self.sled_span.1)
        );
        println!(
            "last sample ({:.1} s after the last PubAck): {:.1} MiB ({:.1} MiB segments in {} files, {:.1} MiB sled)",
            self.last.t - self.pub_end_t,
            m(self.last.usage.total),
            m(self.last.usage.segments),
            self.last.usage.segment_files,
            m(self.last.usage.sled)
        );
    }

    /// Fails if a bound was exceeded after the warm-up.
    fn check(&self, args: &Args) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        let mut bound = |name: &str, limit: Option<f64>, get: fn(&Usage) -> u64| {
            let Some(limit) = limit else { return };
            if let Some(s) = self
                .checked
                .iter()
                .find(|s| get(&s.usage) as f64 > limit * MIB)
            {
                let worst = self
                    .checked
                    .iter()
                    .map(|s| get(&s.usage))
                    .max()
                    .unwrap_or(0);
                failures.push(format!(
                    "{name} exceeded {limit} MiB after the warm-up: {:.1} MiB at {:.1} s (peak {:.1} MiB)",
                    get(&s.usage) as f64 / MIB,
                    s.t,
                    worst as f64 / MIB
                ));
            } else {
                println!("bound held: {name} <= {limit} MiB at every sample after the warm-up");
            }
        };
        bound("store directory", args.max_dir_mb, |u| u.total);
        bound("sled's files", args.max_sled_mb, |u| u.sled);
        if let Some(limit) = args.max_final_segments_mb {
            let left = self.last.usage.segments as f64 / MIB;
            if left > limit {
                failures.push(format!(
                    "segment files still held {left:.1} MiB in {} files at the last sample, {:.1} s after the last PubAck (bound {limit} MiB)",
                    self.last.usage.segment_files,
                    self.last.t - self.pub_end_t
                ));
            } else {
                println!("bound held: segment files <= {limit} MiB at the last sample");
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("FAILED: {}", failures.join("; "))
        }
    }
}
