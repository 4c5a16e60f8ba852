//! Heap allocations per operation through the Session, counted with a counting global
//! allocator (this test binary only). The request itself is built before counting: what is
//! counted is what the session adds to submit it, write it, read the reply and report it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{Jute, Writer, write_frame};
use zk_proto::records::*;
use zk_proto::session::{Config, Event, Session};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn frame(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, f);
    b.to_vec()
}

/// Allocations per getData round trip, averaged over `n` operations after a warm-up.
fn allocations_per_get(n: usize) -> f64 {
    let now = Instant::now();
    let mut s = Session::new(Config::new("127.0.0.1:2181").unwrap().with_seed(1), now);
    while s.poll_action().is_some() {}
    s.handle_connected(now);
    let _ = s.poll_transmit();
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout: 10_000,
        session_id: 1,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: false,
    };
    s.handle_input(now, &frame(|b| resp.encode(b)));
    while s.poll_event().is_some() {}
    let body = Response::GetData(GetDataResponse {
        data: Bytes::from(vec![1u8; 100]),
        stat: Stat::default(),
    });
    let total = n + 1000;
    let replies: Vec<Vec<u8>> = (1..=total as i32)
        .map(|xid| {
            frame(|b| {
                ReplyHeader {
                    xid,
                    zxid: 5,
                    err: 0,
                }
                .encode(b);
                body.write(&mut Writer::new(b));
            })
        })
        .collect();
    let requests: Vec<Request> = (0..total)
        .map(|_| {
            Request::GetData(GetDataRequest {
                path: "/node".into(),
                watch: false,
            })
        })
        .collect();
    let mut counted = 0;
    for (i, (req, reply)) in requests.into_iter().zip(&replies).enumerate() {
        let before = ALLOCS.load(Ordering::Relaxed);
        let id = s.submit(now, req).unwrap();
        let out = s.poll_transmit().unwrap();
        drop(out);
        s.handle_input(now, reply);
        let Some(Event::Complete {
            id: done, result, ..
        }) = s.poll_event()
        else {
            panic!("no completion");
        };
        assert_eq!(done, id);
        drop(result);
        let after = ALLOCS.load(Ordering::Relaxed);
        if i >= 1000 {
            counted += after - before;
        }
    }
    counted as f64 / n as f64
}

#[test]
fn a_get_round_trip_allocates_nothing_in_steady_state() {
    // The counter counts.
    let before = ALLOCS.load(Ordering::Relaxed);
    let v = std::hint::black_box(vec![1u8; 64]);
    assert!(ALLOCS.load(Ordering::Relaxed) > before);
    drop(v);

    let per_op = allocations_per_get(10_000);
    eprintln!("allocations per getData round trip: {per_op:.3}");
    // The outgoing and incoming buffers are reused once their frames are dropped, the reply's
    // data is a slice of the incoming buffer, and the queues keep their capacity: nothing is
    // allocated per operation beyond the request the caller built.
    assert!(per_op < 0.01, "{per_op} allocations per operation");
}
