//! NSS's monitoring endpoints, exactly as the reference server serves them:
//! `/streaming/serverz`, `storez`, `clientsz`, `channelsz`, `isFTActive`.
//!
//! Field names, their order, omitted-when-empty fields, sort orders, paging
//! (`offset`, `limit`), `subs=1`, `client=`, `channel=`, the 404 texts, JSONP
//! (`callback=`) and Go's JSON formatting (2-space indent, HTML-safe escapes)
//! follow the reference's `server/monitor.go`.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde::Serialize;

use super::text;
use crate::config::StoreKind;
use crate::server::view::{ChannelSnapshot, ServerView, SubSnapshot, Unavailable};

/// Default and fallback page size of the list endpoints.
const DEFAULT_LIMIT: usize = 1024;

/// The NSS routes.
pub(super) fn routes() -> Router<ServerView> {
    Router::new()
        // Any method, as Go's ServeMux serves them.
        .route("/streaming", any(rootz))
        .route("/streaming/serverz", any(serverz))
        .route("/streaming/storez", any(storez))
        .route("/streaming/clientsz", any(clientsz))
        .route("/streaming/channelsz", any(channelsz))
        .route("/streaming/isFTActive", any(is_ft_active))
}

type Params = Query<HashMap<String, String>>;

#[derive(Serialize)]
struct Serverz {
    cluster_id: String,
    server_id: String,
    version: String,
    go: String,
    state: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    role: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    node_id: String,
    now: String,
    start_time: String,
    uptime: String,
    clients: usize,
    subscriptions: usize,
    channels: usize,
    total_msgs: u64,
    total_bytes: u64,
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
    #[serde(skip_serializing_if = "is_zero")]
    open_fds: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max_fds: u64,
}

#[derive(Serialize)]
struct Storez<'a> {
    cluster_id: String,
    server_id: String,
    now: String,
    #[serde(rename = "type")]
    kind: &'static str,
    limits: &'a crate::config::limits::StoreLimits,
    total_msgs: u64,
    total_bytes: u64,
}

#[derive(Serialize)]
struct Clientsz {
    cluster_id: String,
    server_id: String,
    now: String,
    offset: usize,
    limit: usize,
    count: usize,
    total: usize,
    clients: Vec<Clientz>,
}

#[derive(Serialize)]
struct Clientz {
    id: String,
    hb_inbox: String,
    subs_count: usize,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    subscriptions: BTreeMap<String, Vec<Subscriptionz>>,
}

#[derive(Serialize)]
struct Channelsz {
    cluster_id: String,
    server_id: String,
    now: String,
    offset: usize,
    limit: usize,
    count: usize,
    total: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    channels: Vec<Channelz>,
}

#[derive(Serialize)]
struct Channelz {
    name: String,
    msgs: u64,
    bytes: u64,
    first_seq: u64,
    last_seq: u64,
    subs_count: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions: Vec<Subscriptionz>,
}

#[derive(Clone, Serialize)]
struct Subscriptionz {
    client_id: String,
    inbox: String,
    ack_inbox: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    durable_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    queue_name: String,
    is_durable: bool,
    is_offline: bool,
    max_inflight: i32,
    ack_wait: i32,
    last_sent: u64,
    pending_count: usize,
    is_stalled: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&SubSnapshot> for Subscriptionz {
    fn from(s: &SubSnapshot) -> Self {
        Subscriptionz {
            client_id: s.client_id.clone(),
            inbox: s.inbox.clone(),
            ack_inbox: s.ack_inbox.clone(),
            durable_name: s.durable_name.clone(),
            queue_name: s.queue_name.clone(),
            is_durable: s.is_durable,
            is_offline: s.is_offline,
            max_inflight: s.max_inflight,
            ack_wait: s.ack_wait,
            last_sent: s.last_sent,
            pending_count: s.pending_count,
            is_stalled: s.is_stalled,
        }
    }
}

/// A channel as NSS shows it, with its subscriptions when `subs` asks.
fn channelz(c: &ChannelSnapshot, subs: bool) -> Channelz {
    Channelz {
        name: c.name.clone(),
        msgs: c.msgs,
        bytes: c.bytes,
        first_seq: c.first_seq,
        last_seq: c.last_seq,
        subs_count: c.subs.len(),
        subscriptions: if subs {
            c.subs.iter().map(Subscriptionz::from).collect()
        } else {
            Vec::new()
        },
    }
}

/// `?name=` as Go's `strconv.Atoi` reads it: anything else is 0.
fn int_param(params: &HashMap<String, String>, name: &str) -> i64 {
    params.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `offset` (negative → 0) and `limit` (<= 0 → 1024), as NSS pages.
fn paging(params: &HashMap<String, String>) -> (usize, usize) {
    let offset = usize::try_from(int_param(params, "offset").max(0)).unwrap_or(usize::MAX);
    let limit = match int_param(params, "limit") {
        n if n <= 0 => DEFAULT_LIMIT,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    (offset, limit)
}

/// The page `[offset, offset + limit)` of `items`, clamped.
fn page<T>(items: Vec<T>, offset: usize, limit: usize) -> Vec<T> {
    items.into_iter().skip(offset).take(limit).collect()
}

/// Serializes `content` as Go's `json.MarshalIndent(v, "", "  ")` does and
/// answers it as nats-server's `ResponseHandler`: JSON, or JSONP with `callback`.
fn respond(params: &HashMap<String, String>, content: &impl Serialize) -> Response {
    let json = match serde_json::to_string_pretty(content) {
        Ok(json) => go_html_escape(&json),
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Error marshaling response: {e}\n"),
            )
        }
    };
    // No CORS header: PROTOCOL.md lists one, but the reference (v0.23.2)
    // sends none.
    match params.get("callback").filter(|c| !c.is_empty()) {
        Some(callback) => (
            [(header::CONTENT_TYPE, "application/javascript")],
            format!("{callback}({json})"),
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
    }
}

/// Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; they
/// can only occur inside strings in JSON text, so replacing them all is safe.
fn go_html_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Time as Go's `time.Time` marshals it (RFC 3339, nanoseconds with
/// trailing zeros trimmed), in UTC.
pub(super) fn go_time(t: SystemTime) -> String {
    let dt = chrono::DateTime::<chrono::Utc>::from(t);
    let nanos = dt.timestamp_subsec_nanos();
    let mut out = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Uptime as NSS prints it: `1y2d3h4m5s`, leading zero units left out.
fn uptime(secs: u64) -> String {
    let (mins, hrs, days) = (secs / 60, secs / 3600, secs / 86_400);
    let years = days / 365;
    if years > 0 {
        format!(
            "{years}y{}d{}h{}m{}s",
            days % 365,
            hrs % 24,
            mins % 60,
            secs % 60
        )
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", hrs % 24, mins % 60, secs % 60)
    } else if hrs > 0 {
        format!("{hrs}h{}m{}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{mins}m{}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// Open file descriptors and their limit, from /proc (0 where unknown).
fn fds() -> (u64, u64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| u64::try_from(d.count()).unwrap_or(0))
        .unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        })
        .unwrap_or(0);
    (open, max)
}

/// NSS's store type names.
fn store_type(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Sled => "FILE",
        StoreKind::Memory => "MEMORY",
    }
}

fn unavailable(_: Unavailable) -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "stanchion is not serving requests (starting or shutting down)\n",
    )
}

fn now() -> String {
    go_time(SystemTime::now())
}

async fn rootz() -> Response {
    let body = "<html lang=\"en\">\n  <body>\n    <h1>stanchion</h1>\n\
        <a href=./streaming/serverz>server</a><br/>\n\
        <a href=./streaming/storez>store</a><br/>\n\
        <a href=./streaming/clientsz>clients</a><br/>\n\
        <a href=./streaming/channelsz>channels</a><br/>\n  </body>\n</html>";
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn serverz(State(view): State<ServerView>, Query(params): Params) -> Response {
    // A standby has not opened the store: it reports nothing stored yet.
    // A clustered follower reports what it has replicated, from its store.
    let standby = view.state() == crate::server::view::ServerState::FtStandby;
    let mut counted = None;
    let (clients, channels) = match view.snapshot(false, |_| true).await {
        Ok(s) => (s.client_count, s.channels),
        Err(_) if standby => (0, Vec::new()),
        Err(e) => match view.local_store().cloned() {
            Some(store) => match tokio::task::spawn_blocking({
                let overhead = crate::server::record_overhead(view.store());
                move || super::follower::count_store(&*store, overhead)
            })
            .await
            {
                Ok(Ok(c)) => {
                    counted = Some(c);
                    (counted.as_ref().map_or(0, |c| c.clients), Vec::new())
                }
                _ => return unavailable(e),
            },
            None => return unavailable(e),
        },
    };
    let stats = view.stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let now = SystemTime::now();
    let up = now
        .duration_since(view.started())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (open_fds, max_fds) = fds();
    let serverz = Serverz {
        cluster_id: view.cluster_id().to_string(),
        server_id: view.server_id().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        go: "rust".to_string(),
        state: view.state().name(),
        role: view.role().name(),
        node_id: view.node_id().to_string(),
        now: go_time(now),
        start_time: go_time(view.started()),
        uptime: uptime(up),
        clients,
        subscriptions: counted
            .as_ref()
            .map_or_else(|| channels.iter().map(|c| c.subs.len()).sum(), |c| c.subs),
        channels: counted.as_ref().map_or(channels.len(), |c| c.channels),
        total_msgs: counted
            .as_ref()
            .map_or_else(|| channels.iter().map(|c| c.msgs).sum(), |c| c.msgs),
        total_bytes: counted
            .as_ref()
            .map_or_else(|| channels.iter().map(|c| c.bytes).sum(), |c| c.bytes),
        in_msgs: load(&stats.in_msgs),
        in_bytes: load(&stats.in_bytes),
        out_msgs: load(&stats.out_msgs),
        out_bytes: load(&stats.out_bytes),
        open_fds,
        max_fds,
    };
    respond(&params, &serverz)
}

async fn storez(State(view): State<ServerView>, Query(params): Params) -> Response {
    let channels = match view.snapshot(false, |_| true).await {
        Ok(s) => s.channels,
        Err(e) => return unavailable(e),
    };
    let limits = view.limits();
    let storez = Storez {
        cluster_id: view.cluster_id().to_string(),
        server_id: view.server_id().to_string(),
        now: now(),
        kind: store_type(view.store()),
        limits: &limits,
        total_msgs: channels.iter().map(|c| c.msgs).sum(),
        total_bytes: channels.iter().map(|c| c.bytes).sum(),
    };
    respond(&params, &storez)
}

async fn clientsz(State(view): State<ServerView>, Query(params): Params) -> Response {
    let with_subs = int_param(&params, "subs") == 1;
    let (clients, channels) = match view.snapshot(true, |_| true).await {
        Ok(s) => (s.clients, s.channels),
        Err(e) => return unavailable(e),
    };
    // A client's subscriptions are its online ones, by channel.
    let mut by_client: HashMap<&str, BTreeMap<String, Vec<Subscriptionz>>> = HashMap::new();
    for c in &channels {
        for s in c.subs.iter().filter(|s| !s.is_offline) {
            by_client
                .entry(s.client_id.as_str())
                .or_default()
                .entry(c.name.clone())
                .or_default()
                .push(Subscriptionz::from(s));
        }
    }
    let clientz = |id: &str, hb_inbox: &str| {
        let subs = by_client.get(id);
        Clientz {
            id: id.to_string(),
            hb_inbox: hb_inbox.to_string(),
            subs_count: subs.map_or(0, |m| m.values().map(Vec::len).sum()),
            subscriptions: match subs {
                Some(subs) if with_subs => subs.clone(),
                _ => BTreeMap::new(),
            },
        }
    };
    if let Some(id) = params.get("client").filter(|c| !c.is_empty()) {
        return match clients.iter().find(|c| &c.id == id) {
            Some(c) => respond(&params, &clientz(&c.id, &c.hb_inbox)),
            None => text(StatusCode::NOT_FOUND, format!("Client {id} not found\n")),
        };
    }
    let (offset, limit) = paging(&params);
    let total = clients.len();
    let list: Vec<Clientz> = page(clients, offset, limit)
        .iter()
        .map(|c| clientz(&c.id, &c.hb_inbox))
        .collect();
    let clientsz = Clientsz {
        cluster_id: view.cluster_id().to_string(),
        server_id: view.server_id().to_string(),
        now: now(),
        offset,
        limit,
        count: list.len(),
        total,
        clients: list,
    };
    respond(&params, &clientsz)
}

async fn channelsz(State(view): State<ServerView>, Query(params): Params) -> Response {
    let with_subs = int_param(&params, "subs") == 1;
    if let Some(name) = params.get("channel").filter(|c| !c.is_empty()) {
        return match view.snapshot(false, |n| n == name).await {
            Ok(found) => match found.channels.first() {
                Some(c) => respond(&params, &channelz(c, with_subs)),
                None => text(StatusCode::NOT_FOUND, format!("Channel {name} not found\n")),
            },
            Err(e) => unavailable(e),
        };
    }
    let (offset, limit) = paging(&params);
    let names = match view.channel_names().await {
        Ok(names) => names,
        Err(e) => return unavailable(e),
    };
    let total = names.len();
    let names = page(names, offset, limit);
    let mut channelsz = Channelsz {
        cluster_id: view.cluster_id().to_string(),
        server_id: view.server_id().to_string(),
        now: now(),
        offset,
        limit,
        count: names.len(),
        total,
        names: Vec::new(),
        channels: Vec::new(),
    };
    if with_subs {
        let wanted: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        match view.snapshot(false, |n| wanted.contains(n)).await {
            Ok(found) => {
                channelsz.channels = found.channels.iter().map(|c| channelz(c, true)).collect();
                channelsz.count = channelsz.channels.len();
            }
            Err(e) => return unavailable(e),
        }
    } else {
        channelsz.names = names;
    }
    respond(&params, &channelsz)
}

/// 200 when active in a fault-tolerance group, else 204 (standby, or not
/// in a group), as NSS answers.
async fn is_ft_active(State(view): State<ServerView>) -> StatusCode {
    if view.state() == crate::server::view::ServerState::FtActive {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn uptime_as_nss_prints_it() {
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(61), "1m1s");
        assert_eq!(uptime(3600), "1h0m0s");
        assert_eq!(uptime(86_400 + 3661), "1d1h1m1s");
        assert_eq!(uptime(366 * 86_400), "1y1d0h0m0s");
    }

    #[test]
    fn times_as_go_marshals_them() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(go_time(t), "2023-11-14T22:13:20.12Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 0);
        assert_eq!(go_time(t), "2023-11-14T22:13:20Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 1);
        assert_eq!(go_time(t), "2023-11-14T22:13:20.000000001Z");
    }

    #[test]
    fn paging_as_nss_pages() {
        let p = |pairs: &[(&str, &str)]| {
            let params = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>();
            paging(&params)
        };
        assert_eq!(p(&[]), (0, 1024));
        assert_eq!(p(&[("offset", "-5"), ("limit", "0")]), (0, 1024));
        assert_eq!(p(&[("offset", "2"), ("limit", "3")]), (2, 3));
        assert_eq!(p(&[("offset", "x"), ("limit", "-1")]), (0, 1024));
        assert_eq!(page(vec![1, 2, 3], 5, 2), Vec::<i32>::new());
        assert_eq!(page(vec![1, 2, 3], 1, 1), vec![2]);
    }

    #[test]
    fn json_escapes_as_go_does() {
        assert_eq!(
            go_html_escape(r#"{"a":"<&>"}"#),
            r#"{"a":"\u003c\u0026\u003e"}"#
        );
    }
}
