//! What a clustered example must get right wherever it runs: its nodes'
//! settings as stanchion loads them (clustered, one cluster ID, distinct
//! node IDs, peers naming exactly the nodes, a majority that survives one
//! loss), and a NATS route graph that joins every nats-server, since Raft
//! travels over NATS. Used by `cluster_compose` and `cluster_k8s`.
//!
//! Checks return the problem as text so that the tests here can show each
//! one is caught.

use std::collections::{BTreeMap, BTreeSet};

use stanchion::config::{ClusterStart, Config};

/// One node as a deployment runs it.
pub(crate) struct Node {
    /// Where it is defined, for messages (`deploy/x.yml: stanchion-a`).
    pub(crate) name: String,
    /// What stanchion loads there.
    pub(crate) config: Config,
}

/// Checks that `nodes` form one cluster started from a full peer list
/// (every node started at once, as the examples do), and returns their
/// node IDs.
pub(crate) fn check_nodes(nodes: &[Node]) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    for n in nodes {
        let c = &n.config;
        if !c.clustered {
            return Err(format!("{}: not clustered", n.name));
        }
        let id = c.cluster_node_id.clone().unwrap_or_default();
        if ids.contains(&id) {
            return Err(format!("{}: node ID {id:?} is used twice", n.name));
        }
        ids.push(id);
    }
    // An even count tolerates no more losses than one node fewer.
    if ids.len() < 3 || ids.len() % 2 == 0 {
        return Err(format!(
            "{} nodes: a cluster needs an odd count of at least 3",
            ids.len()
        ));
    }
    let all: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    for n in nodes {
        let c = &n.config;
        if c.cluster_id != nodes[0].config.cluster_id {
            return Err(format!(
                "{}: cluster ID {:?}, not {:?}",
                n.name, c.cluster_id, nodes[0].config.cluster_id
            ));
        }
        if c.cluster_start() != ClusterStart::Peers {
            return Err(format!("{}: started without peers", n.name));
        }
        let listed = c.cluster_nodes();
        let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
        if listed != all {
            return Err(format!(
                "{}: peers {:?} make the cluster {listed:?}, but the nodes are {all:?}",
                n.name,
                c.cluster_peers.as_deref().unwrap_or_default()
            ));
        }
    }
    Ok(ids)
}

/// Checks that routes (`from` dials `to`) join `servers` into one NATS
/// cluster: a route to nothing listed fails, as does a server no route
/// path reaches.
pub(crate) fn check_connected(
    servers: &[String],
    routes: &[(String, String)],
) -> Result<(), String> {
    let mut next: BTreeMap<&str, Vec<&str>> =
        servers.iter().map(|s| (s.as_str(), Vec::new())).collect();
    for (from, to) in routes {
        if !next.contains_key(to.as_str()) {
            return Err(format!(
                "{from}: route to {to}, which is not one of {servers:?}"
            ));
        }
        // A route carries traffic both ways once up.
        next.entry(from).or_default().push(to);
        next.entry(to).or_default().push(from);
    }
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = servers.first().map(String::as_str).into_iter().collect();
    while let Some(s) = todo.pop() {
        if seen.insert(s) {
            todo.extend(next[s].iter().copied());
        }
    }
    match servers.iter().find(|s| !seen.contains(s.as_str())) {
        Some(cut) => Err(format!("no route joins {cut} to {}", servers[0])),
        None => Ok(()),
    }
}

/// A node as the tests below write it.
fn node(name: &str, id: &str, peers: &str) -> Node {
    let config = Config {
        cluster_id: "c".into(),
        clustered: true,
        cluster_node_id: Some(id.to_string()),
        cluster_peers: Some(peers.to_string()),
        ..Config::default()
    };
    Node {
        name: name.to_string(),
        config,
    }
}

#[test]
fn check_nodes_catches_wrong_ids_and_peers() {
    let good = ["a", "b", "c"].map(|id| node(id, id, "a,b,c"));
    assert_eq!(check_nodes(&good).unwrap(), ["a", "b", "c"]);
    // Peers may leave the node itself out.
    let others = [
        node("a", "a", "b,c"),
        node("b", "b", "a,c"),
        node("c", "c", "a,b"),
    ];
    assert!(check_nodes(&others).is_ok());

    let twice = [
        node("a", "a", "a,b,c"),
        node("b", "a", "a,b,c"),
        node("c", "c", "a,b,c"),
    ];
    assert!(check_nodes(&twice).unwrap_err().contains("used twice"));
    let short = [
        node("a", "a", "a,b,c"),
        node("b", "b", "a,b"),
        node("c", "c", "a,b,c"),
    ];
    assert!(check_nodes(&short).unwrap_err().starts_with("b: peers"));
    let stranger = [
        node("a", "a", "a,b,c,d"),
        node("b", "b", "a,b,c"),
        node("c", "c", "a,b,c"),
    ];
    assert!(check_nodes(&stranger).unwrap_err().starts_with("a: peers"));
    let alone = [
        node("a", "a", ""),
        node("b", "b", "a,b,c"),
        node("c", "c", "a,b,c"),
    ];
    assert!(check_nodes(&alone).unwrap_err().contains("without peers"));
    let two = [node("a", "a", "a,b"), node("b", "b", "a,b")];
    assert!(check_nodes(&two).unwrap_err().contains("odd count"));
    let mut other_id = ["a", "b", "c"].map(|id| node(id, id, "a,b,c"));
    other_id[2].config.cluster_id = "d".into();
    assert!(check_nodes(&other_id).unwrap_err().contains("cluster ID"));
    let mut plain = ["a", "b", "c"].map(|id| node(id, id, "a,b,c"));
    plain[1].config.clustered = false;
    assert!(check_nodes(&plain).unwrap_err().contains("not clustered"));
}

#[test]
fn check_connected_needs_one_route_graph() {
    let servers: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
    let route = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert!(check_connected(&servers, &[route("y", "x"), route("z", "x")]).is_ok());
    let e = check_connected(&servers, &[route("x", "y")]).unwrap_err();
    assert!(e.contains("joins z"), "{e}");
    let e = check_connected(&servers, &[route("x", "w")]).unwrap_err();
    assert!(e.contains("route to w"), "{e}");
}
