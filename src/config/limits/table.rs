//! The startup limits table: NSS v0.23.2's `StoreLimits.Print`, line for
//! line, with its number, byte (`util.FriendlyBytes`) and duration
//! formatting.
//!
//! Owns only the text; reads a built [`StoreLimits`] (its chains come from
//! the [`super::sublist`] trie) and calls [`crate::config::duration`] for
//! Go's duration text. Pure: no I/O.

use std::time::Duration;

use super::{go_nanos, Limit, StoreLimits, DEFAULT_MAX_CHANNELS};
use crate::config::duration::GoDuration;

impl StoreLimits {
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

#[cfg(test)]
mod tests {
    use super::*;

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
