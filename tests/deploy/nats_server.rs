//! nats-server's command line as the deployment files write it: a flag's
//! value, the routes, the cluster listen port and name.
//!
//! A leaf: parses argv, checks nothing.

use crate::settings::url_host_port;

/// The value of a nats-server flag (`--port 4222`, `--port=4222`, `-p 4222`).
pub(crate) fn flag_value(args: &[String], names: &[&str]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, a)| {
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (a.as_str(), args.get(i + 1).cloned()),
        };
        names
            .contains(&flag.trim_start_matches('-'))
            .then_some(value)?
    })
}

/// The client port (`-p`, `--port`), 4222 if not given.
pub(crate) fn client_port(args: &[String]) -> u16 {
    flag_value(args, &["p", "port"]).map_or(4222, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("nats-server --port {v}"))
    })
}

/// What a routed nats-server's flags say about its part in a NATS cluster.
#[derive(Debug)]
pub(crate) struct Routing {
    /// `--cluster_name`: all servers of one NATS cluster must agree.
    pub(crate) name: Option<String>,
    /// The port of `--cluster nats://host:port`, where routes come in.
    pub(crate) listen_port: u16,
    /// `--routes`, as (host, port).
    pub(crate) routes: Vec<(String, u16)>,
}

/// The routing flags of a nats-server argv, None when it has no
/// `--cluster` listener (it then takes no routes).
pub(crate) fn routing(args: &[String]) -> Option<Routing> {
    let listen = flag_value(args, &["cluster", "cluster_listen"])?;
    let routes = flag_value(args, &["routes", "r"])
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            assert!(r.contains("://"), "route {r} has no scheme");
            url_host_port(r)
        })
        .collect();
    Some(Routing {
        name: flag_value(args, &["cluster_name"]),
        listen_port: url_host_port(&listen).1,
        routes,
    })
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn routing_reads_both_flag_spellings() {
    let r = routing(&words(
        "--port 4222 --cluster_name=stan --cluster nats://0.0.0.0:6333 \
         --routes=nats://a:6333,nats://b.svc:6333",
    ))
    .expect("a cluster listener");
    assert_eq!(r.name.as_deref(), Some("stan"));
    assert_eq!(r.listen_port, 6333);
    assert_eq!(
        r.routes,
        [("a".to_string(), 6333), ("b.svc".to_string(), 6333)]
    );
    assert!(routing(&words("--port 4222 --http_port 8222")).is_none());
    assert_eq!(client_port(&words("-p 4333")), 4333);
    assert_eq!(client_port(&words("--cluster_name=x")), 4222);
}
