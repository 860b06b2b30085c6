//! The SOCKS5 exchange with a proxy (RFC 1928, with RFC 1929 username and
//! password), as a state machine without sockets, like [`super::tunnel`]
//! for HTTP CONNECT: the IO code moves the bytes and drives both the same
//! way, this decides what they mean.
//!
//! Nothing assumes one read per message: an answer may come a byte at a
//! time, and the read that ends the CONNECT reply may carry the tunnel's
//! first bytes, which are handed back in [`Progress::Established`].

use std::fmt;
use std::net::SocketAddr;

use super::tunnel::Progress;

const VERSION: u8 = 5;
/// The version of the RFC 1929 subnegotiation, not of SOCKS.
const AUTH_VERSION: u8 = 1;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;
const CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_NAME: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;
/// Room for reads: the longest CONNECT reply (a 255-byte name) is 262
/// bytes, and what is left over is the tunnel's first bytes.
const INPUT_LEN: usize = 512;

/// Where the proxy is to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Socks5Target {
    Ip(SocketAddr),
    /// A host name for the proxy to resolve ("socks5h"), and the port.
    Name(String, u16),
}

/// The answer a [`Socks5Tunnel`] waits for, also naming it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    MethodChoice,
    Authentication,
    Reply,
}

impl Stage {
    /// The version byte the answer starts with.
    fn version(self) -> u8 {
        match self {
            Stage::Authentication => AUTH_VERSION,
            Stage::MethodChoice | Stage::Reply => VERSION,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::MethodChoice => "method choice",
            Stage::Authentication => "authentication answer",
            Stage::Reply => "CONNECT reply",
        })
    }
}

/// Why there is no tunnel. Display gives the text for the error event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Socks5Error {
    /// A username or password empty or over 255 bytes: RFC 1929 sends each
    /// after a one-byte length and allows no empty one.
    CredentialsTooLong,
    /// A target name empty or over 255 bytes, for the same reason.
    NameTooLong,
    /// End of stream before the whole answer.
    Closed,
    /// Malformed: a version byte other than 5 (1 in the authentication
    /// answer).
    BadVersion(Stage, u8),
    /// Malformed: a method not offered, such as 02 without credentials.
    UnofferedMethod(u8),
    /// Malformed: a reply address type other than IPv4, name and IPv6.
    BadAddressType(u8),
    /// Method FF: the proxy takes none of the methods offered.
    NoAcceptableMethod,
    /// The RFC 1929 status, not 0.
    AuthRejected(u8),
    /// The reply code, not 0.
    Refused(u8),
}

impl fmt::Display for Socks5Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SOCKS5 proxy: ")?;
        match *self {
            Socks5Error::CredentialsTooLong => {
                f.write_str("the username and the password must each be 1 to 255 bytes")
            }
            Socks5Error::NameTooLong => f.write_str("the target host name must be 1 to 255 bytes"),
            Socks5Error::Closed => f.write_str("closed the connection before answering"),
            Socks5Error::BadVersion(stage, v) => {
                let expected = stage.version();
                write!(f, "malformed {stage}: version {v}, not {expected}")
            }
            Socks5Error::UnofferedMethod(m) => {
                write!(f, "chose authentication method {m}, which was not offered")
            }
            Socks5Error::BadAddressType(a) => {
                write!(f, "malformed CONNECT reply: address type {a}")
            }
            Socks5Error::NoAcceptableMethod => f.write_str("no acceptable authentication method"),
            Socks5Error::AuthRejected(_) => f.write_str("rejected the username and password"),
            Socks5Error::Refused(code) => match reply_name(code) {
                Some(name) => write!(
                    f,
                    "refused the connection to the target: {name} (reply code {code})"
                ),
                None => write!(
                    f,
                    "refused the connection to the target: unknown reply code {code}"
                ),
            },
        }
    }
}

/// The names RFC 1928 section 6 gives the failure codes.
fn reply_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => return None,
    })
}

/// One SOCKS5 exchange. Unlike CONNECT it goes back and forth: greeting,
/// method choice, perhaps username and password and their answer, then
/// the CONNECT request and its reply. So the driver, after every call,
/// writes [`to_write`](Self::to_write) while it is not empty, and otherwise
/// reads into [`read_buf`](Self::read_buf) and reports the read to
/// [`filled`](Self::filled), until the tunnel is established or fails: a
/// read that completes an answer may make `to_write` non-empty again.
pub(crate) struct Socks5Tunnel {
    /// The greeting, then the username and password, then the CONNECT
    /// request: each replaced once written and answered.
    out: Vec<u8>,
    written: usize,
    connect: Vec<u8>,
    /// The RFC 1929 request, with the username and password: kept until
    /// the proxy chooses a method, then sent or dropped.
    auth: Option<Vec<u8>>,
    awaiting: Stage,
    /// The answer so far in `input[..received]`. On the heap, so the
    /// tunnel is small to hold and to move.
    input: Box<[u8; INPUT_LEN]>,
    received: usize,
}

impl fmt::Debug for Socks5Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `out` may be the username and password: only its length shows.
        f.debug_struct("Socks5Tunnel")
            .field("awaiting", &self.awaiting)
            .field("to_write", &self.to_write().len())
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

/// A length for RFC 1929 or a name: 1 to 255.
fn short_len(bytes: &[u8]) -> Option<u8> {
    u8::try_from(bytes.len()).ok().filter(|&len| len > 0)
}

impl Socks5Tunnel {
    /// Asks for a tunnel to `target`, offering `credentials` (username,
    /// password) besides no authentication when there are some.
    pub(crate) fn new(
        target: Socks5Target,
        credentials: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Socks5Tunnel, Socks5Error> {
        let auth = match &credentials {
            Some((user, pass)) => match (short_len(user), short_len(pass)) {
                (Some(ulen), Some(plen)) => {
                    Some([&[AUTH_VERSION, ulen][..], user, &[plen], pass].concat())
                }
                _ => return Err(Socks5Error::CredentialsTooLong),
            },
            None => None,
        };
        let mut connect = vec![VERSION, CONNECT, 0];
        let port = match &target {
            Socks5Target::Ip(SocketAddr::V4(a)) => {
                connect.push(ATYP_IPV4);
                connect.extend_from_slice(&a.ip().octets());
                a.port()
            }
            Socks5Target::Ip(SocketAddr::V6(a)) => {
                connect.push(ATYP_IPV6);
                connect.extend_from_slice(&a.ip().octets());
                a.port()
            }
            Socks5Target::Name(name, port) => {
                let len = short_len(name.as_bytes()).ok_or(Socks5Error::NameTooLong)?;
                connect.extend_from_slice(&[ATYP_NAME, len]);
                connect.extend_from_slice(name.as_bytes());
                *port
            }
        };
        connect.extend_from_slice(&port.to_be_bytes());
        let out = match auth {
            Some(_) => vec![VERSION, 2, NO_AUTH, USER_PASS],
            None => vec![VERSION, 1, NO_AUTH],
        };
        Ok(Socks5Tunnel {
            out,
            written: 0,
            connect,
            auth,
            awaiting: Stage::MethodChoice,
            input: Box::new([0; INPUT_LEN]),
            received: 0,
        })
    }

    /// The part of the current message not yet written; empty while an
    /// answer is awaited.
    pub(crate) fn to_write(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// Records that the first `n` bytes of [`to_write`](Self::to_write)
    /// were written.
    pub(crate) fn wrote(&mut self, n: usize) {
        debug_assert!(n <= self.to_write().len(), "wrote more than to_write");
        self.written = (self.written + n).min(self.out.len());
    }

    /// Room for the next read, never empty while an answer is awaited.
    /// Before the CONNECT reply a read is cut at the end of the answer: the
    /// proxy may send the next one early, and it must wait in the socket
    /// until the request it answers is written and the answer is awaited.
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        let end = self.read_end();
        &mut self.input[self.received..end]
    }

    fn read_end(&self) -> usize {
        match self.awaiting {
            Stage::MethodChoice | Stage::Authentication => 2,
            Stage::Reply => INPUT_LEN,
        }
    }

    /// Takes in a read of `n` bytes into [`read_buf`](Self::read_buf);
    /// `n == 0` is the proxy closing the connection.
    pub(crate) fn filled(&mut self, n: usize) -> Result<Progress, Socks5Error> {
        debug_assert!(self.to_write().is_empty(), "read before writing");
        debug_assert!(self.received + n <= self.read_end(), "filled past read_buf");
        if n == 0 {
            return Err(Socks5Error::Closed);
        }
        self.received += n;
        if self.awaiting == Stage::Reply {
            return reply(&self.input[..self.received]);
        }
        let &[version, answer] = &self.input[..self.received] else {
            return Ok(Progress::NeedMore);
        };
        self.received = 0;
        let (awaiting, next) = match (self.awaiting, version, answer) {
            (Stage::MethodChoice, VERSION, NO_AUTH) => (Stage::Reply, self.take_connect()),
            (Stage::MethodChoice, VERSION, USER_PASS) => match self.auth.take() {
                Some(auth) => (Stage::Authentication, auth),
                None => return Err(Socks5Error::UnofferedMethod(USER_PASS)),
            },
            (Stage::MethodChoice, VERSION, NO_ACCEPTABLE) => {
                return Err(Socks5Error::NoAcceptableMethod)
            }
            (Stage::MethodChoice, VERSION, method) => {
                return Err(Socks5Error::UnofferedMethod(method))
            }
            (Stage::Authentication, AUTH_VERSION, 0) => (Stage::Reply, self.take_connect()),
            (Stage::Authentication, AUTH_VERSION, status) => {
                return Err(Socks5Error::AuthRejected(status))
            }
            (stage, version, _) => return Err(Socks5Error::BadVersion(stage, version)),
        };
        self.awaiting = awaiting;
        self.out = next;
        self.written = 0;
        Ok(Progress::NeedMore)
    }

    /// The CONNECT request, dropping the credentials: a proxy that did not
    /// ask for them by now never will.
    fn take_connect(&mut self) -> Vec<u8> {
        self.auth = None;
        std::mem::take(&mut self.connect)
    }
}

/// Reads the CONNECT reply at the start of `got`: VER REP RSV ATYP, the
/// bound address, 2 bytes of port. A failure code ends the exchange as soon
/// as it is in, since the rest of a failed reply says nothing more. RSV
/// and the bound address are not checked: a client that only tunnels has
/// no use for them.
fn reply(got: &[u8]) -> Result<Progress, Socks5Error> {
    if got[0] != VERSION {
        return Err(Socks5Error::BadVersion(Stage::Reply, got[0]));
    }
    match got.get(1) {
        Some(0) => {}
        Some(&code) => return Err(Socks5Error::Refused(code)),
        None => return Ok(Progress::NeedMore),
    }
    let address = match (got.get(3), got.get(4)) {
        (Some(&ATYP_IPV4), _) => 4,
        (Some(&ATYP_IPV6), _) => 16,
        (Some(&ATYP_NAME), Some(&len)) => 1 + usize::from(len),
        (Some(&ATYP_NAME), None) | (None, _) => return Ok(Progress::NeedMore),
        (Some(&atyp), _) => return Err(Socks5Error::BadAddressType(atyp)),
    };
    let len = 4 + address + 2;
    Ok(match got.get(len..) {
        Some(leftover) => Progress::Established {
            leftover: leftover.to_vec(),
        },
        None => Progress::NeedMore,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &[u8] = b"alice";
    const PASS: &[u8] = b"hunter2-secret";
    const GREETING: &[u8] = &[5, 1, 0];
    const GREETING_AUTH: &[u8] = &[5, 2, 0, 2];
    /// CONNECT to 192.0.2.1:443, as RFC 1928 section 4 lays it out.
    const REQUEST_V4: &[u8] = &[5, 1, 0, 1, 192, 0, 2, 1, 0x01, 0xbb];
    /// Succeeded, bound to 10.0.0.1:1080.
    const REPLY_V4: &[u8] = &[5, 0, 0, 1, 10, 0, 0, 1, 0x04, 0x38];
    const TAIL: &[u8] = b"\x16\x03\x01\x00\x05hello";

    fn plain() -> Socks5Tunnel {
        Socks5Tunnel::new(Socks5Target::Ip("192.0.2.1:443".parse().unwrap()), None).unwrap()
    }

    fn with(user: &[u8], pass: &[u8]) -> Result<Socks5Tunnel, Socks5Error> {
        let target = Socks5Target::Ip("192.0.2.1:443".parse().unwrap());
        Socks5Tunnel::new(target, Some((user.to_vec(), pass.to_vec())))
    }

    fn auth_request() -> Vec<u8> {
        [&[1, 5][..], USER, &[14], PASS].concat()
    }

    /// Runs the exchange as the IO code would against a proxy that has
    /// sent all of `server` already: writes at most `write_block` bytes
    /// while there is something to write, else reads at most `read_block`.
    /// Returns the outcome, what was written and how much of `server` was
    /// read; past its end, reads see the proxy close.
    fn drive(
        t: &mut Socks5Tunnel,
        server: &[u8],
        read_block: usize,
        write_block: usize,
    ) -> (Result<Progress, Socks5Error>, Vec<u8>, usize) {
        let (mut sent, mut read) = (Vec::new(), 0);
        loop {
            if !t.to_write().is_empty() {
                let n = t.to_write().len().min(write_block);
                sent.extend_from_slice(&t.to_write()[..n]);
                t.wrote(n);
                continue;
            }
            let buf = t.read_buf();
            assert!(!buf.is_empty());
            let n = buf.len().min(read_block).min(server.len() - read);
            buf[..n].copy_from_slice(&server[read..read + n]);
            read += n;
            match t.filled(n) {
                Ok(Progress::NeedMore) => {}
                result => return (result, sent, read),
            }
        }
    }

    fn run(mut t: Socks5Tunnel, server: &[u8]) -> Result<Progress, Socks5Error> {
        drive(&mut t, server, usize::MAX, usize::MAX).0
    }

    fn established(leftover: &[u8]) -> Result<Progress, Socks5Error> {
        let leftover = leftover.to_vec();
        Ok(Progress::Established { leftover })
    }

    #[test]
    fn no_auth_exchange_in_one_blob() {
        let server = [&[5, 0], REPLY_V4, TAIL].concat();
        let (result, sent, read) = drive(&mut plain(), &server, usize::MAX, usize::MAX);
        assert_eq!(result, established(TAIL));
        assert_eq!(sent, [GREETING, REQUEST_V4].concat());
        assert_eq!(read, server.len());
    }

    #[test]
    fn no_auth_exchange_one_byte_at_a_time() {
        let server = [&[5, 0], REPLY_V4, TAIL].concat();
        let (result, sent, read) = drive(&mut plain(), &server, 1, usize::MAX);
        assert_eq!(result, established(b""));
        assert_eq!(sent, [GREETING, REQUEST_V4].concat());
        assert_eq!(&server[read..], TAIL, "the tail stays unread");
    }

    #[test]
    fn credentials_accepted_across_short_writes() {
        let server = [&[5, 2, 1, 0], REPLY_V4].concat();
        for (read_block, write_block) in [(usize::MAX, usize::MAX), (1, 1), (usize::MAX, 1)] {
            let mut t = with(USER, PASS).unwrap();
            let (result, sent, _) = drive(&mut t, &server, read_block, write_block);
            assert_eq!(result, established(b""));
            assert_eq!(sent, [GREETING_AUTH, &auth_request(), REQUEST_V4].concat());
        }
        // Credentials offered but not asked for are never sent.
        let (result, sent, _) = drive(&mut with(USER, PASS).unwrap(), &[5, 0], 1, 1);
        assert_eq!(result, Err(Socks5Error::Closed));
        assert_eq!(sent, [GREETING_AUTH, REQUEST_V4].concat());
    }

    #[test]
    fn credentials_rejected() {
        let error = run(with(USER, PASS).unwrap(), &[5, 2, 1, 1]).unwrap_err();
        assert_eq!(error, Socks5Error::AuthRejected(1));
        assert_eq!(
            error.to_string(),
            "SOCKS5 proxy: rejected the username and password"
        );
    }

    #[test]
    fn no_acceptable_method() {
        for t in [plain(), with(USER, PASS).unwrap()] {
            let error = run(t, &[5, 0xff]).unwrap_err();
            assert_eq!(error, Socks5Error::NoAcceptableMethod);
            assert_eq!(
                error.to_string(),
                "SOCKS5 proxy: no acceptable authentication method"
            );
        }
    }

    #[test]
    fn method_not_offered() {
        // 02 without credentials, GSSAPI, a private method.
        for method in [2, 1, 0x80] {
            assert_eq!(
                run(plain(), &[5, method]),
                Err(Socks5Error::UnofferedMethod(method))
            );
        }
        assert_eq!(
            Socks5Error::UnofferedMethod(2).to_string(),
            "SOCKS5 proxy: chose authentication method 2, which was not offered"
        );
    }

    #[test]
    fn every_reply_code() {
        for code in 1..=8 {
            let error = run(plain(), &[5, 0, 5, code, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap_err();
            assert_eq!(error, Socks5Error::Refused(code));
            let name = reply_name(code).unwrap();
            let text = format!("refused the connection to the target: {name} (reply code {code})");
            assert_eq!(error.to_string(), format!("SOCKS5 proxy: {text}"));
        }
        assert_eq!(
            Socks5Error::Refused(5).to_string(),
            "SOCKS5 proxy: refused the connection to the target: connection refused (reply code 5)"
        );
        // Known from the first two bytes, though the proxy closes then.
        let error = run(plain(), &[5, 0, 5, 9]);
        assert_eq!(error, Err(Socks5Error::Refused(9)));
        assert_eq!(
            error.unwrap_err().to_string(),
            "SOCKS5 proxy: refused the connection to the target: unknown reply code 9"
        );
    }

    #[test]
    fn reply_length_by_address_type() {
        let v6 = [&[5, 0, 0, 4][..], &[0x20; 16], &[0, 80]].concat();
        let name = [&[5, 0, 0, 3, 9][..], b"proxy.lan", &[0, 80]].concat();
        let long_name = [&[5, 0, 0, 3, 255][..], &[b'a'; 255], &[0, 80]].concat();
        for reply in [REPLY_V4, &v6, &name, &long_name] {
            let stream = [&[5, 0], reply, TAIL].concat();
            // Split in two reads anywhere: what the tunnel hands back, then
            // what is still unread, is the tail exactly.
            for split in 1..stream.len() {
                let mut t = plain();
                let (first, rest) = stream.split_at(split);
                let (mut result, _, mut read) = drive(&mut t, first, usize::MAX, usize::MAX);
                if result == Err(Socks5Error::Closed) {
                    (result, _, read) = drive(&mut t, rest, usize::MAX, usize::MAX);
                    read += first.len();
                }
                let Ok(Progress::Established { leftover }) = result else {
                    panic!("split at {split}: {result:?}");
                };
                assert_eq!([&leftover, &stream[read..]].concat(), TAIL, "split {split}");
            }
        }
    }

    #[test]
    fn requests_as_rfc_1928_writes_them() {
        let request = |target| {
            let mut t = Socks5Tunnel::new(target, None).unwrap();
            let (_, sent, _) = drive(&mut t, &[5, 0], usize::MAX, usize::MAX);
            sent[GREETING.len()..].to_vec()
        };
        let (_, sent, _) = drive(&mut plain(), &[5, 0], usize::MAX, usize::MAX);
        assert_eq!(sent, [GREETING, REQUEST_V4].concat());
        let v6 = Socks5Target::Ip("[2001:db8::1]:8080".parse().unwrap());
        let address = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            request(v6),
            [&[5, 1, 0, 4][..], &address, &[0x1f, 0x90]].concat()
        );
        let name = Socks5Target::Name("example.org".into(), 80);
        let expected = [&[5, 1, 0, 3, 11][..], b"example.org", &[0, 80]].concat();
        assert_eq!(request(name), expected);
    }

    #[test]
    fn credential_lengths() {
        let max = [b'u'; 255];
        let (_, sent, _) = drive(&mut with(&max, &max).unwrap(), &[5, 2], 1, 1);
        assert_eq!(sent.len(), GREETING_AUTH.len() + 3 + 255 + 255);
        let long = [b'x'; 256];
        for (user, pass) in [(&long[..], PASS), (USER, &long), (b"", PASS), (USER, b"")] {
            assert_eq!(
                with(user, pass).unwrap_err(),
                Socks5Error::CredentialsTooLong
            );
        }
    }

    #[test]
    fn name_lengths() {
        let name = |len| Socks5Target::Name("a".repeat(len), 443);
        assert!(Socks5Tunnel::new(name(255), None).is_ok());
        for len in [0, 256] {
            assert_eq!(
                Socks5Tunnel::new(name(len), None).unwrap_err(),
                Socks5Error::NameTooLong
            );
        }
    }

    #[test]
    fn closed_before_the_whole_answer() {
        let server = [&[5, 2, 1, 0], REPLY_V4].concat();
        for end in 0..server.len() {
            let (result, _, _) = drive(&mut with(USER, PASS).unwrap(), &server[..end], 1, 9);
            assert_eq!(result, Err(Socks5Error::Closed), "closed after {end} bytes");
        }
        let text = Socks5Error::Closed.to_string();
        assert_eq!(text, "SOCKS5 proxy: closed the connection before answering");
    }

    #[test]
    fn bad_version_or_address_type() {
        let t = || with(USER, PASS).unwrap();
        let bad = |stage, v| Err(Socks5Error::BadVersion(stage, v));
        assert_eq!(run(t(), &[4, 0]), bad(Stage::MethodChoice, 4));
        assert_eq!(run(t(), &[5, 2, 5, 0]), bad(Stage::Authentication, 5));
        assert_eq!(run(t(), &[5, 0, 4, 0]), bad(Stage::Reply, 4));
        assert_eq!(
            Socks5Error::BadVersion(Stage::Authentication, 5).to_string(),
            "SOCKS5 proxy: malformed authentication answer: version 5, not 1"
        );
        let error = run(t(), &[5, 0, 5, 0, 0, 2, 0, 0]).unwrap_err();
        assert_eq!(error, Socks5Error::BadAddressType(2));
        let text = "SOCKS5 proxy: malformed CONNECT reply: address type 2";
        assert_eq!(error.to_string(), text);
    }

    #[test]
    fn debug_hides_the_credentials() {
        let hidden = |t: &Socks5Tunnel| {
            let debug = format!("{t:?}");
            // Neither as text nor as a list of byte values.
            for secret in [USER, PASS] {
                let bytes = format!("{secret:?}");
                assert!(
                    !debug.contains(std::str::from_utf8(secret).unwrap()),
                    "{debug}"
                );
                assert!(!debug.contains(&bytes[1..bytes.len() - 1]), "{debug}");
            }
        };
        let mut t = with(USER, PASS).unwrap();
        hidden(&t);
        t.wrote(GREETING_AUTH.len());
        t.read_buf().copy_from_slice(&[5, 2]);
        assert_eq!(t.filled(2), Ok(Progress::NeedMore));
        assert_eq!(t.to_write(), auth_request(), "being written now");
        hidden(&t);
    }
}
