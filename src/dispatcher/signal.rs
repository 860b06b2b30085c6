//! A file descriptor a host can poll: readable while the signal is raised.
//! An eventfd on Linux (one descriptor, a counter no writer can fill); a
//! non-blocking pipe elsewhere.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub(crate) struct Signal {
    /// Polled by the host, read here to lower the signal.
    read: OwnedFd,
    /// Written to raise it; the same descriptor as `read` for an eventfd.
    #[cfg(not(target_os = "linux"))]
    write: OwnedFd,
}

impl Signal {
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<Signal> {
        // SAFETY: eventfd takes no pointers; a negative result is an error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let read = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Signal { read })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> io::Result<Signal> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both are new descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            // SAFETY: plain fcntl calls on descriptors owned here.
            unsafe {
                let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(Signal { read, write })
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes the descriptor readable (and gives edge-triggered watchers a
    /// new edge).
    pub fn raise(&self) {
        let one = 1u64.to_ne_bytes();
        #[cfg(target_os = "linux")]
        let fd = self.read.as_raw_fd();
        #[cfg(not(target_os = "linux"))]
        let fd = self.write.as_raw_fd();
        // SAFETY: writes 8 bytes from a live buffer to a descriptor owned
        // here. A full pipe or counter already reads as raised, so a
        // failed write loses nothing.
        let _ = unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
    }

    /// Makes the descriptor unreadable again.
    pub fn lower(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a live buffer of the given length from a
            // non-blocking descriptor owned here.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // An eventfd empties in one read; a pipe may need more.
            if n <= 0 || cfg!(target_os = "linux") {
                return;
            }
        }
    }
}

/// Waits until `fd` is readable or `timeout_ms` passes (-1: no limit).
/// True when readable. A signal interrupting the wait ends it early, as a
/// timeout.
pub(crate) fn wait(fd: RawFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, count 1; polling a closed descriptor only
    // reports POLLNVAL.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_exactly_while_raised() {
        let s = Signal::new().unwrap();
        assert!(!wait(s.fd(), 0));
        s.raise();
        s.raise();
        assert!(wait(s.fd(), 0));
        assert!(wait(s.fd(), 0), "polling does not lower it");
        s.lower();
        assert!(!wait(s.fd(), 0));
        s.lower();
        assert!(!wait(s.fd(), 0));
    }
}
