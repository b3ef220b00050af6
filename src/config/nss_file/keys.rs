//! The streaming options' keys: NSS's names and aliases for each, mapped
//! onto stanchion's canonical names, and nats-server's monitoring keys,
//! which stanchion serves too.
//!
//! Sections with keys of their own are [`super::sections`]'; the checks are
//! [`super::checks`]'.

use super::checks::{
    host_port, in_range, int, int_in, invalid, parses_as, string, u32_max, usize_max, wrong_type,
};
use super::reader::Reader;
use super::sections::check_sql;
use super::{NssFileError, Result, NO_HTTPS, NO_SQL, NO_SYSLOG};
use crate::config::nats_conf::{Entry, Kind, Map};
use crate::config::{size, LogFormat, StoreKind};

/// The range of `http_port`: 0 disables monitoring, -1 picks a free port.
const HTTP_PORTS: (i64, i64) = (-1, 65535);

impl Reader {
    /// The streaming options in `map`; `prefix` is the dotted path to it.
    pub(super) fn streaming(&mut self, map: &Map, prefix: &str) -> Result<()> {
        for e in map {
            let path = format!("{prefix}{}", e.key);
            let name = e.key.to_ascii_lowercase();
            match name.as_str() {
                "id" | "cid" | "cluster_id" => self.string(e, "cluster_id")?,
                "discover_prefix" => self.string(e, "discover_prefix")?,
                "st" | "store_type" | "store" | "storetype" => {
                    let store = parses_as::<StoreKind>(e)?.to_string();
                    self.put(e, "store", store);
                }
                "dir" | "datastore" => self.string(e, "dir")?,
                "sd" | "stan_debug" => self.boolean(e, "stan_debug")?,
                "sv" | "stan_trace" => self.boolean(e, "stan_trace")?,
                "ns" | "nats_server" | "nats_server_url" => self.nats_server(e)?,
                "credentials" => self.string(e, "credentials")?,
                "nkey_seed_file" => self.string(e, "nkey_seed_file")?,
                "username" | "user" => self.string(e, "user")?,
                "password" | "pass" => self.string(e, "pass")?,
                "token" => self.string(e, "auth")?,
                "secure" => self.boolean(e, "secure")?,
                "tls" => self.tls(e, &path)?,
                "hbi" | "hb_interval" | "server_to_client_hb_interval" => {
                    self.duration(e, "hb_interval")?
                }
                "hbt" | "hb_timeout" | "server_to_client_hb_timeout" => {
                    self.duration(e, "hb_timeout")?
                }
                "hbf" | "hb_fail_count" | "server_to_client_hb_fail_count" => {
                    let n = int_in(e, 0, u32_max())?;
                    self.put(e, "hb_fail_count", n);
                }
                "replace_durable"
                | "replace_durables"
                | "replace_duplicate_durable"
                | "replace_duplicate_durables" => self.boolean(e, "replace_durable")?,
                "limits" | "store_limits" | "storelimits" => self.store_limits(e, &path)?,
                "file" | "file_options" => self.file_options(e, &path)?,
                "cache_capacity" => self.cache_capacity(e)?,
                "io_batch_size" => {
                    let n = int(e)?;
                    if n < 0 {
                        return Err(invalid(
                            e,
                            format!("io batch size cannot be negative ({n})"),
                        ));
                    }
                    let n = in_range(e, n, 0, usize_max())?;
                    self.put(e, "io_batch_size", n);
                }
                "log_format" => {
                    let format = parses_as::<LogFormat>(e)?.to_string();
                    self.put(e, "log_format", format);
                }
                "connection_name" => self.string(e, "connection_name")?,
                "ft_group" | "ft_group_name" => self.string(e, "ft_group")?,
                "partitioning" => self.boolean(e, "partitioning")?,
                "cluster" => self.cluster(e, &path)?,
                "sql" | "sql_options" => {
                    check_sql(e)?;
                    self.ignore(e, path, NO_SQL);
                }
                "syslog_name" => {
                    string(e)?;
                    self.ignore(e, path, NO_SYSLOG);
                }
                "encrypt" => self.boolean(e, "encrypt")?,
                "encryption_cipher" => {
                    let cipher = string(e)?;
                    if let Err(err) = crate::crypto::Cipher::parse(cipher) {
                        return Err(invalid(e, err.to_string()));
                    }
                    self.put(e, "encryption_cipher", cipher.to_string());
                }
                "encryption_key" => self.string(e, "encryption_key")?,
                _ => {
                    if !self.monitoring(e, &name, path.clone())? {
                        self.unknown(e, path);
                    }
                }
            }
        }
        Ok(())
    }

    /// nats-server's monitoring keys, which stanchion serves too; false if
    /// `name` is not one.
    pub(super) fn monitoring(&mut self, e: &Entry, name: &str, path: String) -> Result<bool> {
        match name {
            "http_port" | "monitor_port" => {
                let port = int_in(e, HTTP_PORTS.0, HTTP_PORTS.1)?;
                self.put(e, "http_port", port);
            }
            "http_host" => self.string(e, "http_host")?,
            "http" => match &e.value.kind {
                Kind::Integer(port) => {
                    let port = in_range(e, *port, HTTP_PORTS.0, HTTP_PORTS.1)?;
                    self.put(e, "http_port", port);
                }
                Kind::String(listen) => {
                    let (host, port) = host_port(e, listen)?;
                    let port = in_range(e, port, HTTP_PORTS.0, HTTP_PORTS.1)?;
                    self.put(e, "http_host", host);
                    self.put(e, "http_port", port);
                }
                _ => return Err(wrong_type(e, "string")),
            },
            "https" | "https_port" => self.ignore(e, path, NO_HTTPS),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `nats_server_url`: a URL or comma-separated URLs, or an array of
    /// them, which is joined with commas.
    fn nats_server(&mut self, e: &Entry) -> Result<()> {
        let urls = match &e.value.kind {
            Kind::String(url) => url.clone(),
            Kind::Array(items) => {
                let mut urls = Vec::with_capacity(items.len());
                for item in items {
                    match &item.kind {
                        Kind::String(url) => urls.push(url.as_str()),
                        other => {
                            return Err(NssFileError::WrongType {
                                file: item.file.to_path_buf(),
                                line: item.line,
                                key: e.key.clone(),
                                expected: "string",
                                got: other.type_name(),
                            })
                        }
                    }
                }
                urls.join(",")
            }
            _ => return Err(wrong_type(e, "string")),
        };
        self.put(e, "nats_server", urls);
        Ok(())
    }

    /// `cache_capacity`: bytes, as a (size-suffixed) integer or a size
    /// string.
    fn cache_capacity(&mut self, e: &Entry) -> Result<()> {
        let bytes = match &e.value.kind {
            Kind::Integer(n) => u64::try_from(*n)
                .map_err(|_| invalid(e, format!("cache capacity cannot be negative ({n})")))?,
            Kind::String(text) => size::parse(text).map_err(|err| invalid(e, err.to_string()))?,
            _ => return Err(wrong_type(e, "int64")),
        };
        self.put(e, "cache_capacity", bytes);
        Ok(())
    }
}
