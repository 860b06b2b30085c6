//! `WS_EVENT_BUFFERED_AMOUNT_LOW` and `ws_set_buffered_amount_low_threshold`
//! through the C ABI, against a server that stops reading on command (so
//! that `bufferedAmount` grows) and checks every message it gets.

mod common;

use std::ffi::c_void;
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{raw_handshake, raw_server, wait_until, Recorder};
use wsembed::ffi::*;

/// The `bufferedamountlow` events of one socket: `len` of each.
#[derive(Default)]
struct Lows {
    seen: Mutex<Vec<usize>>,
    changed: Condvar,
}

unsafe extern "C" fn on_low(_: ws_handle, e: *const ws_event, userdata: *mut c_void) {
    // SAFETY: userdata is the Arc<Lows> the test keeps alive past ws_free;
    // the event is valid during the call.
    let (lows, e) = unsafe { (&*(userdata as *const Lows), &*e) };
    assert_eq!(e.kind, WS_EVENT_BUFFERED_AMOUNT_LOW);
    lows.seen.lock().unwrap().push(e.len);
    lows.changed.notify_all();
}

impl Lows {
    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn wait_for(&self, n: usize) -> Vec<usize> {
        let seen = self.seen.lock().unwrap();
        let (seen, timeout) = self
            .changed
            .wait_timeout_while(seen, common::DEADLINE, |s| s.len() < n)
            .unwrap();
        assert!(!timeout.timed_out(), "{n} lows expected, got {seen:?}");
        seen.clone()
    }
}

/// A server that reads frames (client frames are masked) while `reading`
/// is set, checking that binary message n carries n in its first 8 bytes.
struct Sink {
    reading: Arc<AtomicBool>,
    messages: Arc<AtomicU64>,
    port: u16,
}

fn sink() -> Sink {
    let reading = Arc::new(AtomicBool::new(true));
    let messages = Arc::new(AtomicU64::new(0));
    let (r, m) = (reading.clone(), messages.clone());
    let server = raw_server(move |mut tcp: TcpStream| {
        raw_handshake(&mut tcp);
        loop {
            while !r.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut head = [0u8; 2];
            if tcp.read_exact(&mut head).is_err() {
                return;
            }
            let len = match head[1] & 0x7f {
                126 => {
                    let mut l = [0u8; 2];
                    tcp.read_exact(&mut l).unwrap();
                    u16::from_be_bytes(l) as u64
                }
                127 => {
                    let mut l = [0u8; 8];
                    tcp.read_exact(&mut l).unwrap();
                    u64::from_be_bytes(l)
                }
                n => n as u64,
            };
            let mut mask = [0u8; 4];
            tcp.read_exact(&mut mask).unwrap();
            let mut payload = vec![0u8; len as usize];
            tcp.read_exact(&mut payload).unwrap();
            if head[0] & 0x0f == 0x8 {
                return;
            }
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
            let n = m.load(Ordering::Acquire);
            if payload.len() >= 8 {
                let seq = u64::from_le_bytes(payload[..8].try_into().unwrap());
                assert_eq!(seq, n, "message {n} out of order or lost");
            }
            m.store(n + 1, Ordering::Release);
        }
    });
    Sink {
        reading,
        messages,
        port: server.port,
    }
}

fn open_to(sink: &Sink, lows: &Arc<Lows>, queue_limit: usize) -> (ws_handle, Arc<Recorder>) {
    let o = ws_options_new();
    assert_eq!(ws_options_set_max_send_queue(o, queue_limit), WS_OK);
    let rec = Recorder::new();
    let h = common::open_with(&format!("ws://127.0.0.1:{}/", sink.port), o);
    ws_options_free(o);
    rec.bind_all(h);
    assert_eq!(
        ws_bind(
            h,
            WS_EVENT_BUFFERED_AMOUNT_LOW,
            Some(on_low),
            Arc::as_ptr(lows) as *mut c_void
        ),
        WS_OK
    );
    rec.wait_open();
    (h, rec)
}

fn message(seq: u64, size: usize) -> Vec<u8> {
    let mut m = vec![0x5a; size];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

#[test]
fn fires_once_per_fall_and_never_while_it_stays_low() {
    let sink = sink();
    let lows = Arc::new(Lows::default());
    let (h, _rec) = open_to(&sink, &lows, 64 << 20);
    assert_eq!(ws_set_buffered_amount_low_threshold(h, 64 << 10), WS_OK);
    let mut seq = 0;
    let mut falls = 0;
    for _ in 0..2 {
        // The server stops reading: while the kernel takes the bytes the
        // queue drains after each send (each a fall), then it grows.
        sink.reading.store(false, Ordering::Release);
        for _ in 0..200 {
            let m = message(seq, 64 << 10);
            assert_eq!(ws_send_binary(h, m.as_ptr().cast(), m.len()), WS_OK);
            seq += 1;
        }
        wait_until("bufferedAmount well over the threshold", || {
            ws_buffered_amount(h) > 4 << 20
        });
        let high = lows.count();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(lows.count(), high, "nothing while it stays high");
        sink.reading.store(true, Ordering::Release);
        let seen = lows.wait_for(high + 1);
        assert!(seen[high] <= 64 << 10, "{seen:?}");
        wait_until("everything read", || {
            sink.messages.load(Ordering::Acquire) == seq
        });
        assert_eq!(lows.count(), high + 1, "one event for the fall");
        falls = high + 1;
    }
    // Small messages to a reading server: the amount never rises above
    // the threshold, so no event, however often it drains.
    for _ in 0..200 {
        let m = message(seq, 16);
        assert_eq!(ws_send_binary(h, m.as_ptr().cast(), m.len()), WS_OK);
        seq += 1;
    }
    wait_until("the small ones read", || {
        sink.messages.load(Ordering::Acquire) == seq
    });
    assert_eq!(lows.count(), falls);
    // At threshold 0 each drain of the queue is a fall.
    assert_eq!(ws_set_buffered_amount_low_threshold(h, 0), WS_OK);
    let m = message(seq, 16);
    assert_eq!(ws_send_binary(h, m.as_ptr().cast(), m.len()), WS_OK);
    assert_eq!(lows.wait_for(falls + 1)[falls], 0);
    assert_eq!(ws_free(h), WS_OK);
    assert_eq!(
        ws_set_buffered_amount_low_threshold(h, 0),
        WS_ERR_INVALID_HANDLE
    );
}

#[test]
fn a_producer_waits_for_room_and_every_message_arrives() {
    // 64 MiB through a 1 MiB queue to a reader that pauses now and then:
    // the producer sends until the queue is full, then sleeps until the
    // event says there is room.
    let sink = sink();
    let lows = Arc::new(Lows::default());
    let (h, _rec) = open_to(&sink, &lows, 1 << 20);
    assert_eq!(ws_set_buffered_amount_low_threshold(h, 256 << 10), WS_OK);
    let pauses = {
        let reading = sink.reading.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                reading.store(false, Ordering::Release);
                std::thread::sleep(Duration::from_millis(20));
                reading.store(true, Ordering::Release);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let total: u64 = (64 << 20) / (16 << 10);
    let mut waits = 0;
    for seq in 0..total {
        let m = message(seq, 16 << 10);
        loop {
            let seen = lows.count();
            match ws_send_binary(h, m.as_ptr().cast(), m.len()) {
                WS_OK => break,
                WS_ERR_QUEUE_FULL => {
                    waits += 1;
                    lows.wait_for(seen + 1);
                }
                other => panic!("send: {other}"),
            }
        }
    }
    wait_until("all read", || {
        sink.messages.load(Ordering::Acquire) == total
    });
    pauses.join().unwrap();
    assert!(waits > 0, "the queue never filled: the test tests nothing");
    assert_eq!(ws_free(h), WS_OK);
}
