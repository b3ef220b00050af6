//! Store limits: the global [`Limit`], the per-channel overrides of a config
//! file's `store_limits.channels` map, and their inheritance, exactly as NSS
//! v0.23.2's `stores/limits.go` builds them.
//!
//! Owns the rules only: pattern validation, the literal-count check against
//! `max_channels`, the inheritance chain, the lookup for a channel name and
//! the `limits` object of `/streaming/storez`. Pure: no I/O. Its parts:
//! `sublist` (the trie port below, a leaf), `table` (the startup limits
//! table, the only caller of [`super::duration`], for Go's duration text)
//! and `tests`.
//!
//! NSS orders patterns with its subscription trie (`util/sublist.go`), and
//! that trie's quirks decide who inherits from whom (a wildcard token is
//! matched as a literal `*` or `>` by the patterns above it, so `foo.*`
//! inherits from `foo.>`). `sublist::Sublist` is a port of just the parts
//! NSS uses, so the chains come out the same.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use sublist::Sublist;

mod sublist;
mod table;
#[cfg(test)]
mod tests;

/// NSS's default `max_channels` (`stores.DefaultStoreLimits`); the table
/// marks a value equal to it with `*`.
pub const DEFAULT_MAX_CHANNELS: u32 = 100;

/// Effective limits of a channel, or the global ones. `0` means unlimited
/// for each field, as in NSS's `ChannelLimits` after `Build()`.
///
/// Serializes as NSS's `ChannelLimits` JSON (durations in nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// Messages kept per channel; older ones are dropped past it.
    pub max_msgs: u64,
    /// Payload bytes kept per channel; older messages are dropped past it.
    pub max_bytes: u64,
    /// How long a message is kept.
    #[serde(serialize_with = "nanos")]
    pub max_age: Duration,
    /// Subscriptions a channel accepts.
    #[serde(rename = "max_subscriptions")]
    pub max_subs: u32,
    /// How long a channel with no subscription and no new message lives.
    #[serde(serialize_with = "nanos")]
    pub max_inactivity: Duration,
}

impl Limit {
    /// NSS's `DefaultStoreLimits`; the table marks global values equal to
    /// these with `*`.
    pub const DEFAULT: Limit = Limit {
        max_msgs: 1_000_000,
        max_bytes: 1_024_000_000,
        max_age: Duration::ZERO,
        max_subs: 1000,
        max_inactivity: Duration::ZERO,
    };

    /// No limit at all.
    pub const UNLIMITED: Limit = Limit {
        max_msgs: 0,
        max_bytes: 0,
        max_age: Duration::ZERO,
        max_subs: 0,
        max_inactivity: Duration::ZERO,
    };
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One `channels` entry as a config file writes it: `None` inherits from
/// the enclosing pattern (or the global limits), `Some(0)` makes that one
/// limit unlimited, `Some(n)` sets it to `n`.
///
/// NSS's config reader stores `Some(0)` as `-1`; its `Build()` turns that
/// into `0` (unlimited) and an absent key into the parent's value, which is
/// what [`ChannelOverrides::inherit`] does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelOverrides {
    /// `max_msgs` (`mm`, `maxmsgs`, `max_count`, `maxcount`).
    pub max_msgs: Option<u64>,
    /// `max_bytes` (`mb`, `maxbytes`).
    pub max_bytes: Option<u64>,
    /// `max_age` (`ma`, `maxage`).
    pub max_age: Option<Duration>,
    /// `max_subs` (`msu`, `max_subscriptions`, `maxsubscriptions`).
    pub max_subs: Option<u32>,
    /// `max_inactivity` (`mi`, `maxinactivity`).
    pub max_inactivity: Option<Duration>,
}

impl ChannelOverrides {
    /// The effective limits: each set value (`0` = unlimited) or else the
    /// parent's (NSS `inheritLimits`).
    pub fn inherit(&self, parent: &Limit) -> Limit {
        Limit {
            max_msgs: self.max_msgs.unwrap_or(parent.max_msgs),
            max_bytes: self.max_bytes.unwrap_or(parent.max_bytes),
            max_age: self.max_age.unwrap_or(parent.max_age),
            max_subs: self.max_subs.unwrap_or(parent.max_subs),
            max_inactivity: self.max_inactivity.unwrap_or(parent.max_inactivity),
        }
    }
}

/// Why [`StoreLimits::build`] refused the limits. The texts are NSS's
/// (`stores/limits.go`, also `server/conf.go` for the pattern check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// Not a channel name even with wildcards: an empty token, a `/`, a `*`
    /// or `>` that is not a whole token, or a `>` that is not the last.
    #[error("invalid channel name {0:?}")]
    InvalidPattern(String),
    /// More literal patterns than `max_channels` allows (wildcard patterns
    /// do not count). NSS's text gives the count, not the pattern.
    #[error("too many channels defined ({count}). The max channels limit is set to {max}")]
    TooManyChannels {
        /// Literal patterns counted when the limit was passed (`max + 1`).
        count: u64,
        /// The `max_channels` limit.
        max: u32,
        /// The literal pattern that passed the limit (in name order).
        pattern: String,
    },
}

/// Validated limits with inheritance applied (NSS's `StoreLimits` after
/// `Build()`). Cheap to query; built once at startup.
#[derive(Debug, Clone)]
pub struct StoreLimits {
    /// The global limits, used by channels no pattern matches.
    global: Limit,
    /// How many channels may exist (0 = unlimited).
    max_channels: u32,
    /// Each pattern and its effective limits, in name order; the indices
    /// are the elements stored in `trie`.
    channels: Vec<(String, Limit)>,
    /// Every pattern, for NSS's match order.
    trie: Sublist,
}

impl StoreLimits {
    /// Validates `per_channel` and applies NSS's inheritance.
    ///
    /// Each pattern's matching patterns, as NSS's trie orders them (wider
    /// first), form a chain: the first inherits from `global`, each next one
    /// from the previous.
    ///
    /// # Errors
    ///
    /// [`LimitsError::InvalidPattern`] for a key that is not a channel name
    /// with wildcards; [`LimitsError::TooManyChannels`] when `max_channels`
    /// is not 0 and there are more literal keys than it.
    pub fn build(
        global: Limit,
        max_channels: u32,
        per_channel: BTreeMap<String, ChannelOverrides>,
    ) -> Result<StoreLimits, LimitsError> {
        /// A pattern on its way through NSS's `Build()`.
        struct Entry {
            name: String,
            overrides: ChannelOverrides,
            literal: bool,
            /// The effective limits, once inheritance reached it.
            built: Option<Limit>,
        }
        let mut trie = Sublist::default();
        let mut literals = 0u64;
        let mut entries = Vec::with_capacity(per_channel.len());
        for (name, overrides) in per_channel {
            if !is_valid_pattern(&name) {
                return Err(LimitsError::InvalidPattern(name));
            }
            let literal = !name.contains(['*', '>']);
            if literal {
                literals += 1;
                if max_channels > 0 && literals > u64::from(max_channels) {
                    return Err(LimitsError::TooManyChannels {
                        count: literals,
                        max: max_channels,
                        pattern: name,
                    });
                }
            }
            trie.insert(&name, entries.len());
            entries.push(Entry {
                name,
                overrides,
                literal,
                built: None,
            });
        }
        // NSS `applyInheritance`.
        for subject in trie.subjects() {
            let chain = trie.matches(&subject);
            let Some(&first) = chain.first() else {
                continue;
            };
            if entries[first].literal && entries[first].built.is_some() {
                continue;
            }
            let mut prev = global;
            for &i in &chain {
                let e = &mut entries[i];
                prev = *e.built.get_or_insert_with(|| e.overrides.inherit(&prev));
            }
        }
        let channels = entries
            .into_iter()
            .map(|e| {
                // Every pattern matches itself, so all were reached.
                let limit = e.built.unwrap_or_else(|| e.overrides.inherit(&global));
                (e.name, limit)
            })
            .collect();
        Ok(StoreLimits {
            global,
            max_channels,
            channels,
            trie,
        })
    }

    /// The global limits.
    pub fn global(&self) -> &Limit {
        &self.global
    }

    /// How many channels may exist (0 = unlimited).
    pub fn max_channels(&self) -> u32 {
        self.max_channels
    }

    /// Each pattern with its effective limits, in name order. In
    /// partitioning mode these are the channels the server owns.
    pub fn channels(&self) -> impl Iterator<Item = (&str, &Limit)> {
        self.channels
            .iter()
            .map(|(name, limit)| (name.as_str(), limit))
    }

    /// The limits a channel named `name` gets when created: those of the
    /// last (most specific) matching pattern, else the global ones (NSS
    /// `getChannelLimits`).
    pub fn for_channel(&self, name: &str) -> Limit {
        self.matching_index(name)
            .map_or(self.global, |i| self.channels[i].1)
    }

    /// The pattern whose limits [`StoreLimits::for_channel`] gives `name`,
    /// for logs; `None` when the global limits apply.
    pub fn matching_pattern(&self, name: &str) -> Option<&str> {
        self.matching_index(name)
            .map(|i| self.channels[i].0.as_str())
    }

    fn matching_index(&self, name: &str) -> Option<usize> {
        self.trie.matches(name).last().copied()
    }
}

/// NSS's `/streaming/storez` `limits` object: `max_channels`, the global
/// limits flattened (durations in nanoseconds), and `channels` (omitted when
/// empty) mapping each pattern to its limits after inheritance, where `0`
/// is unlimited (NSS reports its built map, so no `-1` appears).
impl Serialize for StoreLimits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Channels<'a>(&'a [(String, Limit)]);
        impl Serialize for Channels<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(name, limit)| (name, limit)))
            }
        }
        let g = &self.global;
        let mut st = s.serialize_struct("StoreLimits", 7)?;
        st.serialize_field("max_channels", &self.max_channels)?;
        st.serialize_field("max_msgs", &g.max_msgs)?;
        st.serialize_field("max_bytes", &g.max_bytes)?;
        st.serialize_field("max_age", &go_nanos(g.max_age))?;
        st.serialize_field("max_subscriptions", &g.max_subs)?;
        st.serialize_field("max_inactivity", &go_nanos(g.max_inactivity))?;
        if self.channels.is_empty() {
            st.skip_field("channels")?;
        } else {
            st.serialize_field("channels", &Channels(&self.channels))?;
        }
        st.end()
    }
}

/// A Go `time.Duration`'s integer: nanoseconds, saturating.
fn go_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(go_nanos(*d))
}

/// NSS `util.IsChannelNameValid(name, true)`, byte for byte.
fn is_valid_pattern(name: &str) -> bool {
    let b = name.as_bytes();
    if b.first().is_none_or(|&c| c == b'.') {
        return false;
    }
    b.iter().enumerate().all(|(i, &c)| {
        let next = b.get(i + 1).copied();
        match c {
            b'/' => false,
            b'.' => next.is_some_and(|n| n != b'.'),
            b'*' | b'>' => {
                (i == 0 || b[i - 1] == b'.')
                    && (c == b'*' || next.is_none())
                    && next.is_none_or(|n| n == b'.')
            }
            _ => true,
        }
    })
}
