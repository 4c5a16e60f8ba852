//! zk-tokio
