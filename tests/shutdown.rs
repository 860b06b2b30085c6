//! `ws_shutdown` ends every socket and joins the IO thread. In its own test
//! binary: it is process-wide.

mod common;

use common::*;
use wsembed::ffi::*;

#[test]
fn shutdown_closes_everything_and_the_library_starts_again() {
    let server = echo_server();
    let stalled = raw_server(|s| {
        std::thread::sleep(std::time::Duration::from_secs(30));
        drop(s);
    });
    let open_one = Recorder::new();
    let h1 = open(&server.url());
    open_one.bind_all(h1);
    open_one.wait_open();
    let connecting = Recorder::new();
    let h2 = open(&stalled.url());
    connecting.bind_all(h2);

    ws_shutdown();

    // Both got their one close event before shutdown returned.
    let e1 = open_one.events();
    assert_protocol_order(&e1);
    assert!(
        matches!(e1.last(), Some(Ev::Close(1001, _, true))),
        "{e1:?}"
    );
    let e2 = connecting.events();
    assert_eq!(e2, vec![Ev::Close(1006, String::new(), false)]);
    // Joined: the kernel may list the task a moment after pthread_join
    // returned (the thread id is cleared before the task is reaped).
    wait_until("the IO thread's task to go", || {
        !std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .any(|n| n.trim() == "wsembed-io")
    });
    // Handles stay valid until freed.
    assert_eq!(ws_ready_state(h1), WS_CLOSED);
    assert_eq!(ws_free(h1), WS_OK);
    assert_eq!(ws_free(h2), WS_OK);
    ws_shutdown(); // twice is harmless

    // A later open starts a new IO thread.
    let again = Recorder::new();
    let h3 = open(&server.url());
    again.bind_all(h3);
    again.wait_open();
    assert_eq!(send_text(h3, "again"), WS_OK);
    again.wait_messages(1);
    assert_eq!(ws_free(h3), WS_OK);
    ws_shutdown();
}
