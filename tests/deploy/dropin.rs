//! The drop-in for the NSS Helm chart: the chart's flags, ports, probes
//! and `stan.conf` keys.

use crate::files::{port_number, seq, strings, Manifest, DROPIN};
use crate::kubernetes::{
    k8s_settings, probe_path, resolve_container_port, stanchion_container, stanchion_workload,
};
use crate::settings::parse_nats_conf;

#[test]
fn dropin_follows_the_stan_chart() {
    let m = Manifest::load(DROPIN);
    let w = stanchion_workload(&m);
    let c = stanchion_container(&m, w);
    let args = strings(&c["args"]);
    let has = |pair: [&str; 2]| args.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1]);
    assert!(
        has(["-sc", "/etc/stan-config/stan.conf"]),
        "args {args:?} lack -sc /etc/stan-config/stan.conf"
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

    let (_, conf) = k8s_settings(&m);
    let conf = parse_nats_conf(&conf.expect("no -sc config file"));
    for key in [
        "streaming.id",
        "streaming.store",
        "streaming.dir",
        "streaming.hb_interval",
        "streaming.hb_timeout",
        "streaming.hb_fail_count",
        "streaming.store_limits.max_msgs",
    ] {
        assert!(conf.contains_key(key), "stan.conf lacks {key}: {conf:?}");
    }
    assert_eq!(
        conf.get("streaming.store").map(String::as_str),
        Some("file")
    );
}
