//! The settings being built: a [`Reader`] collects canonical values and
//! ignored keys, and `map_file` decides which block of the file is read
//! (the `streaming` block, or the whole file without one).
//!
//! What each key means is [`super::keys`]' and [`super::sections`]'.

use std::collections::BTreeMap;

use figment::value::{Dict, Value as FigValue};

use super::checks::{boolean, go_duration, invalid, string};
use super::{Ignored, NssFile, Origin, Result, NATS_SERVER_PART, ONLY_VARIABLE, UNKNOWN};
use crate::config::nats_conf::{Entry, Kind, Map};

pub(super) fn map_file(root: &Map) -> Result<NssFile> {
    let mut reader = Reader {
        values: Dict::new(),
        origins: BTreeMap::new(),
        ignored: Vec::new(),
    };
    let streaming = root
        .iter()
        .rev()
        .find(|e| e.key.eq_ignore_ascii_case("streaming"));
    match streaming {
        Some(block) => {
            let Kind::Map(inner) = &block.value.kind else {
                let msg = format!(
                    "expected streaming section to be a map/struct, got {}",
                    block.value.kind
                );
                return Err(invalid(block, msg));
            };
            for e in root {
                let name = e.key.to_ascii_lowercase();
                if name == "streaming" {
                    continue;
                }
                if !reader.monitoring(e, &name, e.key.clone())? {
                    let why = if e.used_as_variable {
                        ONLY_VARIABLE
                    } else {
                        NATS_SERVER_PART
                    };
                    reader.ignore(e, e.key.clone(), why);
                }
            }
            reader.streaming(inner, &format!("{}.", block.key))?;
        }
        None => reader.streaming(root, "")?,
    }
    Ok(NssFile {
        values: reader.values,
        origins: reader.origins,
        ignored: reader.ignored,
    })
}

/// An [`NssFile`] being read.
pub(super) struct Reader {
    /// Settings so far, under canonical names; [`super::sections`] merges
    /// into `channels`.
    pub(super) values: Dict,
    /// Where each of `values` was written.
    origins: BTreeMap<String, Origin>,
    /// Keys ignored so far, in file order.
    ignored: Vec<Ignored>,
}

impl Reader {
    /// Sets the canonical setting `key`, read from `e`, which a later key
    /// of the file may override.
    pub(super) fn put(&mut self, e: &Entry, key: &str, value: impl Into<FigValue>) {
        self.values.insert(key.to_string(), value.into());
        let origin = Origin {
            file: e.value.file.to_path_buf(),
            line: e.line,
        };
        self.origins.insert(key.to_string(), origin);
    }

    pub(super) fn ignore(&mut self, e: &Entry, key: String, why: &'static str) {
        self.ignored.push(Ignored {
            key,
            file: e.value.file.to_path_buf(),
            line: e.line,
            why,
        });
    }

    pub(super) fn unknown(&mut self, e: &Entry, key: String) {
        let why = if e.used_as_variable {
            ONLY_VARIABLE
        } else {
            UNKNOWN
        };
        self.ignore(e, key, why);
    }

    pub(super) fn string(&mut self, e: &Entry, to: &str) -> Result<()> {
        let text = string(e)?.to_string();
        self.put(e, to, text);
        Ok(())
    }

    pub(super) fn boolean(&mut self, e: &Entry, to: &str) -> Result<()> {
        let b = boolean(e)?;
        self.put(e, to, b);
        Ok(())
    }

    pub(super) fn duration(&mut self, e: &Entry, to: &str) -> Result<()> {
        let text = go_duration(e, false)?.to_string();
        self.put(e, to, text);
        Ok(())
    }
}
