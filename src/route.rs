//! How a socket reaches its server: through a proxy or not, over TLS or
//! not. Decided by `ws_open` on the caller's thread, so that bad settings
//! fail synchronously and the IO thread never reads certificate files.

use crate::options::Options;
use crate::proxy::Proxy;
use crate::status::Result;
use crate::target::Target;

/// The process's environment, where proxies are looked up.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[derive(Clone)]
pub(crate) struct Route {
    pub proxy: Option<Proxy>,
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ClientTls>,
    /// TLS to an `https://` proxy, for the proxy's name.
    #[cfg(feature = "tls")]
    pub proxy_tls: Option<crate::tls::ClientTls>,
    /// The trust settings, built at open for a socket that may be
    /// redirected to a `wss://` URL or sent through an `https://` proxy: a
    /// redirect must not read certificate files on the IO thread.
    #[cfg(feature = "tls")]
    tls_config: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Route {
    pub fn new(target: &Target, options: &Options) -> Result<Route> {
        let proxy = Proxy::for_target(target, options, &process_env)?;
        #[cfg(feature = "tls")]
        {
            let secure_proxy = proxy.as_ref().is_some_and(|p| p.secure);
            let tls_config = if target.secure || secure_proxy || options.max_redirects > 0 {
                Some(crate::tls::client_config(&options.tls)?)
            } else {
                None
            };
            let tls = match (&tls_config, target.secure) {
                (Some(config), true) => Some(crate::tls::client_tls(config.clone(), &target.host)?),
                _ => None,
            };
            let proxy_tls = proxy_tls(proxy.as_ref(), tls_config.as_ref())?;
            Ok(Route {
                proxy,
                tls,
                proxy_tls,
                tls_config,
            })
        }
        #[cfg(not(feature = "tls"))]
        match target.secure {
            false => Ok(Route { proxy }),
            true => Err(crate::status::Error::new(
                crate::status::ErrorKind::Unsupported,
                "wss:// needs TLS, which this build of wsembed lacks",
            )),
        }
    }

    /// The route to the target of a redirect: the same proxy and trust
    /// settings, TLS for the new host if it is `wss://`.
    pub fn redirected(&self, target: &Target) -> Result<Route> {
        #[cfg(feature = "tls")]
        let mut route = self.clone();
        #[cfg(not(feature = "tls"))]
        let route = self.clone();
        #[cfg(feature = "tls")]
        {
            route.tls = match (&self.tls_config, target.secure) {
                (_, false) => None,
                (Some(config), true) => Some(crate::tls::client_tls(config.clone(), &target.host)?),
                (None, true) => {
                    return Err(crate::status::Error::new(
                        crate::status::ErrorKind::Unsupported,
                        "no TLS settings were prepared for this socket",
                    ))
                }
            };
        }
        #[cfg(not(feature = "tls"))]
        if target.secure {
            return Err(crate::status::Error::new(
                crate::status::ErrorKind::Unsupported,
                "wss:// needs TLS, which this build of wsembed lacks",
            ));
        }
        Ok(route)
    }

    /// The same route with the proxy chosen again, for a new attempt to
    /// reach `target` (the environment may have changed); the proxy chosen
    /// before if the environment's is no longer usable.
    pub fn reselected(&self, target: &Target, options: &Options) -> Route {
        let mut route = self.clone();
        if let Ok(proxy) = Proxy::for_target(target, options, &process_env) {
            #[cfg(feature = "tls")]
            match proxy_tls(proxy.as_ref(), self.tls_config.as_ref()) {
                Ok(proxy_tls) => route.proxy_tls = proxy_tls,
                // An `https://` proxy for a socket whose trust settings
                // were not prepared at open.
                Err(_) => return route,
            }
            route.proxy = proxy;
        }
        route
    }

    /// Where the TCP connection goes: the proxy if there is one (it reaches
    /// the server), else the server. The IP is set for address literals.
    pub fn first_hop<'a>(&'a self, target: &'a Target) -> (&'a str, Option<std::net::IpAddr>, u16) {
        match &self.proxy {
            Some(p) => (&p.host, p.ip, p.port),
            None => (&target.host, target.ip, target.port),
        }
    }
}

/// TLS for an `https://` proxy, with the prepared trust settings.
#[cfg(feature = "tls")]
fn proxy_tls(
    proxy: Option<&Proxy>,
    config: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Option<crate::tls::ClientTls>> {
    match (proxy, config) {
        (Some(p), Some(config)) if p.secure => {
            crate::tls::client_tls(config.clone(), &p.host).map(Some)
        }
        (Some(p), None) if p.secure => Err(crate::status::Error::new(
            crate::status::ErrorKind::Unsupported,
            "no TLS settings were prepared for an https:// proxy",
        )),
        _ => Ok(None),
    }
}
