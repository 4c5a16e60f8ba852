//! zk-mio
