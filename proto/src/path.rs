//! Node path validation, with the server's rules (`PathUtils.validatePath`), so a bad path is
//! refused locally with a precise reason instead of costing a round trip.

/// Why a path is not a valid node path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("invalid path: it is empty; node paths start with '/'")]
    Empty,
    /// The path does not start with `/`.
    #[error("invalid path {0:?}: node paths are absolute and start with '/'")]
    NotAbsolute(String),
    /// The path ends with `/` (only the root may).
    #[error("invalid path {0:?}: it must not end with '/'")]
    TrailingSlash(String),
    /// Two slashes in a row.
    #[error("invalid path {path:?}: empty node name at byte {at}")]
    EmptySegment {
        /// The path.
        path: String,
        /// Byte offset of the second slash.
        at: usize,
    },
    /// A `.` or `..` segment.
    #[error("invalid path {path:?}: relative segment ('.' or '..') at byte {at}")]
    Relative {
        /// The path.
        path: String,
        /// Byte offset of the segment.
        at: usize,
    },
    /// A character the server refuses (NUL, control characters, U+D800..U+F8FF,
    /// U+FFF0..U+FFFF, or anything outside the Basic Multilingual Plane).
    #[error("invalid path {path:?}: character {ch:?} at byte {at} is not allowed in node names")]
    InvalidChar {
        /// The path.
        path: String,
        /// Byte offset of the character.
        at: usize,
        /// The character.
        ch: char,
    },
}

/// Checks a node path the way the server does.
///
/// ```
/// use zk_proto::path::{validate_path, PathError};
///
/// assert!(validate_path("/app/config").is_ok());
/// assert!(validate_path("/").is_ok());
/// assert!(matches!(validate_path("/app/"), Err(PathError::TrailingSlash(_))));
/// assert!(matches!(validate_path("/a/../b"), Err(PathError::Relative { .. })));
/// ```
pub fn validate_path(path: &str) -> Result<(), PathError> {
    validate(path, false)
}

/// Checks the path given to a create: for sequential modes the server appends a number, so
/// a trailing `/` is fine there (`/queue/` creates `/queue/0000000001`).
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), PathError> {
    validate(path, sequential)
}

fn validate(path: &str, sequential: bool) -> Result<(), PathError> {
    let owned = || path.to_owned();
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute(owned()));
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return Err(PathError::TrailingSlash(owned()));
    }
    let bytes = path.as_bytes();
    let mut prev = '/';
    for (at, ch) in path.char_indices().skip(1) {
        // A segment is "." or ".." when it sits between slashes (or the end); for a
        // sequential create the server appends digits, so a final "." is not the end.
        let next_is_boundary = match bytes.get(at + ch.len_utf8()) {
            None => !sequential,
            Some(b) => *b == b'/',
        };
        match ch {
            '/' if prev == '/' => {
                return Err(PathError::EmptySegment { path: owned(), at });
            }
            '.' if prev == '.' && at >= 2 && bytes[at - 2] == b'/' && next_is_boundary => {
                return Err(PathError::Relative {
                    path: owned(),
                    at: at - 1,
                });
            }
            '.' if prev == '/' && next_is_boundary => {
                return Err(PathError::Relative { path: owned(), at });
            }
            c if is_refused(c) => {
                return Err(PathError::InvalidChar {
                    path: owned(),
                    at,
                    ch: c,
                });
            }
            _ => {}
        }
        prev = ch;
    }
    Ok(())
}

/// The server checks UTF-16 code units: control characters, the surrogate and private-use
/// range U+D800..U+F8FF (so everything outside the BMP, which Java sees as surrogates) and
/// U+FFF0..U+FFFF are refused.
fn is_refused(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_rules() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/..a",
            "/a/...",
            "/zookeeper/config",
            "/é",
        ] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        let bad = [
            ("", "Empty"),
            ("a", "NotAbsolute"),
            ("/a/", "TrailingSlash"),
            ("//a", "EmptySegment"),
            ("/a//b", "EmptySegment"),
            ("/.", "Relative"),
            ("/..", "Relative"),
            ("/a/./b", "Relative"),
            ("/a/../b", "Relative"),
            ("/a\0b", "InvalidChar"),
            ("/a\u{1}", "InvalidChar"),
            ("/a\u{e000}", "InvalidChar"),
            ("/a\u{1f600}", "InvalidChar"),
        ];
        for (p, kind) in bad {
            let e = validate_path(p).unwrap_err();
            assert!(format!("{e:?}").starts_with(kind), "{p:?} gave {e:?}");
        }
    }

    #[test]
    fn sequential_creates_may_end_in_a_slash_or_dot() {
        assert_eq!(validate_create_path("/queue/", true), Ok(()));
        assert_eq!(validate_create_path("/queue/.", true), Ok(()));
        assert!(validate_create_path("/queue/", false).is_err());
        assert!(validate_create_path("/queue//", true).is_err());
    }
}
