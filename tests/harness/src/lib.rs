//! zk-harness
