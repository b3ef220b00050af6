//! `deploy/docker-run.md`: the `docker` commands in its code blocks, and
//! the network, volume, port and NATS URL they wire.

use std::collections::BTreeMap;

use crate::dockerfile::image_env;
use crate::files::{read, DOCKER_RUN};
use crate::kubernetes::is_stanchion_image;
use crate::settings::{parse_flags, resolve, url_host_port};

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
    let opt = |opts: &[(String, String)], f: &str| -> Vec<String> {
        opts.iter()
            .filter(|(k, _)| k == f)
            .map(|(_, v)| v.clone())
            .collect()
    };
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
    let (opts, _, args) = stanchion_runs[0];
    assert_eq!(
        opt(opts, "--network"),
        [network],
        "stanchion container's network"
    );
    let env: BTreeMap<String, String> = opt(opts, "-e")
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let settings = resolve(None, &image_env(), &env, &parse_flags(args));
    let (host, port) = url_host_port(
        settings
            .get("nats_server")
            .expect("no STANCHION_NATS_SERVER"),
    );
    assert_eq!(
        (host.as_str(), port),
        (nats_name.as_str(), 4222),
        "stanchion's NATS URL"
    );
    let dir = settings.get("dir").unwrap();
    assert!(
        opt(opts, "-v")
            .iter()
            .any(|v| v.split(':').nth(1) == Some(dir) && !v.starts_with('/')),
        "no named volume on the store dir {dir}"
    );
    let p = settings.http_port();
    assert!(
        opt(opts, "-p").contains(&format!("{p}:{p}")),
        "-p {p}:{p} missing"
    );
    let text = read(DOCKER_RUN);
    for needle in ["/readyz", "/streaming/serverz"] {
        assert!(text.contains(needle), "{DOCKER_RUN} does not show {needle}");
    }
}
