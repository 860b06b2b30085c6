//! Handle → socket and handle → dispatcher. Handles come from counters and
//! are never reused, so a stale handle finds nothing instead of someone
//! else's socket or dispatcher.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use once_cell::sync::Lazy;

use crate::dispatcher::Dispatcher;
use crate::handle_map::HandleMap;
use crate::socket::Socket;
use crate::sync::lock;

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);
static SOCKETS: Lazy<Mutex<HandleMap<Arc<Socket>>>> = Lazy::new(Default::default);

fn sockets() -> MutexGuard<'static, HandleMap<Arc<Socket>>> {
    lock(&SOCKETS)
}

/// A fresh handle; 0 is never issued.
pub fn next_handle() -> u64 {
    NEXT_HANDLE.fetch_add(1, Ordering::Relaxed)
}

pub fn insert(socket: Arc<Socket>) {
    sockets().insert(socket.handle, socket);
}

pub fn get(handle: u64) -> Option<Arc<Socket>> {
    sockets().get(&handle).cloned()
}

pub fn remove(handle: u64) -> Option<Arc<Socket>> {
    sockets().remove(&handle)
}

static NEXT_DISPATCHER: AtomicU64 = AtomicU64::new(1);
static DISPATCHERS: Lazy<Mutex<HandleMap<Arc<Dispatcher>>>> = Lazy::new(Default::default);

/// Files a new dispatcher under a fresh handle (0 is never issued).
pub fn insert_dispatcher(dispatcher: Arc<Dispatcher>) -> u64 {
    let handle = NEXT_DISPATCHER.fetch_add(1, Ordering::Relaxed);
    lock(&DISPATCHERS).insert(handle, dispatcher);
    handle
}

pub fn dispatcher(handle: u64) -> Option<Arc<Dispatcher>> {
    lock(&DISPATCHERS).get(&handle).cloned()
}

pub fn remove_dispatcher(handle: u64) -> Option<Arc<Dispatcher>> {
    lock(&DISPATCHERS).remove(&handle)
}
