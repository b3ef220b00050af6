//! The Dockerfile: its stages and instructions, the runtime image's
//! `ENV`, `USER`, `WORKDIR`, `VOLUME`, `ENTRYPOINT`, `CMD` and
//! `HEALTHCHECK`, the [`Container`] it runs when nothing overrides them,
//! and the checks on them (exec-form entrypoint, non-root numeric user,
//! healthcheck, store volume, exposed monitoring port, a config file left
//! in charge, pinned builder).

use std::collections::BTreeMap;

use stanchion::config::{StoreKind, ENV_PREFIX};
use yaml_rust2::YamlLoader;

use crate::files::read;
use crate::settings::{listens_everywhere, monitoring_port, Container};

/// One Dockerfile instruction, continuation lines joined.
#[derive(Debug)]
struct Instr {
    keyword: String,
    args: String,
}

/// The Dockerfile's stages, each a list of instructions starting with FROM.
fn dockerfile_stages() -> Vec<Vec<Instr>> {
    let text = read("Dockerfile");
    let mut stages: Vec<Vec<Instr>> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comment lines are dropped, inside a continuation too (as Docker does).
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        let full = full.trim();
        if full.is_empty() {
            continue;
        }
        let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((full, ""));
        let instr = Instr {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        };
        if instr.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("an instruction before the first FROM")
            .push(instr);
    }
    assert!(!stages.is_empty(), "Dockerfile has no FROM");
    stages
}

/// The final (runtime) stage's instructions with a given keyword.
fn runtime<'a>(stages: &'a [Vec<Instr>], keyword: &'a str) -> Vec<&'a str> {
    stages
        .last()
        .unwrap()
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

/// A JSON array of strings (exec form), or None for the shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    if !args.trim_start().starts_with('[') {
        return None;
    }
    let docs = YamlLoader::load_from_str(args).ok()?;
    let items = docs.first()?.as_vec()?;
    items.iter().map(|i| i.as_str().map(String::from)).collect()
}

/// The runtime stage's `ENV` (`ENV A=1 B=2` and the legacy `ENV A 1`).
pub(crate) fn image_env() -> BTreeMap<String, String> {
    let stages = dockerfile_stages();
    let mut env = BTreeMap::new();
    for args in runtime(&stages, "ENV") {
        if !args.split_whitespace().next().unwrap_or("").contains('=') {
            let (k, v) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            env.insert(k.to_string(), v.trim().to_string());
            continue;
        }
        for pair in args.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {pair:?} is not KEY=VALUE"));
            env.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    env
}

/// The runtime stage's `USER`, as (uid, gid).
pub(crate) fn image_user() -> (String, Option<String>) {
    let stages = dockerfile_stages();
    let user = *runtime(&stages, "USER")
        .last()
        .expect("the runtime stage sets no USER (it would run as root)");
    match user.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (user.to_string(), None),
    }
}

fn image_volumes() -> Vec<String> {
    let stages = dockerfile_stages();
    runtime(&stages, "VOLUME")
        .into_iter()
        .flat_map(|args| {
            exec_form(args).unwrap_or_else(|| args.split_whitespace().map(String::from).collect())
        })
        .collect()
}

/// The runtime stage's `WORKDIR` (the last one; `/` without one).
pub(crate) fn image_workdir() -> String {
    let stages = dockerfile_stages();
    let workdir = runtime(&stages, "WORKDIR").last().map(|w| w.to_string());
    workdir.unwrap_or_else(|| "/".to_string())
}

/// The last exec-form `keyword` of the runtime stage (`ENTRYPOINT`, `CMD`).
fn image_exec(keyword: &str) -> Option<Vec<String>> {
    let stages = dockerfile_stages();
    let last = *runtime(&stages, keyword).last()?;
    Some(exec_form(last).unwrap_or_else(|| panic!("{keyword} {last} is not exec form")))
}

/// The argv a container of the image runs, given its overrides: Docker's
/// `--entrypoint`, compose's `entrypoint` and Kubernetes' `command` replace
/// `ENTRYPOINT` and drop `CMD`; arguments after the image, compose's
/// `command` and Kubernetes' `args` replace `CMD`.
pub(crate) fn image_argv(entrypoint: Option<Vec<String>>, cmd: Option<Vec<String>>) -> Vec<String> {
    let argv = match entrypoint {
        Some(entrypoint) => [entrypoint, cmd.unwrap_or_default()].concat(),
        None => [
            image_exec("ENTRYPOINT").expect("no ENTRYPOINT in the runtime stage"),
            cmd.or_else(|| image_exec("CMD")).unwrap_or_default(),
        ]
        .concat(),
    };
    let program = argv.first().map(String::as_str).unwrap_or("");
    assert!(
        program.rsplit('/').next() == Some("stanchion"),
        "the container runs {argv:?}, not stanchion"
    );
    argv
}

/// The image run as it is: its `ENV`, `ENTRYPOINT`, `CMD` and `WORKDIR`.
pub(crate) fn image_container() -> Container {
    Container {
        name: "Dockerfile".to_string(),
        argv: image_argv(None, None),
        env: image_env().into_iter().collect(),
        files: Vec::new(),
        workdir: image_workdir(),
    }
}

/// The image's `HEALTHCHECK CMD`.
pub(crate) fn image_healthcheck() -> Vec<String> {
    let stages = dockerfile_stages();
    let hc = runtime(&stages, "HEALTHCHECK");
    let hc = hc.last().expect("no HEALTHCHECK in the runtime stage");
    let cmd = hc
        .split_once("CMD")
        .unwrap_or_else(|| panic!("HEALTHCHECK {hc} has no CMD"))
        .1;
    exec_form(cmd).unwrap_or_else(|| panic!("HEALTHCHECK CMD {cmd} is not exec form"))
}

/// The port that `test` (a `stanchion healthcheck` argv) asks when run in
/// `server`'s container: it loads the configuration from its own argv and
/// the container's environment and files, not from the server's flags.
pub(crate) fn healthcheck_port(server: &Container, test: &[String]) -> u16 {
    /// What `stanchion healthcheck` asks when no port is configured
    /// (src/healthcheck.rs).
    const DEFAULT_PORT: u16 = 8222;
    assert!(
        test.len() >= 2 && test[0].ends_with("stanchion") && test[1] == "healthcheck",
        "{}: healthcheck {test:?} does not run `stanchion healthcheck`",
        server.name
    );
    // stanchion drops the `healthcheck` word before loading.
    let argv = [&test[..1], &test[2..]].concat();
    let config = server.with_argv(argv).load().config;
    u16::try_from(config.http_port)
        .ok()
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_PORT)
}

#[test]
fn dockerfile_entrypoint_is_exec_form_stanchion() {
    let stages = dockerfile_stages();
    let entry = runtime(&stages, "ENTRYPOINT");
    let last = entry.last().expect("no ENTRYPOINT in the runtime stage");
    let argv = exec_form(last).unwrap_or_else(|| {
        panic!("ENTRYPOINT {last} is shell form: SIGTERM would go to /bin/sh, not stanchion")
    });
    assert_eq!(argv, ["/usr/local/bin/stanchion"], "ENTRYPOINT");
    assert_eq!(runtime(&stages, "STOPSIGNAL"), ["SIGTERM"], "STOPSIGNAL");
}

#[test]
fn dockerfile_user_is_numeric_and_not_root() {
    let (uid, gid) = image_user();
    assert!(uid != "0" && uid != "root", "USER {uid} is root");
    let uid: u32 = uid.parse().unwrap_or_else(|_| {
        panic!("USER {uid} is not numeric: Kubernetes' runAsNonRoot cannot verify a name")
    });
    assert_ne!(uid, 0);
    let gid = gid.expect("USER has no group (uid:gid): fsGroup in the manifests needs one");
    assert!(
        gid.parse::<u32>().is_ok(),
        "USER group {gid} is not numeric"
    );
}

#[test]
fn dockerfile_healthcheck_runs_stanchion_healthcheck() {
    assert_eq!(
        image_healthcheck(),
        ["/usr/local/bin/stanchion", "healthcheck"],
        "HEALTHCHECK CMD"
    );
}

#[test]
fn dockerfile_healthcheck_asks_the_monitoring_port() {
    // The healthcheck does not see the CMD's `-m`: its own default must be
    // where the image's CMD puts monitoring.
    let image = image_container();
    let server = image.load().config;
    assert_eq!(
        healthcheck_port(&image, &image_healthcheck()),
        monitoring_port(&image.name, &server),
        "HEALTHCHECK vs the CMD's monitoring port"
    );
}

#[test]
fn dockerfile_volume_is_the_store_dir() {
    let volumes = image_volumes();
    assert!(
        volumes.iter().any(|v| v == "/data"),
        "VOLUME /data missing: {volumes:?}"
    );
    let r = image_container().load();
    assert_eq!(r.config.store, StoreKind::Sled, "the image's default store");
    assert!(
        volumes.iter().any(|v| std::path::Path::new(v) == r.dir),
        "the default store dir {} from WORKDIR {} is {}, not a VOLUME ({volumes:?})",
        r.config.dir.display(),
        image_workdir(),
        r.dir.display()
    );
}

#[test]
fn dockerfile_exposes_the_monitoring_port() {
    let stages = dockerfile_stages();
    let image = image_container();
    let r = image.load();
    let port = monitoring_port(&image.name, &r.config);
    assert!(
        listens_everywhere(&r.config),
        "monitoring on {}: a published port cannot reach it",
        r.config.http_host
    );
    let exposed: Vec<&str> = runtime(&stages, "EXPOSE")
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(|p| p.trim_end_matches("/tcp"))
        .collect();
    assert!(
        exposed.contains(&port.to_string().as_str()),
        "EXPOSE {exposed:?} lacks the CMD's monitoring port {port}"
    );
    assert_eq!(port, 8222, "the NSS image's monitoring port");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn dockerfile_env_leaves_a_config_file_in_charge() {
    // The environment beats a config file, so the image sets no STANCHION_*:
    // a pod that passes `-sc` (replacing the CMD) gets its file's settings.
    for name in image_env().into_keys() {
        assert!(
            !name.starts_with(ENV_PREFIX),
            "ENV {name} would override a config file's setting"
        );
    }
    let conf = "/etc/stan-config/stan.conf";
    let image = image_container();
    let pod = Container {
        argv: image_argv(None, Some(vec!["-sc".into(), conf.into()])),
        files: vec![(
            conf.to_string(),
            "http: \"127.0.0.2:9999\"\nstreaming {\n  id: from-file\n  store: memory\n  \
             dir: /conf\n  ns: \"nats://conf:4333\"\n}\n"
                .to_string(),
        )],
        ..image
    };
    let c = pod.load().config;
    let got = (
        c.cluster_id.as_str(),
        c.store,
        c.dir.to_str(),
        c.nats_server.as_str(),
        c.http_host.as_str(),
        c.http_port,
    );
    let want = (
        "from-file",
        StoreKind::Memory,
        Some("/conf"),
        "nats://conf:4333",
        "127.0.0.2",
        9999,
    );
    assert_eq!(got, want, "the config file's settings under the image");
}

#[test]
fn dockerfile_builder_is_pinned_and_locked() {
    let stages = dockerfile_stages();
    let from = &stages[0][0].args;
    let image = from.split_whitespace().next().unwrap();
    let tag = image.split_once(':').map(|(_, t)| t).unwrap_or("");
    let version = tag.split('-').next().unwrap_or("");
    assert!(
        image.starts_with("rust:") && version.split('.').count() == 3,
        "builder {image} is not an exact rust:X.Y.Z tag"
    );
    let builds: Vec<&Instr> = stages[0]
        .iter()
        .filter(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .collect();
    assert!(
        builds.len() >= 2,
        "expected a dependency layer and a source build"
    );
    for b in builds {
        assert!(
            b.args.contains("--release") && b.args.contains("--locked"),
            "{} lacks --release --locked",
            b.args
        );
    }
    let final_from = &stages.last().unwrap()[0].args;
    assert!(
        final_from.contains(':') && !final_from.contains(":latest"),
        "runtime base {final_from} is not pinned"
    );
}
