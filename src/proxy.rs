//! HTTP CONNECT proxies: the proxy URL, the request, the answer.

use url::Url;

use crate::status::{Error, ErrorKind, Result};

/// Where the proxy listens and what to send it.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    pub ip: Option<std::net::IpAddr>,
    /// `Proxy-Authorization` value, from `user:pass@` in the URL.
    pub authorization: Option<String>,
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 4648 base64, for Basic credentials.
fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(TABLE[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Proxy {
    /// Parses `http://[user:pass@]host:port`.
    pub fn parse(input: &str) -> Result<Proxy> {
        let url = Url::parse(input).map_err(|e| invalid(format!("proxy URL {input:?}: {e}")))?;
        if url.scheme() != "http" {
            return Err(invalid(format!(
                "proxy URL {input:?}: only http:// (HTTP CONNECT) proxies are supported"
            )));
        }
        let (host, ip) = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => (d.to_owned(), None),
            Some(url::Host::Ipv4(a)) => (a.to_string(), Some(a.into())),
            Some(url::Host::Ipv6(a)) => (a.to_string(), Some(a.into())),
            _ => return Err(invalid(format!("proxy URL {input:?} has no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let authorization = (!url.username().is_empty()).then(|| {
            let user = percent_decode(url.username());
            let pass = percent_decode(url.password().unwrap_or(""));
            format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()))
        });
        Ok(Proxy {
            host,
            port,
            ip,
            authorization,
        })
    }

    /// The CONNECT request for `authority` ("host:port", IPv6 in brackets).
    pub fn request(&self, authority: &str) -> Vec<u8> {
        let mut r = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = &self.authorization {
            r.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        r.push_str("\r\n");
        r.into_bytes()
    }
}

/// Checks a proxy's answer head (up to the blank line): Ok for 2xx, else
/// the status line for the error message.
pub fn check_answer(head: &[u8]) -> std::result::Result<(), String> {
    let text = String::from_utf8_lossy(head);
    let status_line = text.lines().next().unwrap_or("").trim().to_owned();
    let mut parts = status_line.split_whitespace();
    let version_ok = parts.next().is_some_and(|v| v.starts_with("HTTP/1."));
    match parts.next().and_then(|c| c.parse::<u16>().ok()) {
        Some(code) if version_ok && (200..300).contains(&code) => Ok(()),
        _ => Err(status_line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn parses_credentials_and_builds_the_request() {
        let p = Proxy::parse("http://al%40ice:s3cret@127.0.0.1:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 3128));
        let req = String::from_utf8(p.request("example.org:443")).unwrap();
        assert!(req.starts_with("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n"));
        assert!(req.contains(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            base64(b"al@ice:s3cret")
        )));
        assert!(Proxy::parse("https://127.0.0.1:3128").is_err());
        assert!(Proxy::parse("nonsense").is_err());
    }

    #[test]
    fn answers() {
        assert!(check_answer(b"HTTP/1.1 200 Connection established\r\n\r\n").is_ok());
        assert_eq!(
            check_answer(b"HTTP/1.1 407 Proxy Authentication Required\r\nX: y\r\n\r\n")
                .unwrap_err(),
            "HTTP/1.1 407 Proxy Authentication Required"
        );
        assert!(check_answer(b"garbage\r\n\r\n").is_err());
    }
}
