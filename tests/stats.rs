//! `ws_get_stats` and `ws_ping` through the C ABI, against a server that
//! counts the bytes it read and wrote on the same connection, so the
//! client's wire counts are checked exactly.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{open, raw_server, send_text, wait_until, Recorder};
use tungstenite::Message;
use wsembed::ffi::*;

/// A TCP stream that counts what goes through it.
struct Counted {
    inner: TcpStream,
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn stats(h: ws_handle) -> ws_stats {
    let mut s = ws_stats {
        size: std::mem::size_of::<ws_stats>() as u32,
        ..Default::default()
    };
    assert_eq!(ws_get_stats(h, &mut s), WS_OK);
    s
}

#[test]
fn a_scripted_exchange_is_counted_exactly() {
    let server_read = Arc::new(AtomicU64::new(0));
    let server_written = Arc::new(AtomicU64::new(0));
    let (read, written) = (server_read.clone(), server_written.clone());
    // Echoes every data message, and ends with a ping of its own.
    let server = raw_server(move |tcp| {
        let counted = Counted {
            inner: tcp,
            read: read.clone(),
            written: written.clone(),
        };
        let Ok(mut ws) = tungstenite::accept(counted) else {
            return;
        };
        let mut echoed = 0;
        while let Ok(m) = ws.read() {
            if m.is_text() || m.is_binary() {
                echoed += 1;
                let _ = ws.send(m);
                if echoed == 4 {
                    let _ = ws.send(Message::Ping(b"srv".to_vec().into()));
                }
            }
        }
    });
    let rec = Recorder::new();
    let h = open(&server.url());
    rec.bind_all(h);
    rec.wait_open();
    let opened = stats(h);
    assert_eq!(opened.connections, 1);
    assert_eq!(opened.messages_sent + opened.messages_received, 0);
    for text in ["a", "bb", "ccc"] {
        assert_eq!(send_text(h, text), WS_OK);
    }
    assert_eq!(ws_send_binary(h, [7u8; 10].as_ptr().cast(), 10), WS_OK);
    rec.wait_messages(4);
    // The server's ping comes after the fourth echo; its pong is ours.
    wait_until("the pong to the server's ping", || {
        stats(h).frames_received == 5 && stats(h).frames_sent == 5
    });
    assert_eq!(ws_close(h), WS_OK);
    rec.wait_close();
    wait_until("the totals of the whole connection", || {
        stats(h).bytes_received == server_written.load(Ordering::SeqCst)
    });
    let s = stats(h);
    assert_eq!(s.size as usize, std::mem::size_of::<ws_stats>());
    assert_eq!((s.messages_sent, s.messages_received), (4, 4));
    assert_eq!((s.payload_bytes_sent, s.payload_bytes_received), (16, 16));
    // Four messages, the pong and the close; four echoes, the ping and the
    // close's answer.
    assert_eq!((s.frames_sent, s.frames_received), (6, 6));
    assert_eq!(s.bytes_sent, server_read.load(Ordering::SeqCst));
    assert_eq!(s.bytes_received, server_written.load(Ordering::SeqCst));
    assert_eq!(s.connections, 1);
    // No ping of ours was answered.
    assert_eq!((s.pongs_received, s.last_rtt_us), (0, 0));
    ws_free(h);
}

#[test]
fn a_ping_gets_its_round_trip_time() {
    let server = common::echo_server();
    let rec = Recorder::new();
    let h = open(&server.url());
    // Not open yet.
    assert_eq!(ws_ping(h, std::ptr::null(), 0), WS_ERR_INVALID_STATE);
    rec.bind_all(h);
    rec.wait_open();
    assert_eq!(ws_ping(h, b"rtt".as_ptr().cast(), 3), WS_OK);
    wait_until("the pong", || stats(h).pings_answered == 1);
    let s = stats(h);
    assert!(s.last_rtt_us > 0, "{s:?}");
    assert_eq!((s.pings_sent, s.pongs_received), (1, 1));
    // An empty ping works too, and one of 125 bytes; 126 is refused.
    assert_eq!(ws_ping(h, std::ptr::null(), 0), WS_OK);
    wait_until("the second pong", || stats(h).pongs_received == 2);
    let big = [b'x'; 126];
    assert_eq!(ws_ping(h, big.as_ptr().cast(), 125), WS_OK);
    assert_eq!(
        ws_ping(h, big.as_ptr().cast(), 126),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(ws_ping(h, std::ptr::null(), 1), WS_ERR_INVALID_ARGUMENT);
    wait_until("the third pong", || stats(h).pongs_received == 3);
    assert_eq!(ws_close(h), WS_OK);
    rec.wait_close();
    assert_eq!(ws_ping(h, std::ptr::null(), 0), WS_ERR_INVALID_STATE);
    ws_free(h);
    assert_eq!(ws_ping(h, std::ptr::null(), 0), WS_ERR_INVALID_HANDLE);
}

#[test]
fn a_smaller_struct_gets_only_its_fields_and_bad_calls_are_refused() {
    let server = common::echo_server();
    let rec = Recorder::new();
    let h = open(&server.url());
    rec.bind_all(h);
    rec.wait_open();
    assert_eq!(send_text(h, "hi"), WS_OK);
    rec.wait_messages(1);
    // An older caller's struct: the size, the padding and two counters.
    let old_size = std::mem::offset_of!(ws_stats, messages_sent);
    let mut s = ws_stats {
        size: old_size as u32,
        messages_sent: 99,
        ..Default::default()
    };
    assert_eq!(ws_get_stats(h, &mut s), WS_OK);
    assert_eq!(s.size as usize, old_size);
    assert!(s.bytes_sent > 0 && s.bytes_received > 0, "{s:?}");
    assert_eq!(s.messages_sent, 99, "past the caller's size: untouched");
    // A newer caller's larger struct: filled up to this library's size.
    let mut big = [0u64; 32];
    big[0] = (big.len() * 8) as u32 as u64;
    assert_eq!(ws_get_stats(h, big.as_mut_ptr().cast::<ws_stats>()), WS_OK);
    assert_eq!(big[0] as u32 as usize, std::mem::size_of::<ws_stats>());
    assert_eq!(
        ws_get_stats(h, std::ptr::null_mut()),
        WS_ERR_INVALID_ARGUMENT
    );
    let mut tiny = ws_stats::default();
    assert_eq!(ws_get_stats(h, &mut tiny), WS_ERR_INVALID_ARGUMENT);
    assert_eq!(ws_close(h), WS_OK);
    rec.wait_close();
    ws_free(h);
    let mut after = ws_stats {
        size: std::mem::size_of::<ws_stats>() as u32,
        ..Default::default()
    };
    assert_eq!(ws_get_stats(h, &mut after), WS_ERR_INVALID_HANDLE);
}
