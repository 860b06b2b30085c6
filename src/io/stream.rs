//! The byte stream under tungstenite: plain TCP now; TLS is a variant of
//! this enum, so the connection state machine does not change with it.
//!
//! No `write_vectored` here: std sends with MSG_NOSIGNAL but `writev`
//! cannot, and a SIGPIPE would kill a C host that does not ignore it.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

pub enum Stream {
    Plain(TcpStream),
}

impl Stream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
        }
    }
}
