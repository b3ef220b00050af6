//! Credentials for nats-server: picks them as nats.go's `connectProto`
//! does (those of a URL first, else `user`/`pass`, `auth` and
//! `nkey_seed_file`; the `.creds` JWT in every case) and sets them on the
//! connect options.
//!
//! Reads the NKey seed and `.creds` files the configuration names; errors
//! name the file, never its contents. Calls only async-nats's options and
//! `nkeys`; nothing here logs a credential.

use std::path::Path;

use async_nats::ConnectOptions;

use super::url::UrlAuth;
use super::JoinError;
use crate::config::Config;

/// Sets the credentials, as nats.go's `connectProto` picks them: those of
/// the URL if it has any, else user/password, token and NKey from the
/// configuration; the `.creds` JWT in every case.
pub(super) fn apply_auth(
    mut options: ConnectOptions,
    config: &Config,
    url_auth: Option<UrlAuth>,
) -> Result<ConnectOptions, JoinError> {
    let has_nkey = match url_auth {
        Some(auth) => {
            if config.user.is_some()
                || config.pass.is_some()
                || config.auth.is_some()
                || config.nkey_seed_file.is_some()
            {
                tracing::warn!(
                    "nats_server carries credentials: user, pass, auth and nkey_seed_file are ignored (as in NSS)"
                );
            }
            options = match auth {
                UrlAuth::UserPass { user, pass } => options.user_and_password(user, pass),
                UrlAuth::Token(token) => options.token(token),
            };
            false
        }
        None => {
            if config.user.is_some() || config.pass.is_some() {
                options = options.user_and_password(
                    config.user.clone().unwrap_or_default(),
                    config
                        .pass
                        .as_ref()
                        .map(|p| p.expose().to_string())
                        .unwrap_or_default(),
                );
            }
            if let Some(token) = &config.auth {
                options = options.token(token.expose().to_string());
            }
            if let Some(path) = &config.nkey_seed_file {
                options = options.nkey(read_seed(path)?);
            }
            config.nkey_seed_file.is_some()
        }
    };
    if let Some(path) = &config.credentials {
        if has_nkey {
            return Err(JoinError::Invalid(
                "nkey_seed_file and credentials cannot be used together \
                 (nats: user callback defined with nkey)"
                    .into(),
            ));
        }
        let file_error = |reason: String| JoinError::File {
            what: "credentials file",
            path: path.clone(),
            reason,
        };
        let contents = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        // async-nats's parse errors describe the format, never the contents.
        options = options
            .credentials(&contents)
            .map_err(|e| file_error(e.to_string()))?;
    }
    Ok(options)
}

/// The NKey seed in `path`: the file's first line that is a valid seed, so
/// both a bare seed and a decorated one (as `nk` or `nsc` write) work.
fn read_seed(path: &Path) -> Result<String, JoinError> {
    let file_error = |reason: String| JoinError::File {
        what: "NKey seed file",
        path: path.to_path_buf(),
        reason,
    };
    let contents = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    contents
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with('S') && nkeys::KeyPair::from_seed(line).is_ok())
        .map(str::to_string)
        .ok_or_else(|| file_error("it holds no valid NKey seed".into()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::super::Plan;
    use super::*;

    #[test]
    fn seeds_are_found_bare_or_decorated() {
        let dir = tempfile::tempdir().unwrap();
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().unwrap();
        let bare = dir.path().join("bare.nk");
        std::fs::write(&bare, format!("{seed}\n")).unwrap();
        assert_eq!(read_seed(&bare).unwrap(), seed);
        let decorated = dir.path().join("decorated.nk");
        std::fs::write(
            &decorated,
            format!("-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"),
        )
        .unwrap();
        assert_eq!(read_seed(&decorated).unwrap(), seed);
    }

    #[test]
    fn an_nkey_and_a_creds_file_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed.nk");
        std::fs::write(&seed, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
        let mut c = config("nats://h");
        c.nkey_seed_file = Some(seed);
        c.credentials = Some(dir.path().join("user.creds"));
        let text = Plan::new(&c).err().unwrap().to_string();
        assert!(text.contains("cannot be used together"), "{text}");
    }
}
