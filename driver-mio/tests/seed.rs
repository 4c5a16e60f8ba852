//! A `Connection` built by hand without a seed draws one from the operating system, so
//! loops that share a connect string do not all try its hosts in the same order.

use std::time::Instant;

use mio::{Poll, Token};
use zk_mio::{Config, Connection};

/// Eight hosts that refuse at once: only their order matters here.
const HOSTS: &str = "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,\
                     127.0.0.1:5,127.0.0.1:6,127.0.0.1:7,127.0.0.1:8";

fn order(config: Config) -> Vec<String> {
    let poll = Poll::new().expect("a poll");
    let zk =
        Connection::new(config, poll.registry(), Token(1), Instant::now()).expect("a connection");
    zk.session().hosts().iter().map(|h| h.to_string()).collect()
}

#[test]
fn connections_without_a_seed_shuffle_their_hosts_differently() {
    let orders: Vec<Vec<String>> = (0..4)
        .map(|_| order(Config::new(HOSTS).expect("hosts")))
        .collect();
    // Four draws of 8! orders: all equal only if the seed is fixed.
    assert!(
        orders.windows(2).any(|w| w[0] != w[1]),
        "every connection tried the hosts in one order: {:?}",
        orders[0]
    );
}

#[test]
fn a_given_seed_is_kept() {
    let seeded = || order(Config::new(HOSTS).expect("hosts").with_seed(7));
    assert_eq!(seeded(), seeded());
}
