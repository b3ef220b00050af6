//! Prometheus `/metrics`: the `nss_*` families that prometheus-nats-exporter
//! (`-serverz -channelz`) made from NSS's `/streaming/serverz` and
//! `/streaming/channelsz?subs=1`, so that dashboards built on the exporter
//! keep working without it, plus stanchion's own `stanchion_*` families.
//!
//! Owns only the rendering: it reads the server through the same
//! [`ServerView`] as [`super::nss`] (atomic [`Stats`] and channel
//! snapshots) and builds a fresh [`Registry`] per scrape, so channels and
//! subscriptions that went away simply stop being reported.
//!
//! # From the exporter (`collector/streaming.go`, namespace `nss`)
//!
//! | metric | type | labels | value |
//! |---|---|---|---|
//! | `nss_server_bytes_total` | counter | `server_id` | serverz `total_bytes` (bytes stored) |
//! | `nss_server_bytes_in` | counter | `server_id` | serverz `in_bytes` |
//! | `nss_server_bytes_out` | counter | `server_id` | serverz `out_bytes` |
//! | `nss_server_msgs_total` | counter | `server_id` | serverz `total_msgs` (messages stored) |
//! | `nss_server_msgs_in` | counter | `server_id` | serverz `in_msgs` |
//! | `nss_server_msgs_out` | counter | `server_id` | serverz `out_msgs` |
//! | `nss_server_channels` | counter | `server_id` | serverz `channels` |
//! | `nss_server_subscriptions` | counter | `server_id` | serverz `subscriptions` |
//! | `nss_server_clients` | counter | `server_id` | serverz `clients` |
//! | `nss_server_active` | gauge | `server_id` | 1 if serverz `state` is `FT_ACTIVE`, else 0 |
//! | `nss_server_info` | gauge | `server_id`, `cluster_id`, `version`, `go_version`, `state`, `role`, `start_time` | 1 |
//! | `nss_chan_bytes_total` | gauge | `server_id`, `server_role`, `channel` | channelz `bytes` |
//! | `nss_chan_msgs_total` | gauge | `server_id`, `server_role`, `channel` | channelz `msgs` |
//! | `nss_chan_last_seq` | gauge | `server_id`, `server_role`, `channel` | channelz `last_seq` |
//! | `nss_chan_subs_last_sent` | gauge | subscription labels | subscriptionz `last_sent` |
//! | `nss_chan_subs_pending_count` | gauge | subscription labels | subscriptionz `pending_count` |
//! | `nss_chan_subs_max_inflight` | gauge | subscription labels | subscriptionz `max_inflight` |
//!
//! The subscription labels are, in order, `server_id`, `server_role`,
//! `channel`, `client_id`, `inbox`, `queue_name`, `is_durable`,
//! `is_offline`, `durable_name` (booleans as `true`/`false`). As the
//! exporter does, a durable queue subscription's `durable:group` queue name
//! is split: `durable_name` gets the part before the first `:`, `queue_name`
//! the part after it (up to a second `:`, if any, as Go's `Split(..)[1]`).
//!
//! The types are the exporter's, even where odd (`nss_server_clients` is a
//! counter), and so are the help texts. Values are taken exactly as
//! `/streaming/serverz` and `/streaming/channelsz` compute them:
//! `nss_server_active` is 1 only for an FT group's active server, and
//! `role` / `server_role` are empty outside clustering, as the exporter
//! found them (serverz omits `role` then).
//! `go_version` is serverz's `go` field (`rust`), `start_time` its
//! `start_time` string.
//!
//! # stanchion's own
//!
//! | metric | type | value |
//! |---|---|---|
//! | `stanchion_up` | gauge | 1 (the process answers) |
//! | `stanchion_ready` | gauge | 1 when `/readyz` would say ready, else 0 |
//! | `stanchion_redeliveries_total` | counter | messages sent again after their AckWait |
//! | `stanchion_heartbeat_failures_total` | counter | client heartbeats not answered in time |
//! | `stanchion_clients_closed_by_heartbeat_total` | counter | clients closed for missing heartbeats |
//! | `stanchion_slow_consumer_events_total` | counter | internal NATS subscriptions that dropped messages |
//! | `stanchion_nats_reconnects_total` | counter | NATS connection re-established |
//! | `stanchion_publish_batch_size` | histogram | messages per store write |
//! | `stanchion_store_flush_seconds` | histogram | store flush (fsync) latency |
//! | `stanchion_chan_subs_stalled` | gauge, subscription labels | 1 when pending reached MaxInFlight |
//! | `stanchion_raft_term` | gauge | clustered: current Raft term |
//! | `stanchion_raft_last_log_index` | gauge | clustered: last entry in the node's log (-1: none) |
//! | `stanchion_raft_commit_index` | gauge | clustered: highest index known committed |
//! | `stanchion_raft_applied_index` | gauge | clustered: last entry applied to the store |
//! | `stanchion_raft_leader_changes_total` | counter | clustered: new leaders seen |
//! | `stanchion_raft_replication_lag_entries` | gauge, `peer` | clustered, on the leader: entries each other node is behind |
//! | `stanchion_raft_held_sub_changes` | gauge | clustered, on the leader: sent/acked positions not yet replicated (they go out every second) |
//!
//! None has labels but the stalled and lag gauges. The histograms are read from the
//! lock-free [`Buckets`] the server observes into; their `_count` is also
//! the number of batches / flushes.
//!
//! # Deviations from the exporter, and why
//!
//! - `server_id` is the server's own ID (serverz `server_id`, a NUID new at
//!   every start). The exporter put there the ID it was configured with
//!   (`id,url` argument, default the polled URL's `scheme://host:port`),
//!   which the server cannot know; Prometheus' `instance` label still
//!   tells the scrape target.
//! - While the server is starting or stopping (no channel or client
//!   snapshot), the scrape still succeeds: the exporter dropped all of
//!   serverz then (serverz answers 503), stanchion keeps what needs no
//!   snapshot (`nss_server_{msgs,bytes}_{in,out}`, `nss_server_active`,
//!   `nss_server_info` and every `stanchion_*` family but the stalled
//!   gauge) and leaves out the rest.
//! - Two subscriptions with the same label values (not expected: inboxes
//!   are unique) would make the exporter's scrape fail; here the later one
//!   wins.
//! - `stanchion_chan_subs_stalled` is new: the exporter ignored
//!   subscriptionz `is_stalled`.
//! - Values print as Rust does (`1234567`, not Go's `1.234567e+06`); both
//!   parse to the same number.

mod raft;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::server::view::{
    Buckets, ChannelSnapshot, ServerState, ServerView, Stats, SubSnapshot, BATCH_BUCKETS,
    FLUSH_BUCKETS,
};

/// Labels of the exporter's per-channel families.
const CHANNEL_LABELS: [&str; 3] = ["server_id", "server_role", "channel"];

/// Labels of the exporter's per-subscription families, in its order.
const SUB_LABELS: [&str; 9] = [
    "server_id",
    "server_role",
    "channel",
    "client_id",
    "inbox",
    "queue_name",
    "is_durable",
    "is_offline",
    "durable_name",
];

/// Prometheus text format of the server's metrics.
pub(super) async fn metrics(State(view): State<ServerView>) -> Response {
    // Absent while the server is not serving: counters only then.
    let snapshot = view.snapshot(false, |_| true).await.ok().map(|s| Snapshot {
        clients: s.client_count,
        channels: s.channels,
    });
    match render(&view, snapshot.as_ref()) {
        Ok(body) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(e) => super::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("can't encode the metrics: {e}\n"),
        ),
    }
}

/// What needs the server to answer: absent while starting or stopping.
struct Snapshot {
    /// Registered clients.
    clients: usize,
    /// Every channel, with its subscriptions.
    channels: Vec<ChannelSnapshot>,
}

/// Every family, encoded.
fn render(view: &ServerView, snapshot: Option<&Snapshot>) -> prometheus::Result<String> {
    let reg = Families(Registry::new());
    server_families(&reg, view, snapshot)?;
    if let Some(snapshot) = snapshot {
        channel_families(
            &reg,
            view.server_id(),
            view.role().name(),
            &snapshot.channels,
        )?;
    }
    stanchion_families(&reg, view)?;
    let mut families = reg.0.gather();
    let stats = view.stats();
    families.push(histogram(
        "stanchion_publish_batch_size",
        "Messages per publish batch (one store write each)",
        &BATCH_BUCKETS,
        &stats.batch_sizes,
    ));
    families.push(histogram(
        "stanchion_store_flush_seconds",
        "Store flush (fsync) latency in seconds",
        &FLUSH_BUCKETS,
        &stats.flush_seconds,
    ));
    families.sort_by(|a, b| a.name().cmp(b.name()));
    prometheus::TextEncoder::new().encode_to_string(&families)
}

/// The exporter's serverz families.
fn server_families(
    reg: &Families,
    view: &ServerView,
    snapshot: Option<&Snapshot>,
) -> prometheus::Result<()> {
    let id = [view.server_id()];
    let stats = view.stats();
    let counter = |name: &str, help: &str, value: u64| -> prometheus::Result<()> {
        reg.counter_vec(name, help, &["server_id"])?
            .get_metric_with_label_values(&id)?
            .inc_by(value);
        Ok(())
    };
    counter(
        "nss_server_bytes_in",
        "Incoming bytes",
        load(&stats.in_bytes),
    )?;
    counter(
        "nss_server_bytes_out",
        "Outgoing bytes",
        load(&stats.out_bytes),
    )?;
    counter(
        "nss_server_msgs_in",
        "Incoming messages",
        load(&stats.in_msgs),
    )?;
    counter(
        "nss_server_msgs_out",
        "Outgoing messages",
        load(&stats.out_msgs),
    )?;
    if let Some(s) = snapshot {
        // As `/streaming/serverz` counts them.
        let stored_bytes = s.channels.iter().map(|c| c.bytes).sum();
        let stored_msgs = s.channels.iter().map(|c| c.msgs).sum();
        let subs: usize = s.channels.iter().map(|c| c.subs.len()).sum();
        counter("nss_server_bytes_total", "Total of bytes", stored_bytes)?;
        counter("nss_server_msgs_total", "Total of messages", stored_msgs)?;
        counter(
            "nss_server_channels",
            "Total channels",
            count(s.channels.len()),
        )?;
        counter(
            "nss_server_subscriptions",
            "Total subscriptions",
            count(subs),
        )?;
        counter("nss_server_clients", "Total clients", count(s.clients))?;
    }
    reg.gauge_vec("nss_server_active", "Active server", &["server_id"])?
        .get_metric_with_label_values(&id)?
        .set(i64::from(view.state() == ServerState::FtActive));
    let info_labels = [
        "server_id",
        "cluster_id",
        "version",
        "go_version",
        "state",
        "role",
        "start_time",
    ];
    let start_time = super::nss::go_time(view.started());
    let info_values = [
        view.server_id(),
        view.cluster_id(),
        env!("CARGO_PKG_VERSION"),
        "rust",
        view.state().name(),
        view.role().name(),
        start_time.as_str(),
    ];
    reg.gauge_vec("nss_server_info", "Info", &info_labels)?
        .get_metric_with_label_values(&info_values)?
        .set(1);
    Ok(())
}

/// The exporter's channelsz families, one series per channel and per
/// subscription.
fn channel_families(
    reg: &Families,
    server_id: &str,
    role: &str,
    channels: &[ChannelSnapshot],
) -> prometheus::Result<()> {
    let bytes = reg.gauge_vec("nss_chan_bytes_total", "Total of bytes", &CHANNEL_LABELS)?;
    let msgs = reg.gauge_vec("nss_chan_msgs_total", "Total of messages", &CHANNEL_LABELS)?;
    let last_seq = reg.gauge_vec("nss_chan_last_seq", "Last seq", &CHANNEL_LABELS)?;
    let last_sent = reg.gauge_vec("nss_chan_subs_last_sent", "Last message sent", &SUB_LABELS)?;
    let pending = reg.gauge_vec(
        "nss_chan_subs_pending_count",
        "Pending message count",
        &SUB_LABELS,
    )?;
    let max_inflight = reg.gauge_vec(
        "nss_chan_subs_max_inflight",
        "Max in flight message count",
        &SUB_LABELS,
    )?;
    let stalled = reg.gauge_vec(
        "stanchion_chan_subs_stalled",
        "1 when the subscription's pending messages reached its MaxInFlight",
        &SUB_LABELS,
    )?;
    for c in channels {
        let labels = [server_id, role, c.name.as_str()];
        bytes
            .get_metric_with_label_values(&labels)?
            .set(gauge(c.bytes));
        msgs.get_metric_with_label_values(&labels)?
            .set(gauge(c.msgs));
        last_seq
            .get_metric_with_label_values(&labels)?
            .set(gauge(c.last_seq));
        for s in &c.subs {
            let (durable_name, queue_name) = durable_and_queue(s);
            let labels = [
                server_id,
                role,
                c.name.as_str(),
                s.client_id.as_str(),
                s.inbox.as_str(),
                queue_name,
                bool_label(s.is_durable),
                bool_label(s.is_offline),
                durable_name,
            ];
            last_sent
                .get_metric_with_label_values(&labels)?
                .set(gauge(s.last_sent));
            pending
                .get_metric_with_label_values(&labels)?
                .set(gauge(count(s.pending_count)));
            max_inflight
                .get_metric_with_label_values(&labels)?
                .set(i64::from(s.max_inflight));
            stalled
                .get_metric_with_label_values(&labels)?
                .set(i64::from(s.is_stalled));
        }
    }
    Ok(())
}

/// stanchion's counters and gauges (the histograms are built by [`histogram`]).
fn stanchion_families(reg: &Families, view: &ServerView) -> prometheus::Result<()> {
    let stats: &Stats = view.stats();
    reg.gauge("stanchion_up", "1: the server process answers", 1)?;
    reg.gauge(
        "stanchion_ready",
        "1 when the store is open, NATS is connected and no shutdown has begun",
        i64::from(view.is_ready()),
    )?;
    reg.counter(
        "stanchion_redeliveries_total",
        "Messages sent again after their AckWait expired",
        load(&stats.redeliveries),
    )?;
    reg.counter(
        "stanchion_heartbeat_failures_total",
        "Client heartbeats not answered in time",
        load(&stats.hb_failures),
    )?;
    reg.counter(
        "stanchion_clients_closed_by_heartbeat_total",
        "Clients closed because they stopped answering heartbeats",
        load(&stats.hb_closed),
    )?;
    reg.counter(
        "stanchion_slow_consumer_events_total",
        "Internal NATS subscriptions that overflowed and dropped messages",
        load(&stats.slow_consumers),
    )?;
    reg.counter(
        "stanchion_nats_reconnects_total",
        "Times the NATS connection was re-established after a disconnect",
        load(&stats.reconnects),
    )?;
    if let Some(raft) = view.raft_status() {
        raft::families(reg, &raft.sample())?;
    }
    Ok(())
}

/// A per-scrape registry and the few ways we add to it.
struct Families(Registry);

impl Families {
    /// Registers a counter family with `labels`.
    fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        let vec = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.0.register(Box::new(vec.clone()))?;
        Ok(vec)
    }

    /// Registers a gauge family with `labels`.
    fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntGaugeVec> {
        let vec = IntGaugeVec::new(Opts::new(name, help), labels)?;
        self.0.register(Box::new(vec.clone()))?;
        Ok(vec)
    }

    /// Registers an unlabelled counter at `value`.
    fn counter(&self, name: &str, help: &str, value: u64) -> prometheus::Result<()> {
        let counter = IntCounter::new(name, help)?;
        counter.inc_by(value);
        self.0.register(Box::new(counter))
    }

    /// Registers an unlabelled gauge at `value`.
    fn gauge(&self, name: &str, help: &str, value: i64) -> prometheus::Result<()> {
        let gauge = IntGauge::new(name, help)?;
        gauge.set(value);
        self.0.register(Box::new(gauge))
    }
}

/// A histogram family from atomic buckets: Prometheus buckets are
/// cumulative, ours are not; `+Inf` (the count) adds the overflow.
fn histogram<const N: usize>(
    name: &str,
    help: &str,
    bounds: &[f64; N],
    buckets: &Buckets<N>,
) -> MetricFamily {
    let (counts, over, sum) = buckets.read();
    let mut cumulative = 0u64;
    let buckets = bounds
        .iter()
        .zip(counts)
        .map(|(bound, n)| {
            cumulative = cumulative.saturating_add(n);
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(*bound);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut h = proto::Histogram::default();
    h.set_bucket(buckets);
    h.set_sample_count(cumulative.saturating_add(over));
    h.set_sample_sum(sum);
    let mut metric = proto::Metric::default();
    metric.set_histogram(h);
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(MetricType::HISTOGRAM);
    family.set_metric(vec![metric]);
    family
}

/// The exporter's `durable_name` and `queue_name` of a subscription: a
/// durable queue subscription's `durable:group` is split in two.
fn durable_and_queue(s: &SubSnapshot) -> (&str, &str) {
    if s.is_durable && !s.queue_name.is_empty() {
        let mut parts = s.queue_name.split(':');
        if let (Some(durable), Some(queue)) = (parts.next(), parts.next()) {
            return (durable, queue);
        }
    }
    (s.durable_name.as_str(), s.queue_name.as_str())
}

/// Go's `strconv.FormatBool`.
fn bool_label(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// A counter's current value.
fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A length as a counter value.
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A size or sequence as an integer gauge value (saturating, never wrapping).
fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(durable: &str, queue: &str, is_durable: bool) -> SubSnapshot {
        SubSnapshot {
            client_id: "c".into(),
            inbox: "i".into(),
            ack_inbox: "a".into(),
            durable_name: durable.into(),
            queue_name: queue.into(),
            is_durable,
            is_offline: false,
            max_inflight: 1,
            ack_wait: 30,
            last_sent: 0,
            pending_count: 0,
            is_stalled: false,
        }
    }

    #[test]
    fn durable_queue_names_split_as_the_exporter_does() {
        assert_eq!(durable_and_queue(&sub("dq", "dq:grp", true)), ("dq", "grp"));
        assert_eq!(durable_and_queue(&sub("", "grp", false)), ("", "grp"));
        assert_eq!(durable_and_queue(&sub("d", "", true)), ("d", ""));
        // Go's Split(..)[1]: the piece between the first two colons.
        assert_eq!(durable_and_queue(&sub("d", "d:g:x", true)), ("d", "g"));
        // Go would panic on a durable queue name without a colon; keep it whole.
        assert_eq!(durable_and_queue(&sub("d", "g", true)), ("d", "g"));
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let bounds = [1.0, 2.0, 4.0];
        let buckets = Buckets::<3>::default();
        for v in [1.0, 1.0, 3.0, 9.0] {
            buckets.observe(&bounds, v);
        }
        let family = histogram("h", "help", &bounds, &buckets);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&[family])
            .unwrap_or_default();
        for line in [
            "# TYPE h histogram",
            "h_bucket{le=\"1\"} 2",
            "h_bucket{le=\"2\"} 2",
            "h_bucket{le=\"4\"} 3",
            "h_bucket{le=\"+Inf\"} 4",
            "h_sum 14",
            "h_count 4",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn registry_helpers_encode_the_exporters_types() {
        let reg = Families(Registry::new());
        let run = || -> prometheus::Result<String> {
            reg.counter_vec("nss_server_clients", "Total clients", &["server_id"])?
                .get_metric_with_label_values(&["S"])?
                .inc_by(3);
            reg.gauge("stanchion_up", "up", 1)?;
            prometheus::TextEncoder::new().encode_to_string(&reg.0.gather())
        };
        let text = run().unwrap_or_else(|e| e.to_string());
        assert!(
            text.contains("# HELP nss_server_clients Total clients\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE nss_server_clients counter\n"),
            "{text}"
        );
        assert!(
            text.contains("nss_server_clients{server_id=\"S\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("stanchion_up 1\n"), "{text}");
    }
}
