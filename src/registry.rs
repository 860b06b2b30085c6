//! Handle → socket. Handles come from a counter and are never reused, so a
//! stale handle finds nothing instead of someone else's socket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use once_cell::sync::Lazy;

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
