//! Dispatchers and process-wide state: `ws_shutdown` leaves their events
//! queued for the owner, and freeing them gives their descriptors back. In
//! its own test binary: both look at the whole process.

mod common;

use common::*;
use wsembed::ffi::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn shutdown_leaves_events_queued_and_free_returns_every_descriptor() {
    let server = echo_server();
    let d = ws_dispatcher_new();
    assert_ne!(d, 0);
    let o = ws_options_new();
    assert_eq!(ws_options_set_dispatcher(o, d), WS_OK);
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    let r = Recorder::new();
    r.bind_all(h);
    wait_until("open", || ws_ready_state(h) == WS_OPEN);

    // Shutdown closes the socket on the IO thread, but runs no callback of
    // a dispatcher socket: its events wait for the owner.
    ws_shutdown();
    assert_eq!(ws_ready_state(h), WS_CLOSED);
    assert!(r.events().is_empty(), "{:?}", r.events());
    let mut ran = 0;
    while !has_close(&r.events()) {
        let n = ws_dispatch(d, 1000, 0);
        assert!(n > 0, "queued events were lost: {n}");
        ran += n;
    }
    assert_eq!(ran, 2);
    let events = r.events();
    assert_protocol_order(&events);
    assert!(
        matches!(events.last(), Some(Ev::Close(1001, _, true))),
        "{events:?}"
    );
    assert_eq!(ws_dispatcher_free(d), WS_ERR_INVALID_STATE);
    assert_eq!(ws_free(h), WS_OK);
    assert_eq!(ws_dispatcher_free(d), WS_OK);

    // No IO thread now: nothing else opens or closes descriptors.
    let baseline = open_fds();
    let dispatchers: Vec<ws_dispatcher> = (0..8).map(|_| ws_dispatcher_new()).collect();
    assert!(dispatchers.iter().all(|&d| d != 0));
    assert_eq!(open_fds(), baseline + 8, "one descriptor each");
    for d in dispatchers {
        assert_eq!(ws_dispatcher_free(d), WS_OK);
    }
    assert_eq!(
        open_fds(),
        baseline,
        "every dispatcher descriptor is closed"
    );
}
