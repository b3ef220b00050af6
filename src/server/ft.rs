//! Fault-tolerance groups: several servers share one store directory and
//! one of them, the holder of the store's lock file, serves; the others
//! stand by, as NSS's FT mode does.
//!
//! The lock is what makes a server active. The heartbeat the active one
//! publishes on `_STAN.ft.<cluster_id>.<group>` only tells the standbys
//! when trying the lock is worth it: while heartbeats arrive they wait;
//! when they stop, they try. The lock file and the heartbeat are NSS's
//! (`.rootdir.lck`, a `CtrlMsg` carrying the activation time), so a group
//! keeps its meaning for operators who ran NSS in FT mode.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use super::ctrl::{CtrlMsg, FT_HEARTBEAT};
use super::view::{Phase, ServerState, ServerView};
use super::ServerError;

/// How often the active server says it is alive.
const HB_INTERVAL: Duration = Duration::from_secs(1);

/// How long a standby waits for a heartbeat before trying the lock.
const HB_MISSED_INTERVAL: Duration = Duration::from_millis(1250);

/// The lock file in the store directory, named as NSS names it.
pub const LOCK_FILE: &str = ".rootdir.lck";

/// Seconds from Go's zero time (January 1, year 1) to the Unix epoch.
const GO_EPOCH_OFFSET: i64 = 62_135_596_800;

/// An exclusive lock on a store directory, held until dropped.
///
/// An open-file-description lock (`F_OFD_SETLK`) on the whole lock file:
/// it conflicts with the POSIX record lock NSS takes on the same file, and
/// unlike that lock it is not shared by the threads of one process, so a
/// second lock in the same process is refused too.
#[derive(Debug)]
pub struct StoreLock {
    /// Closing the file releases the lock.
    _file: File,
}

impl StoreLock {
    /// Takes the lock of `dir` (created if missing) without waiting.
    ///
    /// # Errors
    /// When the directory or lock file cannot be created or the lock call
    /// fails for another reason than being held elsewhere. `Ok(None)` when
    /// another process (or open file) holds it.
    pub fn try_acquire(dir: &Path) -> std::io::Result<Option<StoreLock>> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        // SAFETY: flock is plain data; all-zero is a valid value of it.
        let mut spec: libc::flock = unsafe { std::mem::zeroed() };
        spec.l_type = libc::F_WRLCK as libc::c_short;
        spec.l_whence = libc::SEEK_SET as libc::c_short;
        // l_start = l_len = 0: the whole file; l_pid must be 0 for OFD locks.
        // SAFETY: a valid descriptor and a pointer to an initialised flock.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &spec) };
        if rc == 0 {
            return Ok(Some(StoreLock { _file: file }));
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            // The errors NSS takes for "held elsewhere, try later".
            Some(libc::EAGAIN | libc::EACCES | libc::EINTR | libc::ENOLCK) => Ok(None),
            _ => Err(err),
        }
    }
}

/// The FT subject of a group.
pub fn subject(cluster_id: &str, group: &str) -> String {
    format!("_STAN.ft.{cluster_id}.{group}")
}

/// An interval within ±10 % of `base`, so that standbys do not all try the
/// lock at the same instant.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::random_range(0.9..1.1))
}

/// Go's `Time.MarshalBinary` of `t` in UTC (version 1, offset -1).
fn go_time_binary(t: SystemTime) -> Vec<u8> {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX - GO_EPOCH_OFFSET);
    let mut out = Vec::with_capacity(15);
    out.push(1);
    out.extend_from_slice(&(secs + GO_EPOCH_OFFSET).to_be_bytes());
    out.extend_from_slice(&(since.subsec_nanos() as i32).to_be_bytes());
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// The instant (seconds since Go's zero time, nanoseconds) of a Go binary
/// time, version 1 or 2; `None` when it is not one.
fn parse_go_time(data: &[u8]) -> Option<(i64, i32)> {
    let len_ok = match data.first()? {
        1 => data.len() == 15,
        2 => data.len() == 16,
        _ => false,
    };
    if !len_ok {
        return None;
    }
    let secs = i64::from_be_bytes(data[1..9].try_into().ok()?);
    let nanos = i32::from_be_bytes(data[9..13].try_into().ok()?);
    Some((secs, nanos))
}

/// Logs at most at growing intervals (1 s, doubling up to a minute), so a
/// repeating condition does not fill the log.
struct LogBackoff {
    next: Instant,
    step: Duration,
}

impl LogBackoff {
    fn new() -> LogBackoff {
        LogBackoff {
            next: Instant::now(),
            step: Duration::from_secs(1),
        }
    }

    fn ok(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        self.next = now + self.step;
        self.step = (self.step * 2).min(Duration::from_secs(60));
        true
    }
}

/// An active member of an FT group: holds the store lock and publishes
/// heartbeats until [`Active::step_down`].
pub struct Active {
    lock: StoreLock,
    stop: CancellationToken,
    heartbeats: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl Active {
    /// Stops the heartbeats; the lock is released when the returned value
    /// is dropped, after the caller has flushed the store.
    ///
    /// # Errors
    /// When another server claimed to have been active first (the server
    /// was stopped because of it).
    pub async fn step_down(self) -> Result<StoreLock, ServerError> {
        self.stop.cancel();
        match self.heartbeats.await {
            Ok(r) => r.map(|()| self.lock),
            Err(e) => Err(ServerError::Internal(format!("ft heartbeat task: {e}"))),
        }
    }
}

/// Stands by until this server holds the store lock of `dir`, then becomes
/// active: marks the view, and starts the heartbeats. `Ok(None)` when
/// `signal` fired first.
///
/// A heartbeat from another server claiming an earlier activation stops
/// this one (through `signal`), with the error returned by
/// [`Active::step_down`]: two servers writing one store would damage it.
///
/// # Errors
/// When the FT subject cannot be subscribed to.
pub async fn stand_by(
    nats: &async_nats::Client,
    cluster_id: &str,
    group: &str,
    dir: PathBuf,
    view: &ServerView,
    signal: &CancellationToken,
) -> Result<Option<Active>, ServerError> {
    let subject = subject(cluster_id, group);
    let mut heartbeats = nats
        .subscribe(subject.clone())
        .await
        .map_err(|e| ServerError::Nats(format!("ft: unable to subscribe on ft subject: {e}")))?;
    tracing::info!(group, subject = %subject, "Starting in standby mode");
    let missed = jittered(HB_MISSED_INTERVAL);
    let mut quiet = LogBackoff::new();
    let lock = loop {
        tokio::select! {
            () = signal.cancelled() => return Ok(None),
            hb = heartbeats.next() => match hb {
                Some(_) => continue,
                None => return Err(ServerError::Nats("ft: the ft subscription was closed".into())),
            },
            () = tokio::time::sleep(missed) => {}
        }
        let at = dir.clone();
        match tokio::task::spawn_blocking(move || StoreLock::try_acquire(&at)).await {
            Ok(Ok(Some(lock))) => break lock,
            Ok(Ok(None)) => {
                if quiet.ok() {
                    tracing::info!(
                        "ft: unable to get store lock at this time, going back to standby"
                    );
                }
            }
            Ok(Err(e)) => tracing::error!(
                lock_file = %dir.join(LOCK_FILE).display(),
                error = %e,
                "ft: error attempting to get the store lock"
            ),
            Err(e) => tracing::error!(error = %e, "ft: the store lock attempt failed"),
        }
    };
    view.set_state(ServerState::FtActive);
    tracing::info!("Server is active");
    let stop = CancellationToken::new();
    let beat = Heartbeat {
        nats: nats.clone(),
        subject,
        server_id: view.server_id().to_string(),
        activated: SystemTime::now(),
    };
    let task = {
        let (stop, signal, view) = (stop.clone(), signal.clone(), view.clone());
        tokio::spawn(async move {
            let r = beat.run(heartbeats, stop).await;
            if r.is_err() {
                view.set_phase(Phase::ShuttingDown);
                signal.cancel();
            }
            r
        })
    };
    Ok(Some(Active {
        lock,
        stop,
        heartbeats: task,
    }))
}

/// The active server's heartbeat.
struct Heartbeat {
    nats: async_nats::Client,
    subject: String,
    server_id: String,
    activated: SystemTime,
}

impl Heartbeat {
    /// Publishes every interval until `stop`; watches the other members'
    /// heartbeats for a server that claims to be active too.
    async fn run(
        self,
        mut heartbeats: async_nats::Subscriber,
        stop: CancellationToken,
    ) -> Result<(), ServerError> {
        let ours = CtrlMsg {
            msg_type: FT_HEARTBEAT,
            server_id: self.server_id.clone(),
            data: go_time_binary(self.activated),
        };
        let ours_at = parse_go_time(&ours.data);
        let payload = bytes::Bytes::from(ours.encode_to_vec());
        let interval = jittered(HB_INTERVAL);
        let mut quiet = LogBackoff::new();
        loop {
            if let Err(e) = self
                .nats
                .publish(self.subject.clone(), payload.clone())
                .await
            {
                if quiet.ok() {
                    tracing::error!(error = %e, "Unable to send FT heartbeat");
                }
            }
            let next = tokio::time::sleep(interval);
            tokio::pin!(next);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = &mut next => break,
                    m = heartbeats.next() => {
                        let Some(m) = m else { return Ok(()) };
                        check_peer(&self.server_id, ours_at, &m.payload)?;
                    }
                }
            }
        }
    }
}

/// Another member's heartbeat, seen by the active server `our_id` activated
/// at `ours_at`: an error when that member was active first.
fn check_peer(
    our_id: &str,
    ours_at: Option<(i64, i32)>,
    payload: &[u8],
) -> Result<(), ServerError> {
    let Ok(hb) = CtrlMsg::decode(payload) else {
        return Ok(());
    };
    if hb.msg_type != FT_HEARTBEAT || hb.server_id == our_id {
        return Ok(());
    }
    let claim = format!("ft: serverID {:?} claims to be active", hb.server_id);
    match parse_go_time(&hb.data) {
        None => tracing::error!(server_id = %hb.server_id, "ft: error decoding activation time"),
        Some(theirs) if ours_at.is_some_and(|ours| theirs < ours) => {
            tracing::error!("{claim}, aborting");
            return Err(ServerError::FtConflict(format!("{claim}, aborting")));
        }
        Some(_) => tracing::error!("{claim}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = StoreLock::try_acquire(dir.path()).unwrap();
        assert!(first.is_some(), "a free directory is locked");
        assert!(
            StoreLock::try_acquire(dir.path()).unwrap().is_none(),
            "a second lock on the same directory is refused"
        );
        drop(first);
        assert!(
            StoreLock::try_acquire(dir.path()).unwrap().is_some(),
            "the lock is free again once released"
        );
        assert!(dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn a_missing_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        assert!(StoreLock::try_acquire(&nested).unwrap().is_some());
    }

    #[test]
    fn activation_times_round_trip_as_go_encodes_them() {
        // Go: time.Unix(1700000000, 5).UTC().MarshalBinary()
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let b = go_time_binary(t);
        assert_eq!(
            b,
            [1, 0, 0, 0, 14, 220, 229, 232, 0, 0, 0, 0, 5, 255, 255],
            "version 1, seconds since year 1, nanoseconds, UTC"
        );
        assert_eq!(
            parse_go_time(&b),
            Some((1_700_000_000 + GO_EPOCH_OFFSET, 5))
        );
        let mut v2 = b.clone();
        v2[0] = 2;
        v2.push(30);
        assert_eq!(parse_go_time(&v2), parse_go_time(&b));
        assert_eq!(parse_go_time(&b[..10]), None);
        assert_eq!(parse_go_time(&[]), None);
    }

    fn heartbeat(id: &str, at: SystemTime) -> Vec<u8> {
        CtrlMsg {
            msg_type: FT_HEARTBEAT,
            server_id: id.into(),
            data: go_time_binary(at),
        }
        .encode_to_vec()
    }

    #[test]
    fn a_member_active_first_stops_us_and_a_later_one_does_not() {
        let ours = UNIX_EPOCH + Duration::from_secs(1000);
        let ours_at = parse_go_time(&go_time_binary(ours));
        let earlier = heartbeat("B", ours - Duration::from_millis(1));
        let err = check_peer("A", ours_at, &earlier).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ft: serverID \"B\" claims to be active, aborting"
        );
        let later = heartbeat("B", ours + Duration::from_secs(1));
        assert!(check_peer("A", ours_at, &later).is_ok());
        assert!(
            check_peer("A", ours_at, &heartbeat("A", UNIX_EPOCH)).is_ok(),
            "our own"
        );
        assert!(check_peer("A", ours_at, b"\xff\xff garbage").is_ok());
        let other_kind = CtrlMsg {
            msg_type: 4,
            server_id: "B".into(),
            data: Vec::new(),
        };
        assert!(check_peer("A", ours_at, &other_kind.encode_to_vec()).is_ok());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(HB_INTERVAL);
            assert!(d >= Duration::from_millis(900) && d <= Duration::from_millis(1100));
        }
    }
}
