//! `deploy/docker-run.md`: the `docker` commands in its code blocks, each
//! `docker run` of stanchion as the [`Container`] it starts, and the
//! network, volume, port, healthcheck and NATS URL they wire.

use std::path::Path;

use crate::dockerfile::{
    healthcheck_port, image_argv, image_env, image_healthcheck, image_workdir,
};
use crate::files::{announced_cluster_id, read, DOCKER_RUN};
use crate::kubernetes::is_stanchion_image;
use crate::settings::{listens_everywhere, monitoring_port, url_host_port, Container};

/// The `docker ...` commands in a Markdown file's code blocks, continuation
/// lines joined and split into words.
fn docker_commands(rel: &str) -> Vec<Vec<String>> {
    let text = read(rel);
    let mut out = Vec::new();
    let mut in_code = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.split(" #").next().unwrap().trim();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        for cmd in std::mem::take(&mut pending).split("&&") {
            let words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
            if words.first().map(String::as_str) == Some("docker") {
                out.push(words);
            }
        }
    }
    out
}

/// `docker run` words -> (options as (flag, value), image, args).
fn docker_run_parts(words: &[String]) -> (Vec<(String, String)>, String, Vec<String>) {
    const NO_VALUE: &[&str] = &["-d", "--detach", "--rm", "-i", "-t", "-it", "--init"];
    let mut opts = Vec::new();
    let mut i = 2;
    while i < words.len() && words[i].starts_with('-') {
        let w = &words[i];
        if NO_VALUE.contains(&w.as_str()) {
            opts.push((w.clone(), String::new()));
        } else if let Some((f, v)) = w.split_once('=').filter(|_| w.starts_with("--")) {
            opts.push((f.to_string(), v.to_string()));
        } else {
            opts.push((w.clone(), words.get(i + 1).cloned().unwrap_or_default()));
            i += 1;
        }
        i += 1;
    }
    let image = words.get(i).cloned().unwrap_or_default();
    (opts, image, words.get(i + 1..).unwrap_or(&[]).to_vec())
}

/// Every value of option `f` (`-e`, `-v`, ...).
fn opt(opts: &[(String, String)], f: &str) -> Vec<String> {
    opts.iter()
        .filter(|(k, _)| k == f)
        .map(|(_, v)| v.clone())
        .collect()
}

/// A `docker run` of stanchion as it starts: the image's `ENV` then `-e`,
/// `--entrypoint` and the arguments after the image over the image's,
/// `-w`.
fn run_container(n: usize, opts: &[(String, String)], args: &[String]) -> Container {
    assert!(
        opt(opts, "--env-file").is_empty() && opt(opts, "--mount").is_empty(),
        "--env-file and --mount are not modelled by tests/deploy"
    );
    let mut env: Vec<(String, String)> = image_env().into_iter().collect();
    for e in [opt(opts, "-e"), opt(opts, "--env")].concat() {
        let (k, v) = e
            .split_once('=')
            .unwrap_or_else(|| panic!("-e {e}: the host's value is not modelled"));
        env.push((k.to_string(), v.to_string()));
    }
    let workdir = [opt(opts, "-w"), opt(opts, "--workdir")].concat().pop();
    Container {
        name: format!("{DOCKER_RUN}: docker run #{n} of stanchion"),
        argv: image_argv(
            opt(opts, "--entrypoint").pop().map(|e| vec![e]),
            Some(args.to_vec()).filter(|a| !a.is_empty()),
        ),
        env,
        files: Vec::new(),
        workdir: workdir.unwrap_or_else(image_workdir),
    }
}

#[test]
fn docker_run_wires_network_volume_port_and_nats() {
    let cmds = docker_commands(DOCKER_RUN);
    let network = cmds
        .iter()
        .find(|c| c.get(1..3) == Some(&["network".to_string(), "create".to_string()]))
        .and_then(|c| c.get(3).cloned())
        .expect("no `docker network create`");
    let runs: Vec<_> = cmds
        .iter()
        .filter(|c| c.get(1).map(String::as_str) == Some("run"))
        .map(|c| docker_run_parts(c))
        .collect();
    let (nats_opts, _, _) = runs
        .iter()
        .find(|(_, image, _)| image.starts_with("nats:"))
        .expect("no `docker run` of nats");
    assert_eq!(
        opt(nats_opts, "--network"),
        std::slice::from_ref(&network),
        "nats container's network"
    );
    let nats_name = opt(nats_opts, "--name")
        .pop()
        .expect("nats container has no --name");

    let stanchion_runs: Vec<_> = runs
        .iter()
        .filter(|(_, image, _)| is_stanchion_image(image))
        .collect();
    assert!(!stanchion_runs.is_empty(), "no `docker run` of stanchion");
    let announced = announced_cluster_id(&read(DOCKER_RUN));
    for (n, (opts, _, args)) in stanchion_runs.into_iter().enumerate() {
        let container = run_container(n + 1, opts, args);
        let name = &container.name;
        assert_eq!(
            opt(opts, "--network"),
            std::slice::from_ref(&network),
            "{name}: the network"
        );
        let r = container.load();
        assert!(r.warnings.is_empty(), "{name}: {:?}", r.warnings);
        let (host, port) = url_host_port(&r.config.nats_server);
        assert_eq!(
            (host.as_str(), port),
            (nats_name.as_str(), 4222),
            "{name}: the NATS URL"
        );
        assert_eq!(
            Some(&r.config.cluster_id),
            announced.as_ref(),
            "{name}: the cluster ID the text tells clients to use"
        );
        assert!(
            opt(opts, "-v").iter().any(|v| {
                !v.starts_with('/') && v.split(':').nth(1).map(Path::new) == Some(r.dir.as_path())
            }),
            "{name}: no named volume on the store dir {}",
            r.dir.display()
        );
        let p = monitoring_port(name, &r.config);
        assert!(
            listens_everywhere(&r.config),
            "{name}: monitoring on {}: -p cannot reach it",
            r.config.http_host
        );
        assert!(
            opt(opts, "-p").contains(&format!("{p}:{p}")),
            "{name}: -p {p}:{p} missing"
        );
        assert_eq!(
            healthcheck_port(&container, &image_healthcheck()),
            p,
            "{name}: the image's HEALTHCHECK asks another port than the monitoring port"
        );
    }
    let text = read(DOCKER_RUN);
    for needle in ["/readyz", "/streaming/serverz"] {
        assert!(text.contains(needle), "{DOCKER_RUN} does not show {needle}");
    }
}
