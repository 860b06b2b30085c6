//! Which proxy, if any, a connection goes through.
//!
//! - An explicit proxy wins, `""` meaning none; only an explicit `no_proxy`
//!   list exempts hosts from it.
//! - Else, unless under CGI (`REQUEST_METHOD` set), the environment: for ws://
//!   `ws_proxy`, `WS_PROXY`, `http_proxy` (never `HTTP_PROXY`), for wss://
//!   `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`, then for both
//!   `all_proxy`, `ALL_PROXY`. Empty is unset; `host:port` is `http://host:port`.
//! - An environment proxy skips loopback targets and the hosts of `no_proxy`:
//!   the option, which replaces the loopback exemption, else the environment's
//!   `no_proxy` or `NO_PROXY`, which adds to it.
//!
//! `no_proxy` follows curl, except that blanks separate entries like commas
//! (curl stops matching at a blank).

use std::net::IpAddr;

/// The proxy options of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProxySettings<'a> {
    /// `Some("")` turns proxies off, the environment's included.
    pub explicit: Option<&'a str>,
    pub use_env: bool,
    pub no_proxy: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selected {
    pub url: String,
    pub from_env: bool,
}

// Lowercase first: it is the older convention, and curl's order.
const WS_VARS: &[&str] = &[
    "ws_proxy",
    "WS_PROXY",
    "http_proxy",
    "all_proxy",
    "ALL_PROXY",
];
const WSS_VARS: &[&str] = &[
    "wss_proxy",
    "WSS_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// The proxy for a target, or `None` to connect directly.
pub(crate) fn select(
    target_secure: bool,
    target_host: &str,
    target_ip: Option<IpAddr>,
    settings: &ProxySettings<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Selected> {
    let listed = |list: &str| no_proxy_matches(list, target_host, target_ip);
    if let Some(url) = settings.explicit {
        // The application named this proxy for these hosts: the
        // environment's exemptions are not its business.
        if url.is_empty() || settings.no_proxy.is_some_and(listed) {
            return None;
        }
        return Some(Selected {
            url: url.to_owned(),
            from_env: false,
        });
    }
    // Under CGI the request's `Proxy:` header arrives as HTTP_PROXY
    // (httpoxy), and the rest of the environment is no more trustworthy.
    if !settings.use_env || var(env, "REQUEST_METHOD").is_some() {
        return None;
    }
    let vars = if target_secure { WSS_VARS } else { WS_VARS };
    let value = vars.iter().find_map(|name| var(env, name))?;
    let exempt = match settings.no_proxy {
        Some(list) => listed(list),
        // A proxy set for the whole session would otherwise catch local
        // test servers, which no proxy can reach anyway.
        None => {
            is_loopback(target_host, target_ip)
                || var(env, "no_proxy")
                    .or_else(|| var(env, "NO_PROXY"))
                    .is_some_and(|list| listed(&list))
        }
    };
    if exempt {
        return None;
    }
    let url = if value.contains("://") {
        value
    } else {
        // curl's reading; Url would take "host:port" as scheme "host".
        format!("http://{value}")
    };
    Some(Selected {
        url,
        from_env: true,
    })
}

fn var(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

/// Whether `host` (IPv6 without brackets; `ip` when it is a literal) is
/// exempt by the `no_proxy` list `list`.
///
/// Entries are separated by commas and, unlike curl, by blanks too. `*`
/// matches every host. A name matches itself and its subdomains, ignoring
/// case and leading or trailing dots. An address, with an optional `/bits`
/// and IPv6 optionally in brackets, matches IP-literal hosts only: names are
/// never resolved for it.
pub(crate) fn no_proxy_matches(list: &str, host: &str, ip: Option<IpAddr>) -> bool {
    let (host, ip) = normalize(host, ip);
    list.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|entry| !entry.is_empty())
        .any(|entry| entry_matches(entry, host, ip))
}

fn entry_matches(entry: &str, host: &str, ip: Option<IpAddr>) -> bool {
    if entry == "*" {
        return true;
    }
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (entry, None),
    };
    if let Some(net) = literal(addr) {
        return ip.is_some_and(|ip| in_network(ip, net, bits));
    }
    // A name never matches an address by text: "0.0.1" is not a suffix
    // domain of 10.0.0.1.
    if bits.is_some() || ip.is_some() {
        return false;
    }
    let name = entry.trim_matches('.');
    !name.is_empty() && in_domain(host, name)
}

/// `host` is `domain` or a subdomain of it, cut on a label boundary so that
/// `badexample.com` is not under `example.com`.
fn in_domain(host: &str, domain: &str) -> bool {
    let (host, domain) = (host.as_bytes(), domain.as_bytes());
    match host.len().checked_sub(domain.len()) {
        Some(0) => host.eq_ignore_ascii_case(domain),
        Some(cut) => host[cut - 1] == b'.' && host[cut..].eq_ignore_ascii_case(domain),
        None => false,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: Option<&str>) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => (u32::from(ip).into(), u32::from(net).into(), 32),
        (IpAddr::V6(ip), IpAddr::V6(net)) => (u128::from(ip), u128::from(net), 128),
        _ => return false,
    };
    let bits = match bits.map(str::parse::<u32>) {
        None => width,
        Some(Ok(bits)) if bits <= width => bits,
        // A malformed entry exempts nothing rather than everything.
        Some(_) => return false,
    };
    // /0 shifts a u128 by 128, which checked_shl refuses: no fixed bits.
    let mask = u128::MAX.checked_shl(width - bits).unwrap_or(0);
    (ip ^ net) & mask == 0
}

fn literal(text: &str) -> Option<IpAddr> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    bare.unwrap_or(text).parse().ok()
}

// A caller holding only the host text still gets the address rules.
fn normalize(host: &str, ip: Option<IpAddr>) -> (&str, Option<IpAddr>) {
    let host = host.strip_suffix('.').unwrap_or(host);
    (host, ip.or_else(|| literal(host)))
}

fn is_loopback(host: &str, ip: Option<IpAddr>) -> bool {
    match normalize(host, ip) {
        (_, Some(ip)) => ip.is_loopback(),
        (host, None) => in_domain(host, "localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;
    use std::collections::HashMap;

    const ENV: ProxySettings<'static> = ProxySettings {
        explicit: None,
        use_env: true,
        no_proxy: None,
    };

    fn explicit(url: &'static str) -> ProxySettings<'static> {
        ProxySettings {
            explicit: Some(url),
            ..ENV
        }
    }

    fn option(list: &'static str, base: ProxySettings<'static>) -> ProxySettings<'static> {
        ProxySettings {
            no_proxy: Some(list),
            ..base
        }
    }

    /// Each row: target URL, environment as blank-separated `NAME=value`,
    /// settings, and the proxy expected ("" to connect directly).
    type Row<'a> = (&'a str, &'a str, ProxySettings<'a>, &'a str);

    fn check(rows: &[Row<'_>]) {
        for &(url, vars, settings, want) in rows {
            let env: HashMap<&str, &str> = vars
                .split_whitespace()
                .map(|kv| kv.split_once('=').unwrap())
                .collect();
            let t = Target::parse(url).unwrap();
            let lookup = |name: &str| env.get(name).map(|v| v.to_string());
            let got = select(t.secure, &t.host, t.ip, &settings, &lookup);
            let want = (!want.is_empty()).then(|| Selected {
                url: want.to_owned(),
                from_env: settings.explicit.is_none(),
            });
            assert_eq!(got, want, "{url} {vars:?} {settings:?}");
        }
    }

    #[test]
    fn env_variables_by_scheme_and_case_order() {
        const WS: &str = "ws://example.org";
        const WSS: &str = "wss://example.org";
        let rows: &[(&str, &str, &str)] = &[
            (WS, "", ""),
            (WS, "ws_proxy=http://a", "http://a"),
            (WS, "WS_PROXY=http://b", "http://b"),
            (WS, "ws_proxy=http://a WS_PROXY=http://b", "http://a"),
            (WS, "ws_proxy= WS_PROXY=http://b", "http://b"),
            (WS, "WS_PROXY=http://b http_proxy=http://h", "http://b"),
            (WS, "http_proxy=http://h all_proxy=http://x", "http://h"),
            // httpoxy: HTTP_PROXY is never read.
            (WS, "HTTP_PROXY=http://h", ""),
            (WS, "HTTP_PROXY=http://h ALL_PROXY=http://x", "http://x"),
            (WS, "https_proxy=http://s wss_proxy=http://a", ""),
            (WS, "all_proxy=http://x ALL_PROXY=http://y", "http://x"),
            (WS, "ws_proxy=proxy:3128", "http://proxy:3128"),
            (WS, "ws_proxy=socks5h://s:1080", "socks5h://s:1080"),
            (WSS, "ws_proxy=http://a http_proxy=http://h", ""),
            (WSS, "wss_proxy=http://a WSS_PROXY=http://b", "http://a"),
            (WSS, "WSS_PROXY=http://b https_proxy=http://s", "http://b"),
            (WSS, "https_proxy=http://s HTTPS_PROXY=http://t", "http://s"),
            (WSS, "https_proxy= HTTPS_PROXY=http://t", "http://t"),
            (WSS, "HTTPS_PROXY=http://t all_proxy=http://x", "http://t"),
            (WSS, "ALL_PROXY=[::1]:8080", "http://[::1]:8080"),
            (WSS, "all_proxy= ALL_PROXY=", ""),
        ];
        let rows: Vec<Row<'_>> = rows
            .iter()
            .map(|&(url, vars, want)| (url, vars, ENV, want))
            .collect();
        check(&rows);
    }

    #[test]
    fn cgi_use_env_and_explicit_proxy() {
        const WS: &str = "ws://example.org";
        const P: &str = "ws_proxy=http://a wss_proxy=http://a";
        const CGI: &str = "REQUEST_METHOD=GET ws_proxy=http://a";
        let off = ProxySettings {
            use_env: false,
            ..ENV
        };
        let explicit_only = ProxySettings {
            use_env: false,
            ..explicit("http://e")
        };
        check(&[
            (WS, CGI, ENV, ""),
            (WS, "REQUEST_METHOD= ws_proxy=http://a", ENV, "http://a"),
            (WS, P, off, ""),
            (WS, P, explicit(""), ""),
            ("wss://example.org", P, explicit(""), ""),
            (WS, P, explicit("http://e"), "http://e"),
            ("wss://example.org", "", explicit_only, "http://e"),
            // CGI guards the environment, not the application's own choice.
            (WS, CGI, explicit("http://e"), "http://e"),
        ]);
    }

    #[test]
    fn loopback_and_no_proxy_exemptions() {
        const P: &str = "ws_proxy=http://a";
        const PN: &str = "ws_proxy=http://a no_proxy=example.org";
        const PNN: &str = "ws_proxy=http://a no_proxy= NO_PROXY=.org";
        let com = option("example.com", ENV);
        let e = explicit("http://e");
        check(&[
            ("ws://127.0.0.1", P, ENV, ""),
            ("ws://127.8.9.10", P, ENV, ""),
            ("ws://[::1]", P, ENV, ""),
            ("ws://localhost", P, ENV, ""),
            ("ws://LocalHost.", P, ENV, ""),
            ("ws://app.localhost", P, ENV, ""),
            ("ws://notlocalhost", P, ENV, "http://a"),
            ("ws://128.0.0.1", P, ENV, "http://a"),
            // The environment's list adds to the loopback exemption.
            ("ws://www.example.org", PN, ENV, ""),
            ("ws://localhost", PN, ENV, ""),
            ("ws://example.com", PN, ENV, "http://a"),
            ("ws://example.org", PNN, ENV, ""),
            // The option replaces both.
            ("ws://127.0.0.1", PN, option("", ENV), "http://a"),
            ("ws://[::1]", P, option("", ENV), "http://a"),
            ("ws://localhost", P, com, "http://a"),
            ("ws://example.org", PN, com, "http://a"),
            ("ws://example.com", PN, com, ""),
            // An explicit proxy heeds the option only.
            ("ws://127.0.0.1", PN, e, "http://e"),
            ("ws://localhost", PN, e, "http://e"),
            ("ws://example.org", PN, e, "http://e"),
            ("ws://127.0.0.1", P, option("127.0.0.0/8", e), ""),
            ("ws://example.com", P, option("example.org", e), "http://e"),
        ]);
    }

    fn check_lists(matching: &[(&str, &str)], not_matching: &[(&str, &str)]) {
        for (rows, want) in [(matching, true), (not_matching, false)] {
            for &(host, list) in rows {
                let got = no_proxy_matches(list, host, literal(host));
                assert_eq!(got, want, "{host:?} in {list:?}");
            }
        }
    }

    #[test]
    fn no_proxy_curl_unit1614_vectors() {
        check_lists(
            &[
                ("www.example.com", "localhost,.example.com,.example.de"),
                ("www.example.com", "localhost,www.example.com,.example.de"),
                ("example.com", ".example.com"),
                ("www.example.com", "example.com"),
                ("127.0.0.1", "127.0.0.1/8"),
                ("127.0.0.1", "127.0.0.1/28"),
                ("127.0.0.1", "127.0.0.1/31"),
                ("127.0.0.1", "127.0.0.1/32"),
                ("::1", "::1/128"),
                ("2001:db8::1", "2001:db8::/32"),
                // Our extension: curl stops matching at the first blank.
                ("www.example.com", "localhost .example.com .example.de"),
                ("example.com", "*"),
                ("EXAMPLE.com.", "example.COM"),
            ],
            &[
                ("nexample.com", "example.com"),
                ("127.0.0.2", "127.0.0.1/32"),
                ("10.0.0.1", "127.0.0.1/8"),
                // websocket-client once matched plain suffixes.
                ("badexample.com", ".example.com"),
                ("example.com", ""),
                ("www.example.com", "127.0.0.1/8"),
            ],
        );
    }

    #[test]
    fn no_proxy_entries_and_separators() {
        check_lists(
            &[
                ("example.com", "example.com."),
                ("www.example.com", "..example.com.."),
                ("example.com", "\tother.org,\t example.com "),
                ("example.com", "other.org,*"),
                ("::1", "[::1]"),
                ("::1", "[::1]/128"),
                ("10.1.2.3", "0.0.0.0/0"),
            ],
            &[
                ("example.com", "www.example.com"),
                ("example.com", "."),
                ("example.com", " ,\t, "),
                ("2001:db9::1", "2001:db8::/32"),
                ("::1", "0.0.0.0/0"),
                ("127.0.0.1", "::1"),
                ("127.0.0.1", "127.0.0.1/33"),
                ("127.0.0.1", "127.0.0.1/"),
                // A name entry never matches an address as text.
                ("10.0.0.1", "0.0.1"),
                ("127.0.0.1", "localhost"),
                ("localhost", "127.0.0.1"),
            ],
        );
    }
}
