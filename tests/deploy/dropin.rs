//! The drop-in for the NSS Helm chart: the chart's flags, ports, probes
//! and `stan.conf` keys, and what stanchion makes of them.

use std::path::Path;
use std::time::Duration;

use stanchion::config::{nss_file, StoreKind};

use crate::files::{port_number, seq, strings, Manifest, DROPIN};
use crate::kubernetes::{
    k8s_container, probe_path, resolve_container_port, stanchion_container, stanchion_workload,
};

/// Where the chart mounts its ConfigMap's `stan.conf` and points `-sc`.
const STAN_CONF: &str = "/etc/stan-config/stan.conf";

#[test]
fn dropin_follows_the_stan_chart() {
    let m = Manifest::load(DROPIN);
    let w = stanchion_workload(&m);
    let c = stanchion_container(&m, w);
    let args = strings(&c["args"]);
    let has = |pair: [&str; 2]| args.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1]);
    assert!(
        has(["-sc", STAN_CONF]),
        "args {args:?} lack -sc {STAN_CONF}"
    );
    assert!(has(["-m", "8222"]), "args {args:?} lack -m 8222");
    let ns = args
        .windows(2)
        .find(|w| w[0] == "-ns")
        .map(|w| w[1].clone())
        .unwrap_or_else(|| panic!("args {args:?} lack -ns"));
    assert!(ns.starts_with("nats://"), "-ns {ns}");

    let monitor = seq(&c["ports"])
        .iter()
        .find(|p| p["name"].as_str() == Some("monitor"))
        .expect("no port named monitor");
    assert_eq!(port_number(&monitor["containerPort"]), Some(8222));
    assert_eq!(
        probe_path(c, "readinessProbe").as_deref(),
        Some("/streaming/serverz")
    );
    assert_eq!(
        resolve_container_port(c, &c["readinessProbe"]["httpGet"]["port"]),
        Some(8222)
    );
    assert!(
        probe_path(c, "livenessProbe").is_some(),
        "no liveness probe"
    );

    let container = k8s_container(&m);
    let (_, text) = container
        .files
        .iter()
        .find(|(path, _)| path == STAN_CONF)
        .unwrap_or_else(|| panic!("no {STAN_CONF} in {:?}", container.files));
    let conf = nss_file::from_str(text, Path::new(STAN_CONF)).expect("stan.conf");
    for key in [
        "cluster_id",
        "store",
        "dir",
        "hb_interval",
        "hb_timeout",
        "hb_fail_count",
        "max_msgs",
    ] {
        assert!(
            conf.values.contains_key(key),
            "stan.conf lacks {key}: {conf:?}"
        );
    }
    assert!(conf.ignored.is_empty(), "ignored: {:?}", conf.ignored);

    let r = container.load();
    let c = &r.config;
    assert_eq!(
        c.cluster_id,
        w["metadata"]["name"].as_str().unwrap(),
        "the chart's cluster ID is the release name"
    );
    assert_eq!(c.store, StoreKind::Sled, "store: file");
    assert_eq!(r.dir, Path::new("/data/stan/store"));
    assert_eq!(c.nats_server, ns, "-ns");
    assert_eq!(c.http_port, 8222, "-m");
    assert_eq!(
        (c.hb_interval, c.hb_timeout, c.hb_fail_count),
        (Duration::from_secs(30), Duration::from_secs(10), 10)
    );
    assert_eq!(
        r.config_files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        [STAN_CONF],
        "the config file stanchion reads"
    );
}
