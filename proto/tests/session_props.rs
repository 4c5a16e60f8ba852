//! Property tests of the session: for random sequences of calls, server behaviour, chunkings,
//! disconnects and timeouts, every request completes exactly once, nothing panics, and the
//! same inputs give the same outputs.

mod sim;

use proptest::prelude::*;
use sim::world::{Step, World, run_all};
use zk_proto::consts::OpCode;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (any::<u8>(), any::<bool>()).prop_map(|(k, w)| Step::Submit(k, w)),
        1 => prop::bool::weighted(0.8).prop_map(Step::AddAuth),
        8 => (any::<u8>(), 1u8..40, prop::bool::weighted(0.2))
            .prop_map(|(count, chunk, fail)| Step::Answer { count, chunk, fail }),
        1 => any::<u8>().prop_map(Step::Notify),
        4 => prop::bool::weighted(0.2).prop_map(|read_only| Step::ConnectOk { read_only }),
        1 => Just(Step::ConnectFail),
        1 => Just(Step::ConnectExpired),
        1 => Just(Step::Drop),
        3 => (0u16..5000).prop_map(Step::Advance),
        1 => Just(Step::Close),
        1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Step::Garbage),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(k, f)| Step::Release(k, f)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_completes_exactly_once(seed in any::<u64>(), steps in prop::collection::vec(step(), 0..150)) {
        let w = run_all(seed, &steps);
        prop_assert!(w.s.state().is_terminal(), "state {:?}", w.s.state());
        for id in &w.issued {
            prop_assert_eq!(w.done.get(id).copied(), Some(1), "request {:?}", id);
        }
        prop_assert_eq!(w.done.len(), w.issued.len(), "completions for ids never issued");
        prop_assert!(w.s.watches().is_empty(), "watches survive the end of the session");
    }

    #[test]
    fn the_same_inputs_give_the_same_outputs(seed in any::<u64>(), steps in prop::collection::vec(step(), 0..60)) {
        let a = run_all(seed, &steps);
        let b = run_all(seed, &steps);
        prop_assert_eq!(a.log, b.log);
    }
}

#[test]
fn a_long_random_run_keeps_the_pending_queue_bounded() {
    // Not a proptest: one long fixed run, checking nothing accumulates while healthy.
    let mut w = World::new(3);
    for i in 0..2000u32 {
        if w.want_connect.is_some() {
            w.run(&Step::ConnectOk { read_only: false });
        }
        w.run(&Step::Submit((i % 64) as u8, i % 3 == 0));
        w.run(&Step::Answer {
            count: 255,
            chunk: (i % 37 + 1) as u8,
            fail: i % 5 == 0,
        });
        if i % 100 == 0 {
            w.run(&Step::Drop);
        }
        assert!(w.s.in_flight() < 10, "in flight: {}", w.s.in_flight());
        let _ = OpCode::Ping;
    }
    w.finish();
    assert_eq!(w.done.len(), w.issued.len());
    assert!(w.done.values().all(|&n| n == 1));
}
