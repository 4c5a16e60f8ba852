//! Randomness from the operating system, the one source of a client's seed and of its
//! recipes' node ids: the pure crates below take it as an argument.

/// 64 random bits for a session's seed.
pub(crate) fn random_u64() -> crate::Result<u64> {
    zk_client::entropy(getrandom::u64())
}

/// 128 random bits, for secrets (the nonces of a login).
pub(crate) fn random_u128() -> crate::Result<u128> {
    Ok(u128::from(random_u64()?) << 64 | u128::from(random_u64()?))
}

/// A fresh 128-bit id in 32 hex digits, unique per recipe participant: a recipe finds its
/// own nodes by it after a lost reply.
pub fn unique_id() -> crate::Result<String> {
    Ok(zk_client::unique_id_from(random_u128()?))
}
