//! The id the session gives each submitted request: vocabulary every module shares, kept
//! apart so that the watch registry and the session's events need not import each other.

/// Identifies a submitted request, and the watch it registers, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);
