//! Model-based property tests: a reference model of what an application sees (`sim/model.rs`:
//! ids handed out, requests waiting and in flight, every completion and its result, watch
//! registrations and events, state transitions, and what time does to them) is driven by
//! the same random steps as the Session, against a scripted server that answers in order,
//! fails requests, drops the connection, stays silent while time passes, or expires the
//! session; the two must agree after every step. Plus chunking and time invariance, and a
//! check that failures shrink to short readable cases.

mod sim;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRng, TestRunner};
use sim::model::run_checked;
use sim::world::{Step, World, run_all};
use sim::{Sim, notification, ok_body, reply};
use zk_proto::consts::EventType;
use zk_proto::records::*;
use zk_proto::session::{Error, Event};

/// Steps the model covers: everything but garbage and read-only servers. Close is rare, so
/// that most sequences go on long after their first few connections.
fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        20 => (any::<u8>(), any::<bool>()).prop_map(|(k, w)| Step::Submit(k, w)),
        2 => prop::bool::weighted(0.9).prop_map(Step::AddAuth),
        16 => (any::<u8>(), 1u8..40, prop::bool::weighted(0.2))
            .prop_map(|(count, chunk, fail)| Step::Answer { count, chunk, fail }),
        4 => any::<u8>().prop_map(Step::Notify),
        8 => Just(Step::ConnectOk { read_only: false }),
        2 => Just(Step::ConnectFail),
        2 => Just(Step::ConnectExpired),
        2 => Just(Step::Drop),
        4 => (0u16..3000).prop_map(Step::Advance),
        1 => Just(Step::Close),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(k, f)| Step::Release(k, f)),
    ]
}

/// Any step, garbage from the server included.
fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => step(),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Step::Garbage),
        1 => any::<u8>().prop_map(Step::UpdateHosts),
    ]
}

proptest! {
    // Each case takes well under a millisecond: the model gets many.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_session_agrees_with_the_model(
        seed in any::<u64>(),
        steps in prop::collection::vec(step(), 0..120),
    ) {
        let mut w = run_checked(seed, &steps).map_err(TestCaseError::fail)?;
        w.finish();
        w.check_complete();
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn early_and_repeated_wake_ups_change_nothing(
        seed in any::<u64>(),
        steps in prop::collection::vec(any_step(), 0..80),
    ) {
        let plain = run_all(seed, &steps);
        let mut w = World::new(seed);
        w.extra_timeouts = true;
        for s in &steps {
            w.run(s);
        }
        w.finish();
        prop_assert_eq!(plain.log, w.log);
    }

    /// The driver contract: the action, transmit and event queues are independent, so a
    /// driver may drain them in any order (only the actions among themselves are ordered).
    /// A transmit never holds bytes for a connection other than the current one: the
    /// session empties it when it asks for a disconnect, and writes nothing until the next
    /// connection is reported up.
    #[test]
    fn draining_the_queues_in_any_order_changes_nothing(
        seed in any::<u64>(),
        steps in prop::collection::vec(any_step(), 0..80),
        order in prop::sample::select(vec![[0u8, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]),
    ) {
        let plain = run_all(seed, &steps);
        let mut w = World::new(seed);
        w.drain_order = order;
        for s in &steps {
            w.run(s);
        }
        w.finish();
        let by_kind = |w: &World| -> Vec<Vec<String>> {
            ["action ", "transmit ", "event "]
                .iter()
                .map(|kind| w.log.iter().filter(|l| l.starts_with(kind)).cloned().collect())
                .collect()
        };
        prop_assert_eq!(by_kind(&plain), by_kind(&w));
    }

    #[test]
    fn answers_in_any_chunking_change_nothing(
        seed in any::<u64>(),
        steps in prop::collection::vec(any_step(), 0..80),
        chunks in prop::collection::vec(1u8..=255, 1..40),
    ) {
        let mut i = 0;
        let rechunked: Vec<Step> = steps
            .iter()
            .map(|s| match s {
                Step::Answer { count, fail, .. } => {
                    i += 1;
                    Step::Answer { count: *count, chunk: chunks[i % chunks.len()], fail: *fail }
                }
                other => other.clone(),
            })
            .collect();
        // What the session produced, each kind in its own order: the log interleaves them
        // at every read the driver makes, and reads are where the chunkings differ.
        let outputs = |w: World| -> Vec<Vec<String>> {
            ["action ", "transmit ", "event "]
                .iter()
                .map(|kind| w.log.iter().filter(|l| l.starts_with(kind)).cloned().collect())
                .collect()
        };
        prop_assert_eq!(outputs(run_all(seed, &steps)), outputs(run_all(seed, &rechunked)));
    }

    #[test]
    fn any_chunking_of_the_server_stream_gives_the_same_events(
        kinds in prop::collection::vec(0u8..6, 1..40),
        cuts in prop::collection::vec(1usize..50, 1..200),
    ) {
        let run = |chunks: Option<&[usize]>| {
            let mut sim = Sim::new(Sim::config("a:1/root"));
            sim.take_actions();
            sim.establish(77, 6000, false);
            let mut stream = Vec::new();
            for (i, k) in kinds.iter().enumerate() {
                let req = match k {
                    0 => Request::GetData(GetDataRequest { path: "/a".into(), watch: true }),
                    1 => Request::GetChildren2(GetChildrenRequest { path: "/".into(), watch: true }),
                    2 => Request::Exists(ExistsRequest { path: format!("/n{i}"), watch: true }),
                    3 => Request::Sync(SyncRequest { path: "/a".into() }),
                    _ => Request::SetData(SetDataRequest { path: "/a".into(), data: bytes::Bytes::new(), version: -1 }),
                };
                sim.submit(req);
            }
            for s in sim.sent() {
                let xid = s.xid();
                let req = s.request().clone();
                if xid % 3 == 0 {
                    stream.extend(reply(xid, 10 + xid as i64, -101, None));
                } else {
                    stream.extend(reply(xid, 10 + xid as i64, 0, Some((req.opcode(), &ok_body(&req)))));
                }
                if xid % 4 == 0 {
                    stream.extend(notification(EventType::NodeDataChanged, "/root/a"));
                }
            }
            match chunks {
                None => sim.input(&stream),
                Some(cuts) => {
                    let mut at = 0;
                    let mut i = 0;
                    while at < stream.len() {
                        let n = cuts[i % cuts.len()].min(stream.len() - at);
                        sim.input(&stream[at..at + n]);
                        at += n;
                        i += 1;
                    }
                }
            }
            let events: Vec<Event> = sim.take_events();
            (events, sim.s.watches().len(), sim.s.in_flight())
        };
        prop_assert_eq!(run(None), run(Some(&cuts)));
    }
}

#[test]
fn the_model_agrees_on_a_long_fixed_run() {
    let steps: Vec<Step> = (0..3000u32)
        .map(|i| match i % 9 {
            0 => Step::ConnectOk { read_only: false },
            1..=3 => Step::Submit((i % 251) as u8, i % 2 == 0),
            4 => Step::Answer {
                count: 5,
                chunk: (i % 31 + 1) as u8,
                fail: i % 7 == 0,
            },
            5 => Step::Notify((i % 17) as u8),
            6 if i % 200 == 6 => Step::Drop,
            6 if i % 50 == 33 => Step::Release((i / 9) as u8, i % 100 == 33),
            7 => Step::Advance((i % 700) as u16),
            _ => Step::Answer {
                count: 255,
                chunk: 64,
                fail: false,
            },
        })
        .collect();
    let mut w = run_checked(5, &steps).unwrap();
    w.finish();
    w.check_complete();
}

/// Shrinking works on these strategies: a property broken on purpose (it claims no request
/// ever fails with ConnectionLoss) fails on some long random case, which shrinks to the few
/// steps that show it. Run with `--nocapture` to see the case.
#[test]
fn a_failing_case_shrinks_to_a_short_readable_sequence() {
    // A fixed seed: the same case is found and shrunk on every run.
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let outcome = runner.run(
        &(any::<u64>(), prop::collection::vec(step(), 0..120)),
        |(seed, steps)| {
            let mut w = World::new(seed);
            for s in &steps {
                w.run(s);
                let lost = w.events.iter().any(|e| {
                    matches!(
                        e,
                        Event::Complete {
                            result: Err(Error::ConnectionLoss),
                            ..
                        }
                    )
                });
                prop_assert!(!lost, "a request failed with ConnectionLoss");
            }
            Ok(())
        },
    );
    let Err(TestError::Fail(_, (seed, steps))) = outcome else {
        panic!("the broken property was not caught: {outcome:?}");
    };
    println!("shrunk to seed {seed} and {steps:?}");
    // Connect, submit, lose the connection (or let it time out): three steps at least.
    // Shrinking removes steps before it simplifies them, so a step or two more may stay.
    assert!(
        (3..=5).contains(&steps.len()),
        "shrunk to {} steps: {steps:?}",
        steps.len()
    );
}
