//! Where a socket connects: the URL checks of the WebSocket constructor.

use std::net::IpAddr;

use url::{Host, Url};

use crate::status::{Error, ErrorKind, Result};

/// A parsed and validated `ws://` or `wss://` URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    pub secure: bool,
    /// The host name without IPv6 brackets, as DNS and TLS want it.
    pub host: String,
    /// Set when the host is an IP literal: no name resolution needed.
    pub ip: Option<IpAddr>,
    pub port: u16,
}

fn invalid_url(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidUrl, message)
}

impl Target {
    pub fn parse(input: &str) -> Result<Target> {
        let url = Url::parse(input).map_err(|e| invalid_url(format!("{input:?}: {e}")))?;
        let secure = match url.scheme() {
            "ws" => false,
            "wss" => true,
            other => {
                return Err(invalid_url(format!(
                    "scheme {other:?} is not ws or wss in {input:?}"
                )))
            }
        };
        if url.fragment().is_some() {
            return Err(invalid_url(format!(
                "a WebSocket URL may not have a fragment: {input:?}"
            )));
        }
        let (host, ip) = match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => (d.to_owned(), None),
            Some(Host::Ipv4(a)) => (a.to_string(), Some(IpAddr::V4(a))),
            Some(Host::Ipv6(a)) => (a.to_string(), Some(IpAddr::V6(a))),
            _ => return Err(invalid_url(format!("no host in {input:?}"))),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid_url(format!("no port in {input:?}")))?;
        Ok(Target {
            url,
            secure,
            host,
            ip,
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ws_and_wss_with_default_ports() {
        let t = Target::parse("ws://example.org/chat?x=1").unwrap();
        assert_eq!(
            (t.secure, t.port, t.host.as_str()),
            (false, 80, "example.org")
        );
        let t = Target::parse("wss://example.org").unwrap();
        assert_eq!((t.secure, t.port), (true, 443));
        assert_eq!(t.url.as_str(), "wss://example.org/");
    }

    #[test]
    fn strips_ipv6_brackets() {
        let t = Target::parse("ws://[::1]:9001/").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.ip, Some("::1".parse().unwrap()));
        assert_eq!(t.port, 9001);
    }

    #[test]
    fn refuses_other_schemes_fragments_and_garbage() {
        for bad in [
            "http://example.org/",
            "ws://example.org/#frag",
            "not a url",
            "",
            "ws://",
            "ws://host:99999/",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidUrl, "{bad}");
        }
    }
}
