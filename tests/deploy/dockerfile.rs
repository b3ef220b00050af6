//! The Dockerfile: its stages and instructions, the runtime image's
//! `ENV`, `USER` and `VOLUME`, and the checks on them (exec-form
//! entrypoint, non-root numeric user, healthcheck, store volume, exposed
//! monitoring port, pinned builder).

use std::collections::BTreeMap;

use yaml_rust2::YamlLoader;

use crate::files::read;

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
    let stages = dockerfile_stages();
    let hc = runtime(&stages, "HEALTHCHECK");
    let hc = hc.last().expect("no HEALTHCHECK in the runtime stage");
    let cmd = hc
        .split_once("CMD")
        .unwrap_or_else(|| panic!("HEALTHCHECK {hc} has no CMD"))
        .1;
    let argv = exec_form(cmd).unwrap_or_else(|| panic!("HEALTHCHECK CMD {cmd} is not exec form"));
    assert_eq!(
        argv,
        ["/usr/local/bin/stanchion", "healthcheck"],
        "HEALTHCHECK CMD"
    );
}

#[test]
fn dockerfile_volume_is_the_store_dir() {
    let volumes = image_volumes();
    assert!(
        volumes.iter().any(|v| v == "/data"),
        "VOLUME /data missing: {volumes:?}"
    );
    // The store is stanchion's default, not an ENV: a config file's `dir`
    // must still win over it (defaults < file < env < flags).
    let env = image_env();
    for name in ["STANCHION_DIR", "STANCHION_STORE"] {
        assert!(
            !env.contains_key(name),
            "ENV {name} would override stan.conf"
        );
    }
    let settings = crate::settings::resolve(None, &env, &BTreeMap::new(), &[]);
    let dir = settings.get("dir").expect("a default dir");
    let workdir = runtime(&dockerfile_stages(), "WORKDIR")
        .last()
        .map(|w| w.to_string())
        .expect("a runtime WORKDIR");
    let store = std::path::Path::new(&workdir).join(dir.trim_start_matches("./"));
    assert!(
        volumes.iter().any(|v| std::path::Path::new(v) == store),
        "the default store dir {dir} from WORKDIR {workdir} is {}, not a VOLUME ({volumes:?})",
        store.display()
    );
}

#[test]
fn dockerfile_exposes_the_monitoring_port() {
    let stages = dockerfile_stages();
    // From the default arguments, as the NSS image has it: an ENV would
    // override a config file's `http` port.
    assert!(
        !image_env().contains_key("STANCHION_HTTP_PORT"),
        "ENV STANCHION_HTTP_PORT would override stan.conf's http port"
    );
    let cmd = runtime(&stages, "CMD");
    let args = cmd
        .last()
        .and_then(|c| exec_form(c))
        .unwrap_or_else(|| panic!("no exec-form CMD: {cmd:?}"));
    let port = crate::settings::resolve(
        None,
        &image_env(),
        &BTreeMap::new(),
        &crate::settings::parse_flags(&args),
    )
    .http_port()
    .to_string();
    let exposed: Vec<&str> = runtime(&stages, "EXPOSE")
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(|p| p.trim_end_matches("/tcp"))
        .collect();
    assert!(
        exposed.contains(&port.as_str()),
        "EXPOSE {exposed:?} lacks the CMD's monitoring port {port}"
    );
    assert_eq!(port, "8222", "the NSS image's monitoring port");
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
