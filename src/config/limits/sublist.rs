//! A port of the parts of NSS's subscription trie (`util/sublist.go`) that
//! store limits use: insert a pattern, `Match` (wider patterns first, with
//! the subject's wildcard tokens taken literally), `Subjects` and
//! `NumLevels`, quirks included, so [`super::StoreLimits`] builds the same
//! inheritance chains and table order as NSS.
//!
//! A leaf: owns the trie and calls nothing outside `std`. Elements are
//! indices into the caller's pattern list.

use std::collections::BTreeMap;

/// The parts of NSS's `util.Sublist` that limits use: a trie of patterns
/// (elements are indices), its `Match` with wildcard tokens of the subject
/// taken literally, `Subjects` (wider first) and `NumLevels`.
#[derive(Debug, Clone, Default)]
pub(super) struct Sublist {
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
    pub(super) fn insert(&mut self, subject: &str, element: usize) {
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
    pub(super) fn matches(&self, subject: &str) -> Vec<usize> {
        let tokens: Vec<&str> = subject.split('.').collect();
        let mut out = Vec::new();
        match_level(Some(&self.root), &tokens, &mut out);
        out
    }

    /// NSS `Subjects`: at each level `>` first, then the `*` subtree, then
    /// the literal subtrees.
    pub(super) fn subjects(&self) -> Vec<String> {
        let mut out = Vec::new();
        subjects_of(&self.root, "", &mut out);
        out
    }

    /// NSS `NumLevels`: the depth of the deepest pattern.
    pub(super) fn num_levels(&self) -> usize {
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
