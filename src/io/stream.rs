//! The byte stream under tungstenite: plain TCP now; TLS is a variant of
//! this enum, so the connection state machine does not change with it.
//!
//! No `write_vectored` here: std sends with MSG_NOSIGNAL but `writev`
//! cannot, and a SIGPIPE would kill a C host that does not ignore it.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use crate::proxy::Proxy;

/// How a socket reaches its server: through a proxy or not, over TLS or not.
/// Decided by `ws_open` on the caller's thread.
#[derive(Clone)]
pub struct Route {
    pub proxy: Option<Proxy>,
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ClientTls>,
}

impl Route {
    /// No TLS: for ws:// URLs.
    pub fn plain(proxy: Option<Proxy>) -> Route {
        Route {
            proxy,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

pub enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// Wraps a connected TCP stream as the route says. The TLS handshake
    /// itself runs lazily inside the first reads and writes.
    pub fn new(tcp: TcpStream, route: &Route) -> io::Result<Stream> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &route.tls {
            let conn = rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
                .map_err(io::Error::other)?;
            return Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))));
        }
        let _ = route;
        Ok(Stream::Plain(tcp))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => &s.sock,
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}
