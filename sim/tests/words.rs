//! Four-letter words on the model alone: the whitelist, the words that take or give no
//! line, and the words that reset statistics. Their formats are held to the real server
//! by `tests/tests/sim_diff.rs`.

use std::time::Instant;

use zk_sim::{Config, Ensemble, Output, Whitelist};

fn ask(zk: &mut Ensemble, now: Instant, bytes: &[u8]) -> String {
    let conn = zk.accept_from(now, 0, "127.0.0.1", 40_000).unwrap();
    zk.handle_input(now, conn, bytes);
    let mut text = Vec::new();
    while let Some(out) = zk.poll_output() {
        match out {
            Output::Transmit { data, .. } => text.extend_from_slice(&data),
            Output::Close { .. } => break,
        }
    }
    String::from_utf8(text).unwrap()
}

#[test]
fn a_word_off_the_whitelist_is_refused_as_the_real_server_refuses_it() {
    let now = Instant::now();
    let mut zk = Ensemble::new(
        Config::standalone().four_letter_words(Whitelist::default_server()),
        now,
    );
    assert_eq!(
        ask(&mut zk, now, b"ruok"),
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert!(ask(&mut zk, now, b"srvr").starts_with("Zookeeper version: 3.8.0"));
    let mut zk = Ensemble::new(
        Config::standalone().four_letter_words(Whitelist::parse("ruok, mntr")),
        now,
    );
    assert_eq!(ask(&mut zk, now, b"ruok"), "imok");
    assert!(ask(&mut zk, now, b"mntr").contains("zk_server_state\tstandalone\n"));
    assert!(ask(&mut zk, now, b"conf").contains("not in the whitelist"));
}

#[test]
fn trace_masks_and_resets() {
    let now = Instant::now();
    let mut zk = Ensemble::new(Config::standalone(), now);
    assert_eq!(ask(&mut zk, now, b"gtmk"), "306");
    // `stmk` answers the mask sent after it, and nothing without one.
    let mut stmk = b"stmk".to_vec();
    stmk.extend_from_slice(&42i64.to_be_bytes());
    assert_eq!(ask(&mut zk, now, &stmk), "42");
    assert_eq!(ask(&mut zk, now, b"stmk"), "");
    assert_eq!(ask(&mut zk, now, b"srst"), "Server stats reset.\n");
    // The reset counts from zero again: this `srvr` is the one packet since.
    assert!(ask(&mut zk, now, b"srvr").contains("\nReceived: 1\n"));
    assert_eq!(ask(&mut zk, now, b"crst"), "Connection stats reset.\n");
    // The asking connection shows in `cons` with its client's address.
    assert_eq!(
        ask(&mut zk, now, b"cons"),
        " /127.0.0.1:40000[0](queued=0,recved=1,sent=0)\n\n"
    );
}

#[test]
fn conf_and_envi_say_what_the_configuration_says() {
    let now = Instant::now();
    let mut zk = Ensemble::new(
        Config::standalone()
            .client_ports(&[2191])
            .data_dir("/var/lib/zk")
            .environment("host.name", "test-host"),
        now,
    );
    let conf = ask(&mut zk, now, b"conf");
    assert!(
        conf.starts_with("clientPort=2191\nsecureClientPort=-1\n"),
        "{conf}"
    );
    assert!(conf.contains("\ndataDir=/var/lib/zk/version-2\n"), "{conf}");
    assert!(conf.contains("\ntickTime=2000\n"), "{conf}");
    let envi = ask(&mut zk, now, b"envi");
    assert!(
        envi.starts_with("Environment:\nzookeeper.version=3.8.0-"),
        "{envi}"
    );
    assert!(envi.contains("\nhost.name=test-host\n"), "{envi}");
}
