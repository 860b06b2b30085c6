//! HTTP CONNECT proxies: the proxy URL and the request; the exchange itself
//! is in [`tunnel`].

pub(crate) mod tunnel;

use data_encoding::BASE64;
use percent_encoding::percent_decode_str;
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
        // The URL keeps user and password percent-encoded; Basic credentials
        // are the decoded text (RFC 7617), base64 as RFC 4648 section 4.
        let authorization = (!url.username().is_empty()).then(|| {
            let user = percent_decode_str(url.username()).decode_utf8_lossy();
            let pass = percent_decode_str(url.password().unwrap_or("")).decode_utf8_lossy();
            format!(
                "Basic {}",
                BASE64.encode(format!("{user}:{pass}").as_bytes())
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(url: &str) -> Option<String> {
        Proxy::parse(url).unwrap().authorization
    }

    #[test]
    fn basic_credentials_are_decoded_and_base64_encoded() {
        // Base64 as RFC 4648 section 4: "user:pass" of 3k+2, 3k and 3k+1
        // bytes ("=", no and "==" padding), then RFC 7617's own example.
        for (url, header) in [
            ("http://f@proxy:1", "Basic Zjo="),
            ("http://fo@proxy:1", "Basic Zm86"),
            ("http://foo@proxy:1", "Basic Zm9vOg=="),
            (
                "http://Aladdin:open%20sesame@proxy:1",
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            ),
            // Percent-decoded as UTF-8; a bad escape stays as written.
            ("http://%C3%A9:%zz@proxy:1", "Basic w6k6JXp6"),
            // Bytes that are not UTF-8 become U+FFFD.
            ("http://%FF@proxy:1", "Basic 77+9Og=="),
        ] {
            assert_eq!(authorization(url).as_deref(), Some(header), "{url}");
        }
        assert_eq!(authorization("http://proxy:1"), None);
    }

    #[test]
    fn parses_credentials_and_builds_the_request() {
        let p = Proxy::parse("http://al%40ice:s3cret@127.0.0.1:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 3128));
        let req = String::from_utf8(p.request("example.org:443")).unwrap();
        assert_eq!(
            req,
            "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\
             Proxy-Authorization: Basic YWxAaWNlOnMzY3JldA==\r\n\r\n"
        );
        let plain = Proxy::parse("http://[::1]:8080").unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("::1", 8080));
        assert_eq!(
            plain.request("[2001:db8::1]:443"),
            b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"
        );
        assert!(Proxy::parse("https://127.0.0.1:3128").is_err());
        assert!(Proxy::parse("nonsense").is_err());
    }
}
