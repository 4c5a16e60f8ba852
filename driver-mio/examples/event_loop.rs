//! One `mio::Poll` serving a ZooKeeper session and an unrelated TCP echo service at once.
//!
//! A helper thread keeps pinging the echo service and records the slowest round trip while
//! the loop runs ZooKeeper operations: since the ZooKeeper connection never blocks, the echo
//! service stays responsive throughout.
//!
//! ```sh
//! cargo run -p zk-mio --example event_loop            # starts a throwaway ZooKeeper
//! ZK_HOSTS=127.0.0.1:2181 cargo run -p zk-mio --example event_loop
//! ```

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use zk_mio::{
    Acl, Calls, Config, Connection, CreateOptions, Event, Pending, Routed, SessionState, Stat, op,
};

const ZK: Token = Token(0);

/// What each ZooKeeper call was for, with its typed completion.
enum Job {
    Create(Pending<String>),
    Read(Pending<(Bytes, Stat)>),
    Write(Pending<Stat>),
}
const LISTENER: Token = Token(1);

/// What a run did.
#[derive(Debug)]
pub struct Report {
    /// ZooKeeper operations completed successfully.
    pub zk_ops: usize,
    /// Watch events received.
    pub watch_events: usize,
    /// Echo round trips served meanwhile.
    pub echoes: usize,
    /// The slowest echo round trip.
    pub slowest_echo: Duration,
}

/// Runs `ops` rounds of setData + getData-with-watch on `hosts` while serving echoes.
pub fn run(hosts: &str, ops: usize) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().map_err(io::Error::other)?)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let echo_addr = listener.local_addr()?;

    // The unrelated service's client: round trips every 2 ms, slowest one recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        thread::spawn(move || -> io::Result<(usize, Duration)> {
            let mut s = StdStream::connect(echo_addr)?;
            s.set_nodelay(true)?;
            let (mut n, mut slowest) = (0, Duration::ZERO);
            let mut buf = [0u8; 8];
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                // The loop may stop between this write and its echo: it then closes the
                // connection, and the pending round trip ends with it, uncounted.
                let round_trip = s
                    .write_all(&(n as u64).to_be_bytes())
                    .and_then(|()| s.read_exact(&mut buf));
                match round_trip {
                    Ok(()) => {}
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(e) => return Err(e),
                }
                slowest = slowest.max(t.elapsed());
                n += 1;
                thread::sleep(Duration::from_millis(2));
            }
            Ok((n, slowest))
        })
    };

    let config = Config::new(hosts)
        .map_err(io::Error::other)?
        .with_session_timeout(Duration::from_secs(6));
    let mut zk = Connection::new(config, poll.registry(), ZK, Instant::now())?;
    let mut calls = Calls::new();
    let mut echo_conns: HashMap<Token, TcpStream> = HashMap::new();
    let mut next_token = 2;
    let mut events = Events::with_capacity(128);
    let path = format!("/event-loop-{}", std::process::id());
    let (mut started, mut done, mut watch_events) = (false, 0usize, 0usize);
    let mut closing = false;

    loop {
        poll.poll(&mut events, zk.timeout(Instant::now()))?;
        let now = Instant::now();
        for event in events.iter() {
            match event.token() {
                ZK => zk.handle_event(event, now),
                LISTENER => loop {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            let t = Token(next_token);
                            next_token += 1;
                            poll.registry().register(&mut s, t, Interest::READABLE)?;
                            echo_conns.insert(t, s);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                },
                t => {
                    if let Some(s) = echo_conns.get_mut(&t) {
                        echo(s)?;
                    }
                }
            }
        }
        zk.handle_timeout(now);

        while let Some(event) = zk.poll_event() {
            let finished = match calls.route(event) {
                Routed::Event(Event::State {
                    state: SessionState::Connected,
                    ..
                }) if !started => {
                    started = true;
                    let ephemeral = CreateOptions::ephemeral();
                    let create = op::create(&path, Bytes::new(), &ephemeral, &Acl::open_unsafe());
                    calls
                        .start(&mut zk, now, create, Job::Create)
                        .map_err(io::Error::other)?;
                    continue;
                }
                Routed::Event(Event::State {
                    state: SessionState::Closed,
                    ..
                }) => {
                    stop.store(true, Ordering::Relaxed);
                    // Closing the echo service wakes a pinger waiting on a round trip.
                    echo_conns.clear();
                    let (echoes, slowest_echo) = pinger
                        .join()
                        .map_err(|_| io::Error::other("the pinger panicked"))??;
                    return Ok(Report {
                        zk_ops: done,
                        watch_events,
                        echoes,
                        slowest_echo,
                    });
                }
                Routed::Event(Event::Watch(_)) => {
                    watch_events += 1;
                    continue;
                }
                Routed::Event(_) => continue,
                Routed::Done(Job::Create(call), reply) => call.finish(reply).map(drop),
                Routed::Done(Job::Read(call), reply) => call.finish(reply).map(drop),
                Routed::Done(Job::Write(call), reply) => call.finish(reply).map(drop),
            };
            finished.map_err(io::Error::other)?;
            done += 1;
            if done < ops * 2 {
                // Alternate: write, then read with a watch that the next write fires.
                let started = if done % 2 == 1 {
                    calls.start(&mut zk, now, op::get_data(&path, true), Job::Read)
                } else {
                    let data = Bytes::from(done.to_string());
                    calls.start(&mut zk, now, op::set_data(&path, data, None), Job::Write)
                };
                started.map_err(io::Error::other)?;
            } else if !closing {
                closing = true;
                zk.close(now);
            }
        }
    }
}

/// Echoes whatever is readable, without blocking.
fn echo(s: &mut TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                // Tiny messages on a fresh socket: the send buffer has room.
                s.write_all(&buf[..n])?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut _local = None;
    let hosts = match std::env::var("ZK_HOSTS") {
        Ok(h) if !h.trim().is_empty() => h,
        _ => {
            println!("ZK_HOSTS is not set: starting a throwaway ZooKeeper on loopback...");
            let server = zk_harness::ZkServer::standalone()?;
            let hosts = server.connect_string();
            _local = Some(server);
            hosts
        }
    };
    let report = run(&hosts, 500)?;
    println!(
        "{} ZooKeeper operations and {} watch events, while serving {} echoes; slowest echo {:?}",
        report.zk_ops, report.watch_events, report.echoes, report.slowest_echo
    );
    Ok(())
}
