//! Prometheus `/metrics` against a known workload on a real nats-server and
//! stanchion: the exporter-compatible `nss_*` families (names, types, help,
//! labels, values), cross-checked with `/streaming/serverz` and
//! `/streaming/channelsz?subs=1` of the same run, and stanchion's own
//! counters and histograms.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::Value;
use stanchion::client::{StartAt, Subscription, SubscriptionOptions};

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: samples, and `# TYPE` / `# HELP` by family.
#[derive(Debug, Default)]
struct Exposition {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
}

impl Exposition {
    /// Parses the text format (0.0.4), panicking on a line it cannot read.
    fn parse(text: &str) -> Exposition {
        let mut out = Exposition::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                out.types.insert(name.into(), kind.into());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP line");
                out.helps.insert(name.into(), help.into());
            } else if line.starts_with('#') {
                continue;
            } else {
                out.samples.push(parse_sample(line));
            }
        }
        out
    }

    /// Every sample of `name`.
    fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The one sample of `name` whose labels include `labels`.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> &Sample {
        let found: Vec<&Sample> = self
            .all(name)
            .into_iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{name} with {labels:?}: {found:?} among {:?}",
            self.all(name)
        );
        found[0]
    }

    /// The value of the one sample of `name` with `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).value
    }
}

/// `name{k="v",...} value` (no timestamps: stanchion writes none).
fn parse_sample(line: &str) -> Sample {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => panic!("bad sample line {line:?}"),
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest;
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut end = None;
        loop {
            // A label name up to '=', or the closing brace.
            let mut key = String::new();
            let mut closed = false;
            for (i, c) in chars.by_ref() {
                match c {
                    '}' => {
                        end = Some(i);
                        closed = true;
                        break;
                    }
                    '=' => break,
                    ',' => {}
                    c => key.push(c),
                }
            }
            if closed {
                break;
            }
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "in {line:?}");
            let mut value = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => panic!("dangling escape in {line:?}"),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
        }
        let end = end.unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
        rest = &body[end + 1..];
    }
    let value = rest.trim();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|e| panic!("bad value {v:?} in {line:?}: {e}")),
    };
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

/// GET off the runtime thread, so the clients' tasks keep running.
async fn get(port: u16, path: &str) -> http::Response {
    let path = path.to_string();
    tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || http::get(port, &path)),
    )
    .await
    .expect("monitor answers in time")
    .expect("GET task")
}

async fn json(port: u16, path: &str) -> Value {
    let r = get(port, path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

/// Polls `/streaming/channelsz?subs=1` until `ok` holds, or panics after [`WAIT`].
async fn wait_channelsz(port: u16, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = json(port, "/streaming/channelsz?subs=1").await;
        if ok(&c) {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "channelsz never showed {what}: {c:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The subscriptions of `channel` in a channelsz answer.
fn subs_of<'a>(channelsz: &'a Value, channel: &str) -> Vec<&'a Value> {
    channelsz["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == channel)
        .flat_map(|c| c["subscriptions"].as_array().into_iter().flatten())
        .collect()
}

/// A subscription's labels as the exporter derives them from subscriptionz.
fn exporter_sub_labels(server_id: &str, channel: &str, s: &Value) -> BTreeMap<String, String> {
    let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
    let is_durable = s["is_durable"].as_bool().expect("is_durable");
    let (mut durable, mut queue) = (text("durable_name"), text("queue_name"));
    if is_durable && !queue.is_empty() {
        let parts: Vec<String> = queue.split(':').map(str::to_string).collect();
        durable = parts[0].clone();
        queue = parts[1].clone();
    }
    [
        ("server_id", server_id.to_string()),
        ("server_role", String::new()),
        ("channel", channel.to_string()),
        ("client_id", text("client_id")),
        ("inbox", text("inbox")),
        ("queue_name", queue),
        ("is_durable", is_durable.to_string()),
        (
            "is_offline",
            s["is_offline"].as_bool().expect("is_offline").to_string(),
        ),
        ("durable_name", durable),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Receives every message `sub` gets until it is quiet for `window`, acking
/// each; returns how many were redeliveries.
async fn drain_redeliveries(sub: &mut Subscription, window: Duration) -> u64 {
    let mut redelivered = 0;
    while let Ok(Some(m)) = tokio::time::timeout(window, sub.next()).await {
        if m.redelivered() {
            redelivered += 1;
        }
        m.ack().await.expect("ack");
    }
    redelivered
}

#[tokio::test]
async fn metrics_match_the_exporter_and_the_workload() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = Stanchion::start(&nats, dir.path(), &["-m", &port.to_string()]).await;
    http::wait_for_status(port, "/readyz", 200, WAIT).await;

    // The workload: three channels with known payloads.
    let producer = stan(&nats, "producer").await;
    let consumer = stan(&nats, "consumer").await;
    publish_n(&producer, "metrics.a", "a", 5).await; // "a-1".."a-5"
    publish_n(&producer, "metrics.b", "bb", 3).await; // "bb-1".."bb-3"
    publish_n(&producer, "metrics.c", "c", 1).await;

    // Manual acks, MaxInFlight 2, never acked: stalls with 2 pending.
    let mut stalled = consumer
        .subscribe(
            "metrics.a",
            SubscriptionOptions {
                max_in_flight: 2,
                manual_acks: true,
                ack_wait: Duration::from_secs(60),
                start: StartAt::First,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next_seqs(&mut stalled, 2).await, vec![1, 2]);

    // A durable queue group (queue name "dq:grp"), everything acked.
    let mut durable_queue = consumer
        .subscribe(
            "metrics.a",
            SubscriptionOptions {
                queue_group: Some("grp".into()),
                durable_name: Some("dq".into()),
                ..first()
            },
        )
        .await
        .unwrap();
    assert_eq!(next_seqs(&mut durable_queue, 5).await, vec![1, 2, 3, 4, 5]);

    // A plain queue group, everything acked.
    let mut queue = consumer
        .subscribe(
            "metrics.b",
            SubscriptionOptions {
                queue_group: Some("workers".into()),
                ..first()
            },
        )
        .await
        .unwrap();
    assert_eq!(next_seqs(&mut queue, 3).await, vec![1, 2, 3]);

    // A durable that reads everything, then goes offline.
    let mut durable = consumer
        .subscribe(
            "metrics.b",
            SubscriptionOptions {
                durable_name: Some("dur".into()),
                ..first()
            },
        )
        .await
        .unwrap();
    assert_eq!(next_seqs(&mut durable, 3).await, vec![1, 2, 3]);
    wait_channelsz(port, "the durable's acks", |c| {
        subs_of(c, "metrics.b")
            .iter()
            .any(|s| s["durable_name"] == "dur" && s["pending_count"] == 0)
    })
    .await;
    durable.close().await.unwrap();

    // AckWait 1 s, not acked: redelivered once, then acked.
    let mut redelivery = consumer
        .subscribe(
            "metrics.c",
            SubscriptionOptions {
                manual_acks: true,
                ack_wait: Duration::from_secs(1),
                ..first()
            },
        )
        .await
        .unwrap();
    let m = next_msg(&mut redelivery).await;
    assert!(!m.redelivered());
    let again = next_msg(&mut redelivery).await;
    assert!(again.redelivered(), "the same message again after AckWait");
    assert_eq!(again.sequence(), 1);
    again.ack().await.unwrap();
    // A redelivery racing the ack is counted by the server: count it here too.
    let redeliveries = 1 + drain_redeliveries(&mut redelivery, Duration::from_millis(1500)).await;

    // Settled: only the stalled subscription has pending messages.
    let channelsz = wait_channelsz(port, "settled pending counts", |c| {
        let pending: Vec<(String, u64)> = c["channels"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|ch| ch["subscriptions"].as_array().into_iter().flatten())
            .map(|s| {
                (
                    s["inbox"].as_str().unwrap_or("").to_string(),
                    s["pending_count"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .filter(|(_, n)| *n != 0)
            .collect();
        pending == vec![(stalled.inbox().to_string(), 2)]
    })
    .await;
    let response = get(port, "/metrics").await;
    let serverz = json(port, "/streaming/serverz").await;
    let channelsz_after = json(port, "/streaming/channelsz?subs=1").await;
    assert_eq!(
        channelsz["channels"], channelsz_after["channels"],
        "quiet while scraping"
    );

    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    let m = Exposition::parse(&response.body);

    // Every family the exporter emits, with its type and help text.
    let families = [
        ("nss_server_bytes_total", "counter", "Total of bytes"),
        ("nss_server_bytes_in", "counter", "Incoming bytes"),
        ("nss_server_bytes_out", "counter", "Outgoing bytes"),
        ("nss_server_msgs_total", "counter", "Total of messages"),
        ("nss_server_msgs_in", "counter", "Incoming messages"),
        ("nss_server_msgs_out", "counter", "Outgoing messages"),
        ("nss_server_channels", "counter", "Total channels"),
        ("nss_server_subscriptions", "counter", "Total subscriptions"),
        ("nss_server_clients", "counter", "Total clients"),
        ("nss_server_active", "gauge", "Active server"),
        ("nss_server_info", "gauge", "Info"),
        ("nss_chan_bytes_total", "gauge", "Total of bytes"),
        ("nss_chan_msgs_total", "gauge", "Total of messages"),
        ("nss_chan_last_seq", "gauge", "Last seq"),
        ("nss_chan_subs_last_sent", "gauge", "Last message sent"),
        (
            "nss_chan_subs_pending_count",
            "gauge",
            "Pending message count",
        ),
        (
            "nss_chan_subs_max_inflight",
            "gauge",
            "Max in flight message count",
        ),
    ];
    for (name, kind, help) in families {
        assert_eq!(m.types.get(name).map(String::as_str), Some(kind), "{name}");
        assert_eq!(m.helps.get(name).map(String::as_str), Some(help), "{name}");
        assert!(!m.all(name).is_empty(), "{name} has samples");
    }

    // Server families: one series each, labelled with serverz's server_id.
    let server_id = serverz["server_id"].as_str().expect("server_id");
    let id = [("server_id", server_id)];
    for (metric, field) in [
        ("nss_server_bytes_total", "total_bytes"),
        ("nss_server_bytes_in", "in_bytes"),
        ("nss_server_bytes_out", "out_bytes"),
        ("nss_server_msgs_total", "total_msgs"),
        ("nss_server_msgs_in", "in_msgs"),
        ("nss_server_msgs_out", "out_msgs"),
        ("nss_server_channels", "channels"),
        ("nss_server_subscriptions", "subscriptions"),
        ("nss_server_clients", "clients"),
    ] {
        let sample = m.find(metric, &id);
        assert_eq!(sample.labels.len(), 1, "{metric}: {:?}", sample.labels);
        assert_eq!(
            sample.value,
            number(&serverz[field]),
            "{metric} vs serverz {field}"
        );
    }
    assert_eq!(m.value("nss_server_msgs_in", &id), 9.0);
    assert_eq!(m.value("nss_server_msgs_total", &id), 9.0);
    assert_eq!(m.value("nss_server_channels", &id), 3.0);
    assert_eq!(m.value("nss_server_subscriptions", &id), 5.0);
    assert_eq!(m.value("nss_server_clients", &id), 2.0);
    // 14 first deliveries (2 + 5 + 3 + 3 + 1), plus the redeliveries.
    assert_eq!(
        m.value("nss_server_msgs_out", &id),
        14.0 + f64::from(u32::try_from(redeliveries).unwrap())
    );
    assert_eq!(
        m.value("nss_server_active", &id),
        0.0,
        "STANDALONE is not FT_ACTIVE"
    );
    let info = m.find("nss_server_info", &id);
    assert_eq!(info.value, 1.0);
    let expected_info: BTreeMap<String, String> = [
        ("server_id", server_id),
        ("cluster_id", "test-cluster"),
        ("version", serverz["version"].as_str().unwrap()),
        ("go_version", serverz["go"].as_str().unwrap()),
        ("state", serverz["state"].as_str().unwrap()),
        ("role", ""),
        ("start_time", serverz["start_time"].as_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(info.labels, expected_info);

    // Channel families: exact values, and equal to channelsz.
    assert_eq!(m.all("nss_chan_msgs_total").len(), 3);
    for (channel, msgs, payload) in [
        ("metrics.a", 5.0, 3),
        ("metrics.b", 3.0, 4),
        ("metrics.c", 1.0, 3),
    ] {
        let labels = [
            ("server_id", server_id),
            ("server_role", ""),
            ("channel", channel),
        ];
        let sample = m.find("nss_chan_msgs_total", &labels);
        let names: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["channel", "server_id", "server_role"]);
        assert_eq!(sample.value, msgs, "{channel} msgs");
        assert_eq!(
            m.value("nss_chan_last_seq", &labels),
            msgs,
            "{channel} last_seq"
        );
        let json = channelsz["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == channel)
            .unwrap();
        let bytes = m.value("nss_chan_bytes_total", &labels);
        assert_eq!(
            bytes,
            number(&json["bytes"]),
            "{channel} bytes vs channelsz"
        );
        assert!(
            bytes >= msgs * f64::from(payload),
            "{channel}: {bytes} bytes"
        );
        assert_eq!(number(&json["msgs"]), msgs);
        assert_eq!(number(&json["last_seq"]), msgs);
    }

    // Subscription families: the exporter's labels from channelsz, its values.
    assert_eq!(m.all("nss_chan_subs_last_sent").len(), 5);
    assert_eq!(m.all("nss_chan_subs_pending_count").len(), 5);
    assert_eq!(m.all("nss_chan_subs_max_inflight").len(), 5);
    for channel in ["metrics.a", "metrics.b", "metrics.c"] {
        for s in subs_of(&channelsz, channel) {
            let expected = exporter_sub_labels(server_id, channel, s);
            for (metric, field) in [
                ("nss_chan_subs_last_sent", "last_sent"),
                ("nss_chan_subs_pending_count", "pending_count"),
                ("nss_chan_subs_max_inflight", "max_inflight"),
            ] {
                let found: Vec<&Sample> = m
                    .all(metric)
                    .into_iter()
                    .filter(|x| x.labels == expected)
                    .collect();
                assert_eq!(found.len(), 1, "{metric} {expected:?}: {:?}", m.all(metric));
                assert_eq!(found[0].value, number(&s[field]), "{metric} {expected:?}");
            }
            let stalled_value = m
                .all("stanchion_chan_subs_stalled")
                .into_iter()
                .find(|x| x.labels == expected)
                .map(|x| x.value);
            let is_stalled = s["is_stalled"].as_bool().unwrap();
            assert_eq!(stalled_value, Some(if is_stalled { 1.0 } else { 0.0 }));
        }
    }

    // ...and the values the workload set, independently of channelsz.
    let sub = |labels: &[(&str, &str)]| -> [f64; 4] {
        [
            m.value("nss_chan_subs_last_sent", labels),
            m.value("nss_chan_subs_pending_count", labels),
            m.value("nss_chan_subs_max_inflight", labels),
            m.value("stanchion_chan_subs_stalled", labels),
        ]
    };
    let base = |channel: &'static str| {
        [
            ("server_id", server_id),
            ("server_role", ""),
            ("channel", channel),
        ]
    };
    let stalled_labels = [
        base("metrics.a").as_slice(),
        &[
            ("client_id", "consumer"),
            ("inbox", stalled.inbox()),
            ("queue_name", ""),
            ("durable_name", ""),
            ("is_durable", "false"),
            ("is_offline", "false"),
        ],
    ]
    .concat();
    assert_eq!(
        sub(&stalled_labels),
        [2.0, 2.0, 2.0, 1.0],
        "stalled subscription"
    );
    let durable_queue_labels = [
        base("metrics.a").as_slice(),
        &[
            ("inbox", durable_queue.inbox()),
            ("queue_name", "grp"),
            ("durable_name", "dq"),
            ("is_durable", "true"),
            ("is_offline", "false"),
        ],
    ]
    .concat();
    assert_eq!(
        sub(&durable_queue_labels),
        [5.0, 0.0, 1024.0, 0.0],
        "durable queue"
    );
    let queue_labels = [
        base("metrics.b").as_slice(),
        &[
            ("inbox", queue.inbox()),
            ("queue_name", "workers"),
            ("durable_name", ""),
            ("is_durable", "false"),
        ],
    ]
    .concat();
    assert_eq!(sub(&queue_labels), [3.0, 0.0, 1024.0, 0.0], "queue group");
    let offline_labels = [
        base("metrics.b").as_slice(),
        &[
            ("durable_name", "dur"),
            ("queue_name", ""),
            ("is_durable", "true"),
            ("is_offline", "true"),
        ],
    ]
    .concat();
    assert_eq!(
        sub(&offline_labels),
        [3.0, 0.0, 1024.0, 0.0],
        "offline durable"
    );
    let offline = m.find("nss_chan_subs_last_sent", &offline_labels);
    let names: Vec<&str> = offline.labels.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "channel",
            "client_id",
            "durable_name",
            "inbox",
            "is_durable",
            "is_offline",
            "queue_name",
            "server_id",
            "server_role"
        ]
    );
    let redelivery_labels = [
        base("metrics.c").as_slice(),
        &[("inbox", redelivery.inbox()), ("is_offline", "false")],
    ]
    .concat();
    assert_eq!(
        sub(&redelivery_labels),
        [1.0, 0.0, 1024.0, 0.0],
        "redelivery sub"
    );

    // stanchion's counters and gauges.
    for (name, kind) in [
        ("stanchion_up", "gauge"),
        ("stanchion_ready", "gauge"),
        ("stanchion_redeliveries_total", "counter"),
        ("stanchion_heartbeat_failures_total", "counter"),
        ("stanchion_clients_closed_by_heartbeat_total", "counter"),
        ("stanchion_slow_consumer_events_total", "counter"),
        ("stanchion_nats_reconnects_total", "counter"),
        ("stanchion_chan_subs_stalled", "gauge"),
        ("stanchion_publish_batch_size", "histogram"),
        ("stanchion_store_flush_seconds", "histogram"),
    ] {
        assert_eq!(m.types.get(name).map(String::as_str), Some(kind), "{name}");
        assert!(m.helps.contains_key(name), "{name} has help");
    }
    assert_eq!(m.value("stanchion_up", &[]), 1.0);
    assert_eq!(m.value("stanchion_ready", &[]), 1.0);
    assert_eq!(
        m.value("stanchion_redeliveries_total", &[]),
        f64::from(u32::try_from(redeliveries).unwrap())
    );
    assert_eq!(
        m.value("stanchion_clients_closed_by_heartbeat_total", &[]),
        0.0
    );
    assert_eq!(m.value("stanchion_nats_reconnects_total", &[]), 0.0);
    for name in [
        "stanchion_up",
        "stanchion_ready",
        "stanchion_redeliveries_total",
        "stanchion_heartbeat_failures_total",
        "stanchion_clients_closed_by_heartbeat_total",
        "stanchion_slow_consumer_events_total",
        "stanchion_nats_reconnects_total",
    ] {
        assert!(m.find(name, &[]).labels.is_empty(), "{name} has no labels");
    }

    // Histograms. publish_n waits for each PubAck, so every batch held
    // exactly one message: 9 batches, all in the first bucket.
    let batch = histogram(&m, "stanchion_publish_batch_size");
    assert_eq!(batch.count, 9.0, "one batch per awaited publish");
    assert_eq!(batch.sum, 9.0, "the sum is the messages published");
    assert_eq!(batch.buckets.first(), Some(&("1".to_string(), 9.0)));
    let flush = histogram(&m, "stanchion_store_flush_seconds");
    assert!(flush.count >= 1.0, "fsync on: at least one flush");
    assert!(flush.sum > 0.0 && flush.sum.is_finite());
    assert_eq!(flush.buckets.len(), 13, "12 bounds and +Inf");
}

/// A histogram's buckets (`le`, cumulative count), sum and count.
#[derive(Debug)]
struct Histogram {
    buckets: Vec<(String, f64)>,
    sum: f64,
    count: f64,
}

/// Reads `name`'s histogram and checks its shape: increasing bounds,
/// cumulative counts, `+Inf` last and equal to `_count`.
fn histogram(m: &Exposition, name: &str) -> Histogram {
    let buckets: Vec<(String, f64)> = m
        .all(&format!("{name}_bucket"))
        .into_iter()
        .map(|s| (s.labels["le"].clone(), s.value))
        .collect();
    let h = Histogram {
        buckets,
        sum: m.value(&format!("{name}_sum"), &[]),
        count: m.value(&format!("{name}_count"), &[]),
    };
    let bound = |le: &str| -> f64 {
        if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap()
        }
    };
    for pair in h.buckets.windows(2) {
        assert!(bound(&pair[0].0) < bound(&pair[1].0), "{name} bounds {h:?}");
        assert!(pair[0].1 <= pair[1].1, "{name} not cumulative {h:?}");
    }
    assert_eq!(
        h.buckets.last(),
        Some(&("+Inf".to_string(), h.count)),
        "{name}: +Inf is the count"
    );
    h
}
