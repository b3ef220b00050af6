//! Client-ID and channel-name rules, as the reference server applies them.

/// A client ID must match `^[a-zA-Z0-9_-]+$`.
pub fn is_valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A channel name is non-empty, has no empty token (leading, trailing or
/// doubled `.`), and contains no `*`, `>` or `/`. Nothing else is checked.
pub fn is_valid_channel(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['*', '>', '/'])
        && name.split('.').all(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        for ok in ["c1", "A-b_9", "-", "_"] {
            assert!(is_valid_client_id(ok), "{ok}");
        }
        for bad in ["", "bad id!", "a.b", "é", "a/b", "a*"] {
            assert!(!is_valid_client_id(bad), "{bad}");
        }
    }

    #[test]
    fn channels() {
        for ok in ["foo", "foo.bar", "a b", "FOO-1_x"] {
            assert!(is_valid_channel(ok), "{ok}");
        }
        for bad in [
            "", ".foo", "foo.", "foo..bar", "foo.*", "foo.>", "a/b", ">", "*",
        ] {
            assert!(!is_valid_channel(bad), "{bad}");
        }
    }
}
