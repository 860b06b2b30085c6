//! Proxies: the proxy URL, HTTP CONNECT's request (its exchange is in
//! [`tunnel`]) and SOCKS5's ([`socks5`]); which proxy a socket uses, from
//! its options and the environment, is [`select`]'s to say.

pub(crate) mod select;
pub(crate) mod socks5;
pub(crate) mod tunnel;

use data_encoding::BASE64;
use percent_encoding::percent_decode_str;
use url::Url;

use crate::status::{Error, ErrorKind, Result};

/// A proxy exchange under way, whichever protocol the proxy speaks. The
/// driver writes while [`to_write`](Self::to_write) is not empty and reads
/// otherwise, until the tunnel is up: SOCKS5 goes back and forth several
/// times, HTTP CONNECT once.
pub(crate) enum Exchange {
    Connect(tunnel::ConnectTunnel),
    /// Boxed: its reply buffer is inline.
    Socks5(Box<socks5::Socks5Tunnel>),
}

impl Exchange {
    /// Starts asking `proxy` for a tunnel to `target`. `resolved`: the
    /// target's address found here, which `socks5://` sends for a name.
    pub fn new(
        proxy: &Proxy,
        target: &crate::target::Target,
        resolved: Option<std::net::SocketAddr>,
    ) -> std::result::Result<Exchange, String> {
        let port = target.port;
        match proxy.kind {
            ProxyKind::Http => {
                let authority = match target.ip {
                    Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
                    _ => format!("{}:{port}", target.host),
                };
                Ok(Exchange::Connect(tunnel::ConnectTunnel::new(
                    proxy, &authority,
                )))
            }
            ProxyKind::Socks5 { remote_dns } => {
                let to = match (target.ip, resolved) {
                    (Some(ip), _) => socks5::Socks5Target::Ip((ip, port).into()),
                    (None, Some(addr)) if !remote_dns => socks5::Socks5Target::Ip(addr),
                    _ => socks5::Socks5Target::Name(target.host.clone(), port),
                };
                socks5::Socks5Tunnel::new(to, proxy.credentials.clone())
                    .map(|t| Exchange::Socks5(Box::new(t)))
                    .map_err(|e| e.to_string())
            }
        }
    }

    pub fn to_write(&self) -> &[u8] {
        match self {
            Exchange::Connect(t) => t.to_write(),
            Exchange::Socks5(t) => t.to_write(),
        }
    }

    pub fn wrote(&mut self, n: usize) {
        match self {
            Exchange::Connect(t) => t.wrote(n),
            Exchange::Socks5(t) => t.wrote(n),
        }
    }

    pub fn read_buf(&mut self) -> &mut [u8] {
        match self {
            Exchange::Connect(t) => t.read_buf(),
            Exchange::Socks5(t) => t.read_buf(),
        }
    }

    /// A read of `n` bytes into `read_buf` (0: the proxy hung up); an
    /// error is the proxy's refusal, as the `error` event says it.
    pub fn filled(&mut self, n: usize) -> std::result::Result<tunnel::Progress, String> {
        match self {
            Exchange::Connect(t) => t.filled(n).map_err(|e| e.to_string()),
            Exchange::Socks5(t) => t.filled(n).map_err(|e| e.to_string()),
        }
    }
}

/// Which protocol the proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP CONNECT (`http://`), for ws:// as for wss://.
    Http,
    /// SOCKS5: `socks5://` resolves the target here and sends its address,
    /// `socks5h://` sends the name for the proxy to resolve.
    Socks5 { remote_dns: bool },
}

/// Where the proxy listens and what to send it.
#[derive(Clone)]
pub struct Proxy {
    pub kind: ProxyKind,
    /// `https://`: TLS to the proxy, the CONNECT exchange inside it.
    pub secure: bool,
    pub host: String,
    pub port: u16,
    pub ip: Option<std::net::IpAddr>,
    /// `Proxy-Authorization` value, from `user:pass@` in the URL.
    pub authorization: Option<String>,
    /// The decoded user and password, for SOCKS5 (RFC 1929).
    pub credentials: Option<(Vec<u8>, Vec<u8>)>,
}

/// Credentials never show, not even in debug output.
impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("secure", &self.secure)
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

impl Proxy {
    /// Parses `http://`, `https://`, `socks5://` or
    /// `socks5h://[user:pass@]host[:port]` (ports 80, 443 and 1080 by
    /// default). A value without a scheme, as the environment's often are,
    /// is `http://`. Messages never repeat the URL: it may hold a password.
    pub fn parse(input: &str) -> Result<Proxy> {
        let owned;
        let input = if input.contains("://") {
            input
        } else {
            owned = format!("http://{input}");
            &owned
        };
        let url = Url::parse(input).map_err(|e| invalid(format!("bad proxy URL: {e}")))?;
        let (kind, default_port, secure) = match url.scheme() {
            "http" => (ProxyKind::Http, 80, false),
            "https" if cfg!(feature = "tls") => (ProxyKind::Http, 443, true),
            "https" => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "https:// proxies need TLS, which this build of wsembed lacks",
                ))
            }
            "socks5" => (ProxyKind::Socks5 { remote_dns: false }, 1080, false),
            "socks5h" => (ProxyKind::Socks5 { remote_dns: true }, 1080, false),
            other => {
                return Err(invalid(format!(
                    "proxy scheme {other:?}: expected http://, https://, socks5:// or socks5h://"
                )))
            }
        };
        let (host, ip) = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => (d.to_owned(), None),
            Some(url::Host::Ipv4(a)) => (a.to_string(), Some(a.into())),
            Some(url::Host::Ipv6(a)) => (a.to_string(), Some(a.into())),
            _ => return Err(invalid("the proxy URL has no host".to_owned())),
        };
        let port = url.port().unwrap_or(default_port);
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
        let credentials = (!url.username().is_empty()).then(|| {
            let user = percent_decode_str(url.username()).collect::<Vec<u8>>();
            let pass = percent_decode_str(url.password().unwrap_or("")).collect::<Vec<u8>>();
            (user, pass)
        });
        if let (ProxyKind::Socks5 { .. }, Some((user, pass))) = (kind, &credentials) {
            if user.len() > 255 || pass.is_empty() || pass.len() > 255 {
                return Err(invalid(
                    "SOCKS5 proxy credentials: the user and the password must each be 1 to 255 bytes"
                        .to_owned(),
                ));
            }
        }
        Ok(Proxy {
            kind,
            secure,
            host,
            port,
            ip,
            authorization,
            credentials,
        })
    }

    /// The proxy a socket to `target` goes through, if any: the options'
    /// explicit one, or the environment's (`env` looks a variable up), with
    /// the `no_proxy` rules applied (see [`select`]).
    pub fn for_target(
        target: &crate::target::Target,
        options: &crate::options::Options,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>> {
        let settings = select::ProxySettings {
            explicit: options.proxy.as_deref(),
            use_env: options.proxy_env,
            no_proxy: options.no_proxy.as_deref(),
        };
        let Some(selected) = select::select(target.secure, &target.host, target.ip, &settings, env)
        else {
            return Ok(None);
        };
        Proxy::parse(&selected.url)
            .map(Some)
            .map_err(|e| match selected.from_env {
                true => Error::new(
                    e.kind,
                    format!(
                        "the proxy the environment names is not usable: {}",
                        e.message
                    ),
                ),
                false => e,
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
        let https = Proxy::parse("https://u:p@proxy.example");
        if cfg!(feature = "tls") {
            let https = https.unwrap();
            assert_eq!(
                (https.kind, https.secure, https.port),
                (ProxyKind::Http, true, 443)
            );
            assert_eq!(https.authorization.as_deref(), Some("Basic dTpw"));
        } else {
            assert_eq!(https.unwrap_err().kind, ErrorKind::Unsupported);
        }
        assert!(!Proxy::parse("http://proxy.example").unwrap().secure);
        assert!(Proxy::parse("ftp://127.0.0.1:21").is_err());
        assert!(Proxy::parse("http://").is_err());
    }

    #[test]
    fn socks_schemes_default_ports_and_secrets_kept_out_of_messages() {
        let p = Proxy::parse("socks5h://u%3Ax:p%40ss@proxy.example").unwrap();
        assert_eq!(p.kind, ProxyKind::Socks5 { remote_dns: true });
        assert_eq!(p.port, 1080);
        assert_eq!(p.credentials, Some((b"u:x".to_vec(), b"p@ss".to_vec())));
        assert!(!format!("{p:?}").contains("p@ss"));
        let local = Proxy::parse("socks5://127.0.0.1:9050").unwrap();
        assert_eq!(local.kind, ProxyKind::Socks5 { remote_dns: false });
        assert_eq!(local.port, 9050);
        // Without a scheme: HTTP, as the environment's values often are.
        let bare = Proxy::parse("127.0.0.1:3128").unwrap();
        assert_eq!((bare.kind, bare.port), (ProxyKind::Http, 3128));
        let long = format!("socks5://{}:pw@p:1", "u".repeat(256));
        assert_eq!(
            Proxy::parse(&long).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        let bad = Proxy::parse("socks5://user:s3cret@[::1:1").unwrap_err();
        assert!(!bad.message.contains("s3cret"), "{}", bad.message);
    }
}
