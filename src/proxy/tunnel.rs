//! The HTTP CONNECT exchange with a proxy, as a state machine without
//! sockets: the IO code moves the bytes, in whole blocks rather than one
//! byte per read, and this decides what they mean. So the exchange is
//! tested without a proxy, and the IO code keeps one job.
//!
//! Reading in blocks means the last read may take more than the answer
//! head: those bytes already belong to the tunnel (the TLS or WebSocket
//! handshake that follows) and are handed back, never dropped.

use std::fmt;

use super::Proxy;

/// An answer head longer than this is not an HTTP answer.
const ANSWER_HEAD_MAX: usize = 16 * 1024;
/// What [`ConnectTunnel::read_buf`] offers per read: a CONNECT answer head
/// is usually under 200 bytes.
const READ_BLOCK: usize = 4 * 1024;
/// Header fields httparse may store. A CONNECT answer's fields are not
/// used, but the parser needs room for them; more is taken as malformed.
const MAX_HEADERS: usize = 64;

/// One CONNECT exchange: write [`to_write`](Self::to_write) until it is
/// empty, then read into [`read_buf`](Self::read_buf) and report each read
/// to [`filled`](Self::filled) until the tunnel is established or fails.
#[derive(Debug)]
pub(crate) struct ConnectTunnel {
    request: Vec<u8>,
    written: usize,
    /// The answer so far in `answer[..received]`; after it, room for the
    /// next read.
    answer: Vec<u8>,
    received: usize,
}

/// Where the exchange stands after a read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The answer head is not complete: read again when readable.
    NeedMore,
    /// The proxy said 2xx: the connection is now the tunnel. `leftover`
    /// are the bytes read after the answer head; the tunnel's first bytes,
    /// to be read before any from the socket.
    Established { leftover: Vec<u8> },
}

/// Why there is no tunnel. Display gives the text for the error event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TunnelError {
    /// End of stream before the whole answer head.
    Closed,
    /// No end of the answer head within [`ANSWER_HEAD_MAX`] bytes.
    HeadTooLong,
    /// Not an HTTP/1.x answer head.
    Malformed(httparse::Error),
    /// A whole answer that is not 2xx, with its status line (e.g.
    /// "HTTP/1.1 407 Proxy Authentication Required").
    Refused(String),
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Closed => f.write_str("proxy closed the connection before answering"),
            TunnelError::HeadTooLong => f.write_str("proxy: answer head too long"),
            TunnelError::Malformed(e) => write!(f, "proxy sent a malformed answer: {e}"),
            TunnelError::Refused(status_line) => {
                write!(f, "proxy refused the tunnel: {status_line}")
            }
        }
    }
}

impl ConnectTunnel {
    /// Asks `proxy` for a tunnel to `authority` ("host:port", IPv6 in
    /// brackets).
    pub(crate) fn new(proxy: &Proxy, authority: &str) -> ConnectTunnel {
        ConnectTunnel {
            request: proxy.request(authority),
            written: 0,
            answer: Vec::new(),
            received: 0,
        }
    }

    /// The part of the request not yet written; empty once all is.
    pub(crate) fn to_write(&self) -> &[u8] {
        &self.request[self.written..]
    }

    /// Records that the first `n` bytes of [`to_write`](Self::to_write)
    /// were written.
    pub(crate) fn wrote(&mut self, n: usize) {
        debug_assert!(n <= self.to_write().len(), "wrote more than to_write");
        self.written = (self.written + n).min(self.request.len());
    }

    /// Room for the next read, never empty while the answer is awaited.
    /// The buffer grows a block at a time, up to the head limit, so a short
    /// answer costs one small allocation.
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        let end = (self.received + READ_BLOCK).min(ANSWER_HEAD_MAX);
        if self.answer.len() < end {
            self.answer.resize(end, 0);
        }
        &mut self.answer[self.received..end]
    }

    /// Takes in a read of `n` bytes into [`read_buf`](Self::read_buf);
    /// `n == 0` is the proxy closing the connection.
    pub(crate) fn filled(&mut self, n: usize) -> Result<Progress, TunnelError> {
        if n == 0 {
            return Err(TunnelError::Closed);
        }
        let start = self.received;
        self.received += n;
        // A head ends with a line feed: parse again only when one came, so
        // a proxy answering a byte per packet costs no parse per byte.
        let head = if self.answer[start..self.received].contains(&b'\n') {
            parse_answer(&self.answer[..self.received])?
        } else {
            None
        };
        match head {
            Some(len) => Ok(Progress::Established {
                leftover: self.answer[len..self.received].to_vec(),
            }),
            None if self.received >= ANSWER_HEAD_MAX => Err(TunnelError::HeadTooLong),
            None => Ok(Progress::NeedMore),
        }
    }
}

/// Parses the start of a proxy's answer: `Some(head length)` for a whole
/// 2xx head, `None` while the head is incomplete.
fn parse_answer(buf: &[u8]) -> Result<Option<usize>, TunnelError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) => match response.code {
            Some(200..=299) => Ok(Some(len)),
            _ => Err(TunnelError::Refused(first_line(buf))),
        },
        Err(e) => Err(TunnelError::Malformed(e)),
    }
}

/// The first line of `buf`, for error messages.
fn first_line(buf: &[u8]) -> String {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHORITY: &str = "example.org:443";
    const OK: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

    fn tunnel() -> ConnectTunnel {
        let proxy = Proxy::parse("http://user:pass@127.0.0.1:3128").unwrap();
        let mut t = ConnectTunnel::new(&proxy, AUTHORITY);
        let n = t.to_write().len();
        t.wrote(n);
        t
    }

    /// Reads `bytes` into the tunnel in blocks of at most `block`, as a
    /// socket would; stops at the first answer that is not NeedMore.
    /// Returns it and how many bytes of `bytes` were read.
    fn feed(
        t: &mut ConnectTunnel,
        bytes: &[u8],
        block: usize,
    ) -> (Result<Progress, TunnelError>, usize) {
        let mut read = 0;
        loop {
            let buf = t.read_buf();
            assert!(!buf.is_empty());
            let n = buf.len().min(block).min(bytes.len() - read);
            buf[..n].copy_from_slice(&bytes[read..read + n]);
            read += n;
            match t.filled(n) {
                Ok(Progress::NeedMore) if read < bytes.len() => {}
                result => return (result, read),
            }
        }
    }

    #[test]
    fn request_goes_out_across_partial_writes() {
        let proxy = Proxy::parse("http://user:pass@127.0.0.1:3128").unwrap();
        let mut t = ConnectTunnel::new(&proxy, AUTHORITY);
        let expected = proxy.request(AUTHORITY);
        assert_eq!(t.to_write(), expected);
        let mut sent = Vec::new();
        for piece in [1, 0, 7, 20] {
            sent.extend_from_slice(&t.to_write()[..piece]);
            t.wrote(piece);
        }
        while !t.to_write().is_empty() {
            let n = t.to_write().len().min(5);
            sent.extend_from_slice(&t.to_write()[..n]);
            t.wrote(n);
        }
        assert_eq!(sent, expected);
        assert!(t.to_write().is_empty());
    }

    #[test]
    fn whole_answer_in_one_block() {
        let mut t = tunnel();
        let (result, read) = feed(&mut t, OK, usize::MAX);
        assert_eq!(result, Ok(Progress::Established { leftover: vec![] }));
        assert_eq!(read, OK.len());
    }

    #[test]
    fn answer_one_byte_at_a_time() {
        let answer = b"HTTP/1.0 200 OK\r\nProxy-Agent: test\r\nVia: 1.1 p\r\n\r\n";
        let mut t = tunnel();
        for (i, &byte) in answer.iter().enumerate() {
            t.read_buf()[0] = byte;
            let progress = t.filled(1).unwrap();
            if i + 1 < answer.len() {
                assert_eq!(progress, Progress::NeedMore, "after byte {i}");
            } else {
                assert_eq!(progress, Progress::Established { leftover: vec![] });
            }
        }
    }

    #[test]
    fn bytes_after_the_head_are_kept() {
        // A server that speaks first in the tunnel, or a TLS record.
        let tail: &[u8] = b"\x16\x03\x01\x00\x05hello\r\n\r\nmore";
        let stream = [OK, tail].concat();
        let mut t = tunnel();
        let (result, read) = feed(&mut t, &stream, usize::MAX);
        assert_eq!(
            result,
            Ok(Progress::Established {
                leftover: tail.to_vec()
            })
        );
        assert_eq!(read, stream.len());

        // Split in two reads anywhere: what the tunnel hands back, then
        // what is still unread, is the tail exactly.
        for split in 1..stream.len() {
            let mut t = tunnel();
            let (first, rest) = stream.split_at(split);
            let (mut result, mut read) = feed(&mut t, first, usize::MAX);
            if result == Ok(Progress::NeedMore) {
                (result, read) = feed(&mut t, rest, usize::MAX);
                read += first.len();
            }
            let Ok(Progress::Established { leftover }) = result else {
                panic!("split at {split}: {result:?}");
            };
            assert_eq!([&leftover, &stream[read..]].concat(), tail, "split {split}");
        }
    }

    #[test]
    fn refusal_carries_the_status_line() {
        let mut t = tunnel();
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                       Proxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 0\r\n\r\n";
        let (result, _) = feed(&mut t, answer, 9);
        let error = result.unwrap_err();
        assert_eq!(
            error,
            TunnelError::Refused("HTTP/1.1 407 Proxy Authentication Required".into())
        );
        assert_eq!(
            error.to_string(),
            "proxy refused the tunnel: HTTP/1.1 407 Proxy Authentication Required"
        );
        // 1xx and 3xx are not a tunnel either.
        for answer in [
            &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
            b"HTTP/1.1 301 Moved\r\n\r\n",
        ] {
            let (result, _) = feed(&mut tunnel(), answer, usize::MAX);
            assert!(matches!(result, Err(TunnelError::Refused(_))), "{result:?}");
        }
        // A status line without a reason phrase is still an answer.
        let (result, _) = feed(&mut tunnel(), b"HTTP/1.1 200\r\n\r\n", usize::MAX);
        assert_eq!(result, Ok(Progress::Established { leftover: vec![] }));
    }

    #[test]
    fn garbage_is_malformed() {
        for answer in [
            &b"garbage\r\n\r\n"[..],
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 abc Nope\r\n\r\n",
        ] {
            for block in [1, usize::MAX] {
                let (result, _) = feed(&mut tunnel(), answer, block);
                let Err(error @ TunnelError::Malformed(_)) = result else {
                    panic!("{answer:?}: {result:?}");
                };
                assert!(error
                    .to_string()
                    .starts_with("proxy sent a malformed answer: "));
            }
        }
    }

    #[test]
    fn head_over_the_limit() {
        // Within the limit, a head over several reads is fine.
        let long_ok = [
            &b"HTTP/1.1 200 OK\r\nX-Filler: "[..],
            &[b'a'; 12 * 1024],
            b"\r\n\r\n",
        ]
        .concat();
        let (result, _) = feed(&mut tunnel(), &long_ok, usize::MAX);
        assert_eq!(result, Ok(Progress::Established { leftover: vec![] }));

        let too_long = [&b"HTTP/1.1 200 OK\r\nX-Filler: "[..], &[b'a'; 20 * 1024]].concat();
        for block in [100, usize::MAX] {
            let mut t = tunnel();
            let (result, read) = feed(&mut t, &too_long, block);
            assert_eq!(result, Err(TunnelError::HeadTooLong));
            assert_eq!(read, ANSWER_HEAD_MAX, "reads stop at the limit");
            assert_eq!(
                result.unwrap_err().to_string(),
                "proxy: answer head too long"
            );
        }
    }

    #[test]
    fn proxy_closing_early() {
        let mut t = tunnel();
        assert_eq!(t.filled(0), Err(TunnelError::Closed));

        let mut t = tunnel();
        let (result, _) = feed(&mut t, b"HTTP/1.1 200 Connection est", usize::MAX);
        assert_eq!(result, Ok(Progress::NeedMore));
        let error = t.filled(0).unwrap_err();
        assert_eq!(error, TunnelError::Closed);
        assert_eq!(
            error.to_string(),
            "proxy closed the connection before answering"
        );
    }
}
