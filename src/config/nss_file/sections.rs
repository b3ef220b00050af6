//! The streaming block's sections: `tls`, `store_limits` (global and
//! per-channel limits), `file_options`, and `cluster` and `sql_options`,
//! which are only type-checked as NSS does, since stanchion implements
//! neither.
//!
//! Called from [`super::keys`]; the checks are [`super::checks`]'.

use figment::value::{Dict, Value as FigValue};

use super::checks::{
    boolean, go_duration, in_range, int, invalid, is_channel_pattern, section, string, u32_max,
    wrong_type,
};
use super::reader::Reader;
use super::{NssFileError, Result, FILE_TUNING, NO_CLUSTERING, RAFT_TUNING};
use crate::config::nats_conf::{Entry, Kind};

impl Reader {
    pub(super) fn tls(&mut self, e: &Entry, path: &str) -> Result<()> {
        for t in section(e, "TLS")? {
            let to = match t.key.to_ascii_lowercase().as_str() {
                "client_cert" => "tls_client_cert",
                "client_key" => "tls_client_key",
                "client_ca" | "client_cacert" => "tls_client_cacert",
                "server_name" | "server_hostname" => "tls_server_name",
                "skip_verify" | "insecure" => {
                    self.boolean(t, "tls_insecure")?;
                    continue;
                }
                _ => {
                    self.unknown(t, format!("{path}.{}", t.key));
                    continue;
                }
            };
            self.string(t, to)?;
        }
        Ok(())
    }

    /// The global limits, flat under their canonical names, and the
    /// per-channel ones as a `channels` dict.
    pub(super) fn store_limits(&mut self, e: &Entry, path: &str) -> Result<()> {
        for l in section(e, "store limits")? {
            let name = l.key.to_ascii_lowercase();
            match name.as_str() {
                "mc" | "max_channels" | "maxchannels" => {
                    let n = int(l)?;
                    if n < 0 {
                        let msg = format!("max channels limit cannot be negative ({n})");
                        return Err(invalid(l, msg));
                    }
                    let n = in_range(l, n, 0, u32_max())?;
                    self.put(l, "max_channels", n);
                }
                "channels" | "channels_limits" | "channelslimits" | "per_channel"
                | "per_channel_limits" => self.per_channel(l, &format!("{path}.{}", l.key))?,
                _ => match limit(l, &name, true)? {
                    Some((to, value)) => self.put(l, to, value),
                    None => self.unknown(l, format!("{path}.{}", l.key)),
                },
            }
        }
        Ok(())
    }

    /// `channels { pattern { limits } }`, as written: NSS's 0 ("unlimited
    /// for this limit") and absent ("inherit") are left to the caller.
    fn per_channel(&mut self, e: &Entry, path: &str) -> Result<()> {
        let mut channels = match self.values.remove("channels") {
            Some(FigValue::Dict(_, dict)) => dict,
            _ => Dict::new(),
        };
        for c in section(e, "per channel limits")? {
            let Kind::Map(limits) = &c.value.kind else {
                let msg = format!(
                    "expected channel limits to be a map/struct, got {}",
                    c.value.kind
                );
                return Err(invalid(c, msg));
            };
            if !is_channel_pattern(&c.key) {
                return Err(invalid(c, format!("invalid channel name {:?}", c.key)));
            }
            let mut dict = Dict::new();
            for l in limits {
                match limit(l, &l.key.to_ascii_lowercase(), false)? {
                    Some((to, value)) => {
                        dict.insert(to.to_string(), value);
                    }
                    None => self.unknown(l, format!("{path}.{}.{}", c.key, l.key)),
                }
            }
            channels.insert(c.key.clone(), FigValue::from(dict));
        }
        self.put(e, "channels", channels);
        Ok(())
    }

    /// `file_options`: `sync` is stanchion's `file_sync`; the rest is the
    /// reference's file-store tuning, type-checked and ignored.
    pub(super) fn file_options(&mut self, e: &Entry, path: &str) -> Result<()> {
        for f in section(e, "file options")? {
            let fpath = format!("{path}.{}", f.key);
            match f.key.to_ascii_lowercase().as_str() {
                "sync" | "do_sync" | "sync_on_flush" => {
                    self.boolean(f, "file_sync")?;
                    continue;
                }
                "compact" | "compact_enabled" | "crc" | "do_crc" => {
                    boolean(f)?;
                }
                "compact_frag"
                | "compact_fragmentation"
                | "compact_interval"
                | "compact_min_size"
                | "buffer_size"
                | "crc_poly"
                | "slice_max_msgs"
                | "slice_max_count"
                | "slice_msgs"
                | "slice_count"
                | "slice_max_bytes"
                | "slice_max_size"
                | "slice_bytes"
                | "slice_size"
                | "file_descriptors_limit"
                | "fds_limit"
                | "parallel_recovery"
                | "file_read_buffer_size"
                | "read_buffer_size" => {
                    int(f)?;
                }
                "slice_max_age" | "slice_age" | "slice_max_time" | "slice_time_limit"
                | "file_auto_sync" | "auto_sync" => {
                    go_duration(f, true)?;
                }
                "slice_archive_script" | "slice_archive" | "slice_script" => {
                    string(f)?;
                }
                _ => {
                    self.unknown(f, fpath);
                    continue;
                }
            }
            self.ignore(f, fpath, FILE_TUNING);
        }
        Ok(())
    }
}

/// A store limit under any of NSS's names: its canonical name and value,
/// or `None` if `name` is not a limit. Global limits may not be negative
/// (nor `max_subs` exceed its `u32`); per-channel ones may (NSS reads that
/// as unlimited).
fn limit(e: &Entry, name: &str, global: bool) -> Result<Option<(&'static str, FigValue)>> {
    let (to, what) = match name {
        "msu" | "max_subs" | "max_subscriptions" | "maxsubscriptions" => {
            ("max_subs", "max subscriptions")
        }
        "mm" | "max_msgs" | "maxmsgs" | "max_count" | "maxcount" => ("max_msgs", "max messages"),
        "mb" | "max_bytes" | "maxbytes" => ("max_bytes", "max bytes"),
        "ma" | "max_age" | "maxage" => ("max_age", "max age"),
        "mi" | "max_inactivity" | "maxinactivity" => ("max_inactivity", "max inactivity"),
        _ => return Ok(None),
    };
    let value = if matches!(to, "max_age" | "max_inactivity") {
        FigValue::from(go_duration(e, !global)?)
    } else {
        let n = int(e)?;
        if global && n < 0 {
            return Err(invalid(e, format!("{what} limit cannot be negative ({n})")));
        }
        if global && to == "max_subs" {
            in_range(e, n, 0, u32_max())?;
        }
        FigValue::from(n)
    };
    Ok(Some((to, value)))
}

/// Type-checks the `cluster` section as NSS does; none of it is used.
pub(super) fn check_cluster(e: &Entry) -> Result<()> {
    for c in section(e, "cluster")? {
        match c.key.to_ascii_lowercase().as_str() {
            "node_id" | "log_path" => {
                string(c)?;
            }
            "bootstrap"
            | "sync"
            | "proceed_on_restore_failure"
            | "allow_add_remove_node"
            | "raft_logging"
            | "bolt_free_list_sync"
            | "bolt_free_list_map"
            | "nodes_connections" => {
                boolean(c)?;
            }
            "log_cache_size" | "log_snapshots" | "trailing_logs" => {
                int(c)?;
            }
            "raft_heartbeat_timeout"
            | "raft_election_timeout"
            | "raft_lease_timeout"
            | "raft_commit_timeout" => {
                go_duration(c, true)?;
            }
            "peers" => {
                let Kind::Array(peers) = &c.value.kind else {
                    return Err(wrong_type(c, "slice"));
                };
                if let Some(peer) = peers.iter().find(|p| !matches!(p.kind, Kind::String(_))) {
                    return Err(NssFileError::WrongType {
                        file: peer.file.to_path_buf(),
                        line: peer.line,
                        key: c.key.clone(),
                        expected: "string",
                        got: peer.kind.type_name(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl Reader {
    /// The `cluster` section: type-checked whole as NSS does; the keys of
    /// hashicorp/raft's own tuning are logged as ignored.
    pub(super) fn cluster(&mut self, e: &Entry, path: &str) -> Result<()> {
        check_cluster(e)?;
        // As in NSS, the block itself turns clustering on.
        self.put(e, "clustered", true);
        for c in section(e, "cluster")? {
            match c.key.to_ascii_lowercase().as_str() {
                "node_id" => self.string(c, "cluster_node_id")?,
                "log_path" => self.string(c, "cluster_log_path")?,
                "bootstrap" => self.boolean(c, "cluster_bootstrap")?,
                "sync" => self.boolean(c, "cluster_sync")?,
                "raft_logging" => self.boolean(c, "cluster_raft_logging")?,
                "allow_add_remove_node" => self.boolean(c, "cluster_allow_add_remove_node")?,
                "trailing_logs" => {
                    let n = int(c)?;
                    self.put(c, "cluster_trailing_logs", n);
                }
                "raft_heartbeat_timeout" => {
                    self.duration(c, "cluster_raft_heartbeat_timeout")?;
                }
                "raft_election_timeout" => self.duration(c, "cluster_raft_election_timeout")?,
                "peers" => {
                    let Kind::Array(peers) = &c.value.kind else {
                        return Err(wrong_type(c, "slice"));
                    };
                    let names: Vec<String> = peers
                        .iter()
                        .filter_map(|p| match &p.kind {
                            Kind::String(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    self.put(c, "cluster_peers", names.join(","));
                }
                "proceed_on_restore_failure" => {
                    self.ignore(c, format!("{path}.{}", c.key), NO_CLUSTERING);
                }
                _ => self.ignore(c, format!("{path}.{}", c.key), RAFT_TUNING),
            }
        }
        Ok(())
    }
}

/// Type-checks the `sql_options` section as NSS does; none of it is used.
pub(super) fn check_sql(e: &Entry) -> Result<()> {
    for s in section(e, "SQL options")? {
        match s.key.to_ascii_lowercase().as_str() {
            "driver" | "source" => {
                string(s)?;
            }
            "no_caching" => {
                boolean(s)?;
            }
            "max_open_conns" | "max_conns" | "bulk_insert_limit" => {
                int(s)?;
            }
            _ => {}
        }
    }
    Ok(())
}
