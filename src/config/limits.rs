//! Store limits: the global [`Limit`], the per-channel overrides of a config
//! file's `store_limits.channels` map, and their inheritance, exactly as NSS
//! v0.23.2's `stores/limits.go` builds them.
//!
//! Owns the rules only: pattern validation, the literal-count check against
//! `max_channels`, the inheritance chain, the lookup for a channel name, the
//! startup limits table and the `limits` object of `/streaming/storez`. Pure:
//! no I/O; calls nothing but [`super::duration`] (Go's duration text).
//!
//! NSS orders patterns with its subscription trie (`util/sublist.go`), and
//! that trie's quirks decide who inherits from whom (a wildcard token is
//! matched as a literal `*` or `>` by the patterns above it, so `foo.*`
//! inherits from `foo.>`). [`Sublist`] is a port of just the parts NSS uses,
//! so the chains come out the same.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use super::duration::GoDuration;

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

    /// The startup table, one line per element, as NSS's
    /// `StoreLimits.Print` writes it: `*` marks global values equal to NSS's
    /// defaults; a pattern lists only the values that differ from those of
    /// the pattern before it in its chain, indented by its place in it.
    pub fn table(&self) -> Vec<String> {
        let title = "---------- Store Limits ----------";
        let mut max_len = title.len();
        let mut txt = vec![
            title.to_owned(),
            format!(
                "Channels:        {}",
                limit_str(
                    true,
                    u64::from(self.max_channels),
                    u64::from(DEFAULT_MAX_CHANNELS),
                    Kind::Count
                )
            ),
            "--------- Channels Limits --------".to_owned(),
        ];
        let names = [
            "  Subscriptions: ",
            "  Messages     : ",
            "  Bytes        : ",
            "  Age          : ",
            "  Inactivity   : ",
        ];
        let global = values(&self.global).into_iter();
        for ((name, (val, kind)), (def, _)) in names.iter().zip(global).zip(values(&Limit::DEFAULT))
        {
            txt.push(format!("{name}{}", limit_str(true, val, def, kind)));
        }
        if !self.channels.is_empty() {
            let max_levels = self.trie.num_levels();
            let mut lines = Vec::new();
            for subject in self.trie.subjects() {
                let chain = self.trie.matches(&subject);
                let mut parent = &self.global;
                for (level, &i) in chain.iter().enumerate() {
                    let (name, limit) = &self.channels[i];
                    if *name == subject {
                        let start = lines.len();
                        channel_lines(&mut lines, level, max_levels, name, limit, parent);
                        let longest = lines[start..].iter().map(String::len).max();
                        max_len = max_len.max(longest.unwrap_or(0));
                        break;
                    }
                    parent = limit;
                }
            }
            let title = " List of Channels ";
            let left = max_len.saturating_sub(title.len()) / 2;
            let right = max_len.saturating_sub(title.len() + left);
            txt.push(format!("{}{title}{}", "-".repeat(left), "-".repeat(right)));
            txt.append(&mut lines);
        }
        txt.push("-".repeat(max_len));
        txt
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

/// How the table prints a value (NSS `limitCount` and friends).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Count,
    Bytes,
    Duration,
}

/// A limit's values in table order, as Go's `int64`s.
fn values(l: &Limit) -> [(u64, Kind); 5] {
    [
        (u64::from(l.max_subs), Kind::Count),
        (l.max_msgs, Kind::Count),
        (l.max_bytes, Kind::Bytes),
        (go_nanos(l.max_age), Kind::Duration),
        (go_nanos(l.max_inactivity), Kind::Duration),
    ]
}

/// NSS `getLimitStr`: empty for a per-channel value equal to its parent's,
/// else the value right-aligned in 13 columns, `" *"` after a global value
/// equal to the default.
fn limit_str(global: bool, val: u64, parent: u64, kind: Kind) -> String {
    if !global && val == parent {
        return String::new();
    }
    let text = match (val, kind) {
        (0, _) => "unlimited".to_owned(),
        (v, Kind::Count) => v.to_string(),
        (v, Kind::Bytes) => friendly_bytes(v),
        (v, Kind::Duration) => GoDuration(Duration::from_nanos(v)).to_string(),
    };
    let inherited = if val == parent { " *" } else { "" };
    format!("{text:>13}{inherited}")
}

/// NSS `util.FriendlyBytes`: `512 B`, `9.77 MB` (powers of 1024). Uses
/// floats as Go does, so even its rounding at exact powers is the same.
fn friendly_bytes(bytes: u64) -> String {
    const PREFIXES: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Display only; Go converts to float64 the same way.
    #[allow(clippy::cast_precision_loss)]
    let f = bytes as f64;
    let ratio = f.ln() / 1024f64.ln();
    let (prefix, exp) = PREFIXES
        .iter()
        .zip(1..7)
        .rev()
        .find(|&(_, e)| ratio >= f64::from(e))
        .unwrap_or((&PREFIXES[0], 1));
    format!("{:.2} {prefix}B", f / 1024f64.powi(exp))
}

/// NSS `getChannelLimitsPrintLines`: the pattern, then one `|->` line per
/// value that differs from `parent`'s.
fn channel_lines(
    out: &mut Vec<String>,
    level: usize,
    max_levels: usize,
    name: &str,
    limit: &Limit,
    parent: &Limit,
) {
    let left = " ".repeat(level);
    let right = " ".repeat(max_levels.saturating_sub(level));
    out.push(format!("{left}{name}"));
    let labels = [
        "Subscriptions ",
        "Messages      ",
        "Bytes         ",
        "Age           ",
        "Inactivity    ",
    ];
    for (label, ((val, kind), (parent_val, _))) in labels
        .iter()
        .zip(values(limit).into_iter().zip(values(parent)))
    {
        let text = limit_str(false, val, parent_val, kind);
        if !text.is_empty() {
            out.push(format!("{left} |-> {label}{right}{text}"));
        }
    }
}

/// The parts of NSS's `util.Sublist` that limits use: a trie of patterns
/// (elements are indices), its `Match` with wildcard tokens of the subject
/// taken literally, `Subjects` (wider first) and `NumLevels`.
#[derive(Debug, Clone, Default)]
struct Sublist {
    root: Level,
}

#[derive(Debug, Clone, Default)]
struct Level {
    /// Literal tokens; sorted, where Go's map order is random (NSS's output
    /// order between sibling literals is unspecified).
    nodes: BTreeMap<String, Node>,
    pwc: Option<Box<Node>>,
    fwc: Option<Box<Node>>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Always present, as Go's `Insert` always creates it.
    next: Level,
    elements: Vec<usize>,
}

impl Level {
    fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }
}

impl Sublist {
    /// `subject` is a valid pattern.
    fn insert(&mut self, subject: &str, element: usize) {
        let mut level = &mut self.root;
        let mut tokens = subject.split('.').peekable();
        while let Some(token) = tokens.next() {
            let node: &mut Node = match token {
                "*" => level.pwc.get_or_insert_with(Box::default),
                ">" => level.fwc.get_or_insert_with(Box::default),
                _ => level.nodes.entry(token.to_owned()).or_default(),
            };
            if tokens.peek().is_none() {
                node.elements.push(element);
                return;
            }
            level = &mut node.next;
        }
    }

    /// NSS `Match`: wider patterns first; a literal `subject` ends with the
    /// pattern equal to it, if any.
    fn matches(&self, subject: &str) -> Vec<usize> {
        let tokens: Vec<&str> = subject.split('.').collect();
        let mut out = Vec::new();
        match_level(Some(&self.root), &tokens, &mut out);
        out
    }

    /// NSS `Subjects`: at each level `>` first, then the `*` subtree, then
    /// the literal subtrees.
    fn subjects(&self) -> Vec<String> {
        let mut out = Vec::new();
        subjects_of(&self.root, "", &mut out);
        out
    }

    /// NSS `NumLevels`: the depth of the deepest pattern.
    fn num_levels(&self) -> usize {
        visit_level(&self.root, 0)
    }
}

/// NSS `matchLevel`, including its quirk that the final `*` and literal
/// nodes are those of the last level visited.
fn match_level(mut level: Option<&Level>, tokens: &[&str], out: &mut Vec<usize>) {
    let mut pwc: Option<&Node> = None;
    let mut node: Option<&Node> = None;
    for (i, token) in tokens.iter().enumerate() {
        let Some(l) = level else {
            return;
        };
        if let Some(f) = &l.fwc {
            out.extend(&f.elements);
        }
        pwc = l.pwc.as_deref();
        if let Some(p) = pwc {
            match_level(Some(&p.next), &tokens[i + 1..], out);
        }
        node = l.nodes.get(*token);
        level = node.map(|n| &n.next);
    }
    if let Some(p) = pwc {
        out.extend(&p.elements);
    }
    if let Some(n) = node {
        out.extend(&n.elements);
    }
}

fn subjects_of(level: &Level, prefix: &str, out: &mut Vec<String>) {
    if level.is_empty() {
        return;
    }
    let join = |token: &str| {
        if prefix.is_empty() {
            token.to_owned()
        } else {
            format!("{prefix}.{token}")
        }
    };
    if level.fwc.is_some() {
        out.push(join(">"));
    }
    if let Some(p) = &level.pwc {
        let subject = join("*");
        if !p.elements.is_empty() {
            out.push(subject.clone());
        }
        subjects_of(&p.next, &subject, out);
    }
    for (token, n) in &level.nodes {
        let subject = join(token);
        if !n.elements.is_empty() {
            out.push(subject.clone());
        }
        subjects_of(&n.next, &subject, out);
    }
}

fn visit_level(level: &Level, depth: usize) -> usize {
    if level.is_empty() {
        return depth;
    }
    let depth = depth + 1;
    let children = level
        .nodes
        .values()
        .chain(level.pwc.as_deref())
        .chain(level.fwc.as_deref());
    children
        .map(|n| visit_level(&n.next, depth))
        .fold(depth, usize::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn build(
        global: Limit,
        max_channels: u32,
        entries: &[(&str, ChannelOverrides)],
    ) -> Result<StoreLimits, LimitsError> {
        let map = entries.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        StoreLimits::build(global, max_channels, map)
    }

    fn msgs(n: u64) -> ChannelOverrides {
        ChannelOverrides {
            max_msgs: Some(n),
            ..Default::default()
        }
    }

    /// PROTOCOL.md 3.2's example (`max_bytes: 10MB` is 10 MiB).
    fn example() -> StoreLimits {
        let global = Limit {
            max_msgs: 10_000,
            max_bytes: 10 * 1024 * 1024,
            max_age: HOUR,
            ..Limit::DEFAULT
        };
        let foo = ChannelOverrides {
            max_subs: Some(50),
            ..msgs(300)
        };
        let foo_bar = ChannelOverrides {
            max_age: Some(2 * HOUR),
            ..Default::default()
        };
        let temp = ChannelOverrides {
            max_inactivity: Some(HOUR),
            ..Default::default()
        };
        let entries = [
            ("foo", foo),
            ("baz", msgs(0)),
            ("foo.>", msgs(400)),
            ("foo.bar.>", foo_bar),
            ("temp.>", temp),
        ];
        build(global, 10, &entries).unwrap()
    }

    fn limit(max_msgs: u64, max_age: Duration, max_subs: u32, max_inactivity: Duration) -> Limit {
        Limit {
            max_msgs,
            max_bytes: 10 * 1024 * 1024,
            max_age,
            max_subs,
            max_inactivity,
        }
    }

    #[test]
    fn example_inheritance() {
        let l = example();
        let got: BTreeMap<&str, Limit> = l.channels().map(|(k, v)| (k, *v)).collect();
        let zero = Duration::ZERO;
        let want = BTreeMap::from([
            ("baz", limit(0, HOUR, 1000, zero)),
            ("foo", limit(300, HOUR, 50, zero)),
            ("foo.>", limit(400, HOUR, 1000, zero)),
            ("foo.bar.>", limit(400, 2 * HOUR, 1000, zero)),
            ("temp.>", limit(10_000, HOUR, 1000, HOUR)),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn lookups() {
        let l = example();
        let pattern = |name: &str| l.matching_pattern(name);
        assert_eq!(pattern("foo"), Some("foo"));
        assert_eq!(pattern("foo.x"), Some("foo.>"));
        assert_eq!(pattern("foo.bar"), Some("foo.>"));
        assert_eq!(pattern("foo.bar.baz"), Some("foo.bar.>"));
        assert_eq!(pattern("foo.bar.baz.q"), Some("foo.bar.>"));
        assert_eq!(pattern("temp.a.b"), Some("temp.>"));
        for global in ["temp", "other", "baz.x", "fo"] {
            assert_eq!(pattern(global), None, "{global}");
            assert_eq!(l.for_channel(global), *l.global());
        }
        let foo_bar = l.for_channel("foo.bar.x");
        assert_eq!((foo_bar.max_msgs, foo_bar.max_age), (400, 2 * HOUR));
        assert_eq!(l.for_channel("foo").max_subs, 50);
    }

    #[test]
    fn unlimited_is_per_limit() {
        let l = example();
        let baz = l.for_channel("baz");
        assert_eq!(baz.max_msgs, 0);
        assert_eq!(baz.max_bytes, 10 * 1024 * 1024);
        assert_eq!(baz.max_age, HOUR);
        assert_eq!(baz.max_subs, 1000);
    }

    #[test]
    fn too_many_literals() {
        let none = ChannelOverrides::default();
        // Wildcard patterns do not count.
        let ok = [("a", none), ("b", none), (">", none), ("a.*", none)];
        assert!(build(Limit::DEFAULT, 2, &ok).is_ok());
        let over = [("a", none), ("b", none), ("c", none)];
        let err = build(Limit::DEFAULT, 2, &over).unwrap_err();
        assert_eq!(
            err.to_string(),
            "too many channels defined (3). The max channels limit is set to 2"
        );
        assert!(matches!(err, LimitsError::TooManyChannels { pattern, .. } if pattern == "c"));
        // max_channels 0 is unlimited.
        assert!(build(Limit::DEFAULT, 0, &over).is_ok());
    }

    #[test]
    fn invalid_patterns() {
        for bad in [
            "foo..bar",
            "foo.>.bar",
            "fo*",
            "",
            ".a",
            "a.",
            "a/b",
            "*a",
            "a.>b",
            "a.b>",
        ] {
            let err = build(Limit::DEFAULT, 0, &[(bad, msgs(1))]).unwrap_err();
            assert_eq!(err, LimitsError::InvalidPattern(bad.to_owned()));
            assert_eq!(err.to_string(), format!("invalid channel name \"{bad}\""));
        }
        for good in [
            "foo",
            ">",
            "*",
            "*.*",
            "foo.*.bar",
            "foo.>",
            "*.>",
            "a b",
            "a-b_c",
        ] {
            assert!(is_valid_pattern(good), "{good}");
        }
    }

    #[test]
    fn example_table() {
        // NSS v0.23.2 `Print()` for the same limits (`baz` placed first).
        let want = [
            "---------- Store Limits ----------",
            "Channels:                   10",
            "--------- Channels Limits --------",
            "  Subscriptions:          1000 *",
            "  Messages     :         10000",
            "  Bytes        :      10.00 MB",
            "  Age          :        1h0m0s",
            "  Inactivity   :     unlimited *",
            "-------- List of Channels ---------",
            "baz",
            " |-> Messages             unlimited",
            "foo",
            " |-> Subscriptions               50",
            " |-> Messages                   300",
            "foo.>",
            " |-> Messages                   400",
            " foo.bar.>",
            "  |-> Age                    2h0m0s",
            "temp.>",
            " |-> Inactivity              1h0m0s",
            "-----------------------------------",
        ];
        assert_eq!(example().table(), want);
    }

    #[test]
    fn default_table() {
        let l = build(Limit::DEFAULT, DEFAULT_MAX_CHANNELS, &[]).unwrap();
        let want = [
            "---------- Store Limits ----------",
            "Channels:                  100 *",
            "--------- Channels Limits --------",
            "  Subscriptions:          1000 *",
            "  Messages     :       1000000 *",
            "  Bytes        :     976.56 MB *",
            "  Age          :     unlimited *",
            "  Inactivity   :     unlimited *",
            "----------------------------------",
        ];
        assert_eq!(l.table(), want);
    }

    /// Wildcards everywhere, checked against NSS v0.23.2: `foo.*` inherits
    /// from `foo.>`, `foo.bar` from `foo.*`, `foo.bar.>` skips `foo.*`.
    fn wildcards() -> StoreLimits {
        let o = ChannelOverrides::default;
        let entries = [
            (
                ">",
                ChannelOverrides {
                    max_subs: Some(10),
                    ..o()
                },
            ),
            ("*.>", msgs(5)),
            (
                "*.*",
                ChannelOverrides {
                    max_bytes: Some(2048),
                    ..o()
                },
            ),
            (
                "foo.*",
                ChannelOverrides {
                    max_age: Some(Duration::from_millis(1500)),
                    ..o()
                },
            ),
            (
                "foo.>",
                ChannelOverrides {
                    max_inactivity: Some(Duration::from_millis(500)),
                    ..o()
                },
            ),
            ("foo.bar.>", msgs(0)),
            (
                "foo.*.baz",
                ChannelOverrides {
                    max_subs: Some(3),
                    ..o()
                },
            ),
            (
                "foo.bar",
                ChannelOverrides {
                    max_bytes: Some(1152),
                    ..o()
                },
            ),
            ("*.bar", msgs(7)),
        ];
        build(Limit::DEFAULT, 0, &entries).unwrap()
    }

    #[test]
    fn wildcard_chains() {
        let l = wildcards();
        let json = serde_json::to_string(&l).unwrap();
        // NSS's output, with Go's `\u003e` written as `>`.
        let want = concat!(
            r#"{"max_channels":0,"max_msgs":1000000,"max_bytes":1024000000,"max_age":0,"#,
            r#""max_subscriptions":1000,"max_inactivity":0,"channels":{"#,
            r#""*.*":{"max_msgs":5,"max_bytes":2048,"max_age":0,"max_subscriptions":10,"max_inactivity":0},"#,
            r#""*.>":{"max_msgs":5,"max_bytes":1024000000,"max_age":0,"max_subscriptions":10,"max_inactivity":0},"#,
            r#""*.bar":{"max_msgs":7,"max_bytes":2048,"max_age":0,"max_subscriptions":10,"max_inactivity":0},"#,
            r#"">":{"max_msgs":1000000,"max_bytes":1024000000,"max_age":0,"max_subscriptions":10,"max_inactivity":0},"#,
            r#""foo.*":{"max_msgs":5,"max_bytes":2048,"max_age":1500000000,"max_subscriptions":10,"max_inactivity":500000000},"#,
            r#""foo.*.baz":{"max_msgs":5,"max_bytes":2048,"max_age":0,"max_subscriptions":3,"max_inactivity":500000000},"#,
            r#""foo.>":{"max_msgs":5,"max_bytes":2048,"max_age":0,"max_subscriptions":10,"max_inactivity":500000000},"#,
            r#""foo.bar":{"max_msgs":5,"max_bytes":1152,"max_age":1500000000,"max_subscriptions":10,"max_inactivity":500000000},"#,
            r#""foo.bar.>":{"max_msgs":0,"max_bytes":2048,"max_age":0,"max_subscriptions":10,"max_inactivity":500000000}}}"#,
        );
        assert_eq!(json, want);
        let got = |name: &str| l.matching_pattern(name);
        assert_eq!(got("foo.bar"), Some("foo.bar"));
        assert_eq!(got("foo.x"), Some("foo.*"));
        assert_eq!(got("foo.bar.baz"), Some("foo.bar.>"));
        assert_eq!(got("foo.q.baz"), Some("foo.*.baz"));
        assert_eq!(got("a"), Some(">"));
        assert_eq!(got("a.b"), Some("*.*"));
        assert_eq!(got("a.bar"), Some("*.bar"));
        assert_eq!(got("foo"), Some(">"));
        let bar = l.for_channel("foo.bar");
        assert_eq!((bar.max_msgs, bar.max_bytes, bar.max_subs), (5, 1152, 10));
    }

    #[test]
    fn wildcard_table() {
        let want = [
            "---------- Store Limits ----------",
            "Channels:            unlimited",
            "--------- Channels Limits --------",
            "  Subscriptions:          1000 *",
            "  Messages     :       1000000 *",
            "  Bytes        :     976.56 MB *",
            "  Age          :     unlimited *",
            "  Inactivity   :     unlimited *",
            "---------- List of Channels ----------",
            ">",
            " |-> Subscriptions               10",
            " *.>",
            "  |-> Messages                    5",
            "  *.*",
            "   |-> Bytes                2.00 KB",
            "   *.bar",
            "    |-> Messages                  7",
            "   foo.>",
            "    |-> Inactivity            500ms",
            "    foo.*",
            "     |-> Age                    1.5s",
            "   foo.*.baz",
            "    |-> Subscriptions             3",
            "      foo.bar",
            "       |-> Bytes               1.12 KB",
            "   foo.bar.>",
            "    |-> Messages          unlimited",
            "--------------------------------------",
        ];
        assert_eq!(wildcards().table(), want);
    }

    #[test]
    fn storez_json() {
        let v = serde_json::to_value(example()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = [
            "channels",
            "max_age",
            "max_bytes",
            "max_channels",
            "max_inactivity",
            "max_msgs",
            "max_subscriptions",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v["max_age"], 3_600_000_000_000u64);
        assert_eq!(v["max_channels"], 10);
        // After inheritance, unlimited is 0 (NSS never reports its -1).
        assert_eq!(
            v["channels"]["baz"],
            serde_json::json!({
                "max_msgs": 0, "max_bytes": 10_485_760, "max_age": 3_600_000_000_000u64,
                "max_subscriptions": 1000, "max_inactivity": 0
            })
        );
        assert_eq!(v["channels"]["foo.bar.>"]["max_msgs"], 400);
        assert_eq!(v["channels"]["foo.bar.>"]["max_age"], 7_200_000_000_000u64);
        // Field order is Go's, `channels` omitted when empty.
        let empty = build(Limit::DEFAULT, 100, &[]).unwrap();
        assert_eq!(
            serde_json::to_string(&empty).unwrap(),
            r#"{"max_channels":100,"max_msgs":1000000,"max_bytes":1024000000,"max_age":0,"max_subscriptions":1000,"max_inactivity":0}"#
        );
    }

    #[test]
    fn friendly_bytes_as_go() {
        for (n, want) in [
            (1, "1 B"),
            (1023, "1023 B"),
            (1024, "1.00 KB"),
            (1152, "1.12 KB"),
            (1408, "1.38 KB"),
            (1_024_000_000, "976.56 MB"),
            (1 << 30, "1.00 GB"),
            ((1 << 50) - 1, "1.00 PB"),
        ] {
            assert_eq!(friendly_bytes(n), want, "{n}");
        }
    }
}
