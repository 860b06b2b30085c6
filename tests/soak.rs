//! Leaks and soak: 10,000 open/echo/close/free cycles (WSEMBED_SOAK_CYCLES
//! to change), after which open file descriptors, threads and resident
//! memory are back near where they started. In its own test binary so that
//! no other test's sockets blur the counts.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wsembed::ffi::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn rss_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// Opens `n` sockets, echoes one message on each, closes and frees them.
fn cycle(url: &str, n: usize) {
    let recorders: Vec<_> = (0..n).map(|_| Recorder::new()).collect();
    let handles: Vec<_> = recorders
        .iter()
        .map(|r| {
            let h = open(url);
            r.bind_all(h);
            h
        })
        .collect();
    for (r, &h) in recorders.iter().zip(&handles) {
        r.wait_open();
        assert_eq!(send_text(h, "soak"), WS_OK);
    }
    for (r, &h) in recorders.iter().zip(&handles) {
        r.wait_messages(1);
        assert_eq!(ws_close(h), WS_OK);
    }
    for (r, h) in recorders.iter().zip(handles) {
        let events = r.wait_close();
        assert_protocol_order(&events);
        assert_eq!(ws_free(h), WS_OK);
    }
}

/// Waits until the server side (threads of this process) has let go.
fn settle(fds: usize, threads_before: usize) -> (usize, usize) {
    let end = Instant::now() + DEADLINE;
    loop {
        let now = (open_fds(), threads());
        if (now.0 <= fds + 2 && now.1 <= threads_before + 2) || Instant::now() > end {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ten_thousand_cycles_leave_nothing_behind() {
    let total: usize = std::env::var("WSEMBED_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let batch = 100;
    let server = echo_server();
    let url = server.url();
    // Warm up: the IO thread, its buffers and the allocator's arenas.
    cycle(&url, batch);
    let (fds0, threads0) = settle(open_fds(), threads());
    let rss0 = rss_kib();
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        cycle(&url, batch);
        done += batch;
    }
    let elapsed = start.elapsed();
    let (fds1, threads1) = settle(fds0, threads0);
    let rss1 = rss_kib();
    println!(
        "soak: {done} cycles in {:.1} s; fds {fds0} -> {fds1}; threads {threads0} -> {threads1}; \
         RSS {rss0} KiB -> {rss1} KiB ({:+} KiB)",
        elapsed.as_secs_f64(),
        rss1 as i64 - rss0 as i64
    );
    assert!(
        fds1 <= fds0 + 2,
        "file descriptors leaked: {fds0} -> {fds1}"
    );
    assert!(
        threads1 <= threads0 + 2,
        "threads leaked: {threads0} -> {threads1}"
    );
    // A leak of even 1 KiB per socket would show as 10 MiB here.
    assert!(
        rss1 < rss0 + 8 * 1024,
        "resident memory grew: {rss0} -> {rss1} KiB"
    );
}
