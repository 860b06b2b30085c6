//! The server's answer to the opening handshake, without IO: its status,
//! headers and (for a refusal) body, read from the bytes as they come.
//!
//! tungstenite parses the answer too, but on a refusal it keeps only the
//! bytes that came with the head and then drops the connection; a 401's
//! `WWW-Authenticate` explanation or a 503's page usually come after. So
//! the connection reads the answer here first, body included, and hands it
//! to tungstenite only once it is whole.

/// The most of a refusal's body that is kept.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// An answer head longer than this is not waited for: tungstenite refuses
/// it.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;

/// What the server answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
    /// In order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// A refusal's body, at most `MAX_BODY` bytes (chunked encoding
    /// removed); empty for 101.
    pub body: Vec<u8>,
}

impl Answer {
    /// Every value of header `name` (any case), joined with ", " as RFC
    /// 9110 5.3 allows; `None` when there is none.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice());
        let first = values.next()?;
        let mut joined = first.to_vec();
        for v in values {
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(v);
        }
        Some(joined)
    }
}

/// How much of the body to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// `Content-Length`, capped at `MAX_BODY`.
    Length(usize),
    /// Chunked: until the last chunk, or `MAX_BODY` of raw bytes.
    Chunked,
    /// No length: until the server hangs up, or `MAX_BODY`.
    UntilClose,
}

/// Reads an answer from the bytes of the connection, in order.
#[derive(Debug, Default)]
pub struct AnswerReader {
    /// Every byte fed so far.
    bytes: Vec<u8>,
    /// Once the head is complete: its length and the parsed answer.
    head: Option<(usize, Answer, Body)>,
    complete: bool,
}

impl AnswerReader {
    /// Every byte fed so far, which tungstenite gets once `is_complete`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The head and, for a refusal, the body are in (or the head is
    /// unreadable or over its limit: tungstenite will say so).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The answer so far: `None` until its head came whole.
    pub fn answer(&self) -> Option<Answer> {
        let (head_len, answer, body) = self.head.as_ref()?;
        let mut answer = answer.clone();
        if has_body(answer.status) {
            let raw = &self.bytes[*head_len..];
            answer.body = match body {
                Body::Chunked => dechunk(raw),
                Body::Length(n) => raw[..raw.len().min(*n)].to_vec(),
                Body::UntilClose => raw[..raw.len().min(MAX_BODY)].to_vec(),
            };
        }
        Some(answer)
    }

    /// Takes in the next bytes read.
    pub fn feed(&mut self, more: &[u8]) {
        self.bytes.extend_from_slice(more);
        if self.complete {
            return;
        }
        if self.head.is_none() {
            let Some(end) = find_head_end(&self.bytes) else {
                self.complete = self.bytes.len() > MAX_HEAD;
                return;
            };
            match parse_head(&self.bytes[..end]) {
                Some((answer, body)) => self.head = Some((end, answer, body)),
                None => {
                    self.complete = true;
                    return;
                }
            }
        }
        let Some((head_len, answer, body)) = &self.head else {
            return;
        };
        let raw = &self.bytes[*head_len..];
        self.complete = !has_body(answer.status)
            || match body {
                Body::Length(n) => raw.len() >= *n,
                Body::Chunked => raw.len() >= MAX_BODY || chunks_end(raw),
                Body::UntilClose => raw.len() >= MAX_BODY,
            };
    }

    /// The server hung up: what came is all there is.
    pub fn end(&mut self) {
        self.complete = true;
    }
}

/// 1xx (101 included), 204 and 304 answers have no body (RFC 9110 6.4.1):
/// waiting for one would hold a keep-alive server's refusal until the
/// connect timeout.
fn has_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn parse_head(head: &[u8]) -> Option<(Answer, Body)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(_) = response.parse(head).ok()? else {
        return None;
    };
    let answer = Answer {
        status: response.code?,
        reason: response.reason.unwrap_or("").to_owned(),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
        body: Vec::new(),
    };
    let chunked = answer.header("transfer-encoding").is_some_and(|v| {
        String::from_utf8_lossy(&v)
            .to_ascii_lowercase()
            .contains("chunked")
    });
    let length = answer
        .header("content-length")
        .and_then(|v| String::from_utf8_lossy(&v).trim().parse::<usize>().ok());
    let body = match (chunked, length) {
        (true, _) => Body::Chunked,
        (false, Some(n)) => Body::Length(n.min(MAX_BODY)),
        (false, None) => Body::UntilClose,
    };
    Some((answer, body))
}

/// Whether chunked bytes hold their last (empty) chunk.
fn chunks_end(mut raw: &[u8]) -> bool {
    loop {
        let Ok(httparse::Status::Complete((at, size))) = httparse::parse_chunk_size(raw) else {
            return false;
        };
        if size == 0 {
            return true;
        }
        // The chunk and its CRLF.
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| at.checked_add(s)?.checked_add(2))
        else {
            return false;
        };
        if raw.len() < next {
            return false;
        }
        raw = &raw[next..];
    }
}

/// The data of chunked bytes, as much as came, at most `MAX_BODY`.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(httparse::Status::Complete((at, size))) = httparse::parse_chunk_size(raw) {
        if size == 0 {
            break;
        }
        let data = &raw[at..];
        let take = data.len().min(usize::try_from(size).unwrap_or(usize::MAX));
        out.extend_from_slice(&data[..take]);
        if take < data.len() {
            raw = data.get(take + 2..).unwrap_or(&[]);
        } else {
            break;
        }
    }
    out.truncate(MAX_BODY);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(parts: &[&[u8]]) -> AnswerReader {
        let mut r = AnswerReader::default();
        for p in parts {
            assert!(!r.is_complete(), "complete too early");
            r.feed(p);
        }
        r
    }

    #[test]
    fn a_101_is_complete_at_the_end_of_its_head() {
        let head =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
        let mut r = AnswerReader::default();
        for (i, b) in head.iter().enumerate() {
            assert!(!r.is_complete(), "byte {i}");
            r.feed(std::slice::from_ref(b));
        }
        assert!(r.is_complete());
        r.feed(b"\x81\x02hi");
        let a = r.answer().unwrap();
        assert_eq!((a.status, a.reason.as_str()), (101, "Switching Protocols"));
        assert_eq!(a.header("X-A").unwrap(), b"1, 2");
        assert_eq!(a.header("upgrade").unwrap(), b"websocket");
        assert_eq!(a.header("missing"), None);
        assert!(a.body.is_empty());
        assert_eq!(
            r.bytes().len(),
            head.len() + 4,
            "frames stay for tungstenite"
        );
    }

    #[test]
    fn a_refusal_waits_for_its_content_length() {
        let r = read_all(&[
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 11\r\n\r\nhello",
            b" world",
        ]);
        assert!(r.is_complete());
        let a = r.answer().unwrap();
        assert_eq!(a.status, 401);
        assert_eq!(a.header("www-authenticate").unwrap(), b"Basic realm=\"x\"");
        assert_eq!(a.body, b"hello world");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let r = read_all(&[
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n5\r\nhel",
            b"lo\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
        ]);
        assert!(r.is_complete());
        assert_eq!(r.answer().unwrap().body, b"hello world");
    }

    #[test]
    fn without_a_length_the_body_ends_with_the_connection_or_the_cap() {
        let mut r = read_all(&[b"HTTP/1.1 403 Forbidden\r\n\r\nno"]);
        assert!(!r.is_complete());
        r.end();
        assert!(r.is_complete());
        assert_eq!(r.answer().unwrap().body, b"no");
        let mut big = AnswerReader::default();
        big.feed(b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n");
        big.feed(&vec![b'x'; 70_000]);
        assert!(big.is_complete());
        assert_eq!(big.answer().unwrap().body.len(), MAX_BODY);
    }

    #[test]
    fn answers_without_a_body_are_complete_at_their_head() {
        for head in [
            &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
            b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
        ] {
            let mut r = AnswerReader::default();
            r.feed(head);
            assert!(r.is_complete(), "{}", String::from_utf8_lossy(head));
            assert!(r.answer().unwrap().body.is_empty());
        }
    }

    #[test]
    fn garbage_and_endless_heads_are_handed_on() {
        let r = read_all(&[b"SSH-2.0-OpenSSH\r\n\r\n"]);
        assert!(r.is_complete());
        assert_eq!(r.answer(), None);
        let mut endless = AnswerReader::default();
        endless.feed(b"HTTP/1.1 200 OK\r\n");
        endless.feed(&vec![b'a'; MAX_HEAD]);
        assert!(endless.is_complete());
    }
}
