//! zk-tests
