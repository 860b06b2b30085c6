//! How a socket reaches its server: through a proxy or not, over TLS or
//! not. Decided by `ws_open` on the caller's thread, so that bad settings
//! fail synchronously and the IO thread never reads certificate files.

use crate::options::Options;
use crate::proxy::Proxy;
use crate::status::Result;
use crate::target::Target;

#[derive(Clone)]
pub(crate) struct Route {
    pub proxy: Option<Proxy>,
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ClientTls>,
}

impl Route {
    pub fn new(target: &Target, options: &Options) -> Result<Route> {
        let proxy = options.proxy.as_deref().map(Proxy::parse).transpose()?;
        if !target.secure {
            return Ok(Route {
                proxy,
                #[cfg(feature = "tls")]
                tls: None,
            });
        }
        #[cfg(feature = "tls")]
        return Ok(Route {
            proxy,
            tls: Some(crate::tls::client_tls(&options.tls, &target.host)?),
        });
        #[cfg(not(feature = "tls"))]
        return Err(crate::status::Error::new(
            crate::status::ErrorKind::Unsupported,
            "wss:// needs TLS, which this build of wsembed lacks",
        ));
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
