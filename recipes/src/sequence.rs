//! The ordering of sequential nodes.

/// The order of a sequential node by the sequence number the server appended after
/// `marker` (`"__lock__"` in Kazoo's lock names, `"lock-"` in Curator's): the number as
/// the server wrote it, `%010d` of a signed 32-bit counter. Once the parent's counter
/// passed 2^31 the server writes negative numbers; those were assigned after every positive
/// one and order after them. `None` for a name without the marker and a number after it.
pub fn sequence_of(name: &str, marker: &str) -> Option<i64> {
    let at = name.rfind(marker)? + marker.len();
    let text = &name[at..];
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = text.parse().ok()?;
    Some(if value < 0 {
        (1i64 << 32) + value
    } else {
        value
    })
}

#[cfg(test)]
mod tests {
    use super::sequence_of;

    #[test]
    fn sequences_order_across_the_wrap() {
        let names = [
            "abc__lock__0000000001",
            "x__lock__0000000002",
            "x__lock__2147483647",
            "x__lock__-2147483648",
            "x__lock__-2147483647",
            "x__lock__-000000001",
        ];
        let seqs: Vec<i64> = names
            .iter()
            .map(|n| sequence_of(n, "__lock__").unwrap())
            .collect();
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "{seqs:?}");
        assert_eq!(sequence_of("_c_9e5-lock-0000000002", "lock-"), Some(2));
        assert_eq!(sequence_of("no-sequence", "__lock__"), None);
        assert_eq!(sequence_of("x__lock__12x", "__lock__"), None);
    }
}
