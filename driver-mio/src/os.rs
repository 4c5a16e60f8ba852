//! What the pure crates below take from the operating system.

/// Random bits and the wall clock, for the session's seed, login nonces, recipe node ids
/// and leases.
pub(crate) const OS: zk_client::Os = zk_client::Os {
    random: |bytes| getrandom::fill(bytes).map_err(|e| e.to_string()),
    wall_clock: || std::time::UNIX_EPOCH.elapsed().unwrap_or_default(),
};
