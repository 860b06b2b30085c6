//! Extension negotiation, without IO: the permessage-deflate offer we send
//! (RFC 7692 5, 7.1) and the strict reading of the server's answer.
//!
//! tungstenite leaves the answer's `Sec-WebSocket-Extensions` unchecked,
//! but RFC 6455 4.1 says a client must fail a connection whose server
//! names an extension the client did not offer, or answers an offer with
//! parameters it may not use. Every socket goes through `agree`, offering
//! or not.

/// Our window in the offer (`client_max_window_bits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientWindow {
    /// Not offered: the server may not limit our window. (wsembed always
    /// offers it; kept so the rule is checked.)
    #[cfg_attr(not(test), allow(dead_code))]
    NotOffered,
    /// Offered without a value: the server may limit our window.
    Offered,
    /// Offered with a value (9..=15): our window is at most this.
    Capped(u8),
}

/// What we offer, from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateOffer {
    pub client_window: ClientWindow,
    /// `server_max_window_bits` asked of the server (8..=15), if any.
    pub server_max_window_bits: Option<u8>,
    pub client_no_context_takeover: bool,
    pub server_no_context_takeover: bool,
}

impl Default for DeflateOffer {
    /// What browsers send: `permessage-deflate; client_max_window_bits`.
    fn default() -> Self {
        DeflateOffer {
            client_window: ClientWindow::Offered,
            server_max_window_bits: None,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
        }
    }
}

impl DeflateOffer {
    /// The offer as a `Sec-WebSocket-Extensions` value.
    pub fn header(&self) -> String {
        let mut h = String::from("permessage-deflate");
        if self.client_no_context_takeover {
            h.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            h.push_str("; server_no_context_takeover");
        }
        match self.client_window {
            ClientWindow::NotOffered => {}
            ClientWindow::Offered => h.push_str("; client_max_window_bits"),
            ClientWindow::Capped(bits) => {
                h.push_str(&format!("; client_max_window_bits={bits}"));
            }
        }
        if let Some(bits) = self.server_max_window_bits {
            h.push_str(&format!("; server_max_window_bits={bits}"));
        }
        h
    }
}

/// What both sides agreed for permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// The window our compressor may use (8..=15); 8 means we send
    /// uncompressed, as zlib cannot make raw 8-bit windows.
    pub client_max_window_bits: u8,
    /// The window the server compresses with (8..=15).
    pub server_max_window_bits: u8,
    /// We start each message with an empty window.
    pub client_no_context_takeover: bool,
    /// The server does: we may drop our inflater between messages.
    pub server_no_context_takeover: bool,
}

const NAME: &str = "permessage-deflate";

/// Reads the answer's `Sec-WebSocket-Extensions` values (all of them, in
/// order) against what we offered. `Ok(None)`: no extension in use.
pub fn agree(offer: Option<&DeflateOffer>, values: &[&str]) -> Result<Option<Agreement>, String> {
    let mut agreed = None;
    for element in values.iter().flat_map(|v| v.split(',')) {
        let mut parts = element.split(';').map(trim);
        let name = parts.next().unwrap_or("");
        if name.is_empty() && parts.clone().all(str::is_empty) {
            // An empty list element (RFC 7230 7): allowed, means nothing.
            continue;
        }
        let Some(offer) = offer.filter(|_| name.eq_ignore_ascii_case(NAME)) else {
            return Err(format!(
                "the server chose the extension {name:?}, which was not offered"
            ));
        };
        if agreed.is_some() {
            return Err(format!("the server's answer names {NAME} twice"));
        }
        agreed = Some(accept(offer, parts)?);
    }
    Ok(agreed)
}

/// One answer element's parameters, checked against the offer.
fn accept<'a>(
    offer: &DeflateOffer,
    params: impl Iterator<Item = &'a str>,
) -> Result<Agreement, String> {
    let mut client_bits: Option<u8> = None;
    let mut server_bits: Option<u8> = None;
    let mut client_reset = false;
    let mut server_reset = false;
    for param in params {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (trim(k), Some(unquote(trim(v))?)),
            None => (param, None),
        };
        let twice = || format!("{NAME} parameter {key} given twice");
        match key.to_ascii_lowercase().as_str() {
            "client_no_context_takeover" | "server_no_context_takeover" => {
                if value.is_some() {
                    return Err(format!("{NAME} parameter {key} takes no value"));
                }
                let flag = if key.eq_ignore_ascii_case("client_no_context_takeover") {
                    &mut client_reset
                } else {
                    &mut server_reset
                };
                if std::mem::replace(flag, true) {
                    return Err(twice());
                }
            }
            "client_max_window_bits" | "server_max_window_bits" => {
                let bits = window_bits(key, value)?;
                let slot = if key.eq_ignore_ascii_case("client_max_window_bits") {
                    &mut client_bits
                } else {
                    &mut server_bits
                };
                if slot.replace(bits).is_some() {
                    return Err(twice());
                }
            }
            "" => return Err(format!("empty {NAME} parameter")),
            _ => return Err(format!("unknown {NAME} parameter {key:?}")),
        }
    }
    let client_max_window_bits = match (offer.client_window, client_bits) {
        (ClientWindow::NotOffered, Some(_)) => {
            return Err("the server set client_max_window_bits, which was not offered".into())
        }
        (ClientWindow::Capped(cap), Some(bits)) if bits > cap => {
            return Err(format!(
                "the server set client_max_window_bits={bits}, above the {cap} offered"
            ))
        }
        (_, Some(bits)) => bits,
        (ClientWindow::Capped(cap), None) => cap,
        (_, None) => 15,
    };
    let server_max_window_bits = match (offer.server_max_window_bits, server_bits) {
        (Some(asked), Some(bits)) if bits > asked => {
            return Err(format!(
                "the server set server_max_window_bits={bits}, above the {asked} requested"
            ))
        }
        (Some(asked), None) => {
            return Err(format!(
                "server_max_window_bits={asked} was requested and the server did not agree to it"
            ))
        }
        (_, bits) => bits.unwrap_or(15),
    };
    if offer.server_no_context_takeover && !server_reset {
        return Err(
            "server_no_context_takeover was requested and the server did not agree to it".into(),
        );
    }
    Ok(Agreement {
        client_max_window_bits,
        server_max_window_bits,
        // Offered, it is our promise whatever the answer says.
        client_no_context_takeover: client_reset || offer.client_no_context_takeover,
        server_no_context_takeover: server_reset,
    })
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// A parameter value: a token or a quoted string (RFC 7692 7.1).
fn unquote(v: &str) -> Result<&str, String> {
    match v.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .ok_or_else(|| format!("unterminated quoted value {v:?}")),
        None => Ok(v),
    }
}

/// A window size in an answer: required, 8..=15, digits without a leading
/// zero (RFC 7692 7.1.2).
fn window_bits(key: &str, value: Option<&str>) -> Result<u8, String> {
    let value = value.ok_or_else(|| format!("{NAME} parameter {key} needs a value"))?;
    let valid = !value.is_empty()
        && !value.starts_with('0')
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.len() <= 2;
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if valid => Ok(bits),
        _ => Err(format!(
            "{NAME} parameter {key}={value:?} is not a window size from 8 to 15"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> DeflateOffer {
        DeflateOffer::default()
    }

    fn agreed(offer: &DeflateOffer, answer: &str) -> Agreement {
        agree(Some(offer), &[answer])
            .unwrap_or_else(|e| panic!("{answer:?} refused: {e}"))
            .expect("an agreement")
    }

    fn refused(offer: Option<&DeflateOffer>, answer: &str) -> String {
        match agree(offer, &[answer]) {
            Err(e) => e,
            Ok(a) => panic!("{answer:?} was accepted: {a:?}"),
        }
    }

    #[test]
    fn the_offer_reads_as_browsers_send_it() {
        assert_eq!(
            offer().header(),
            "permessage-deflate; client_max_window_bits"
        );
        let all = DeflateOffer {
            client_window: ClientWindow::Capped(10),
            server_max_window_bits: Some(12),
            client_no_context_takeover: true,
            server_no_context_takeover: true,
        };
        assert_eq!(
            all.header(),
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; \
             client_max_window_bits=10; server_max_window_bits=12"
        );
    }

    #[test]
    fn accepted_answers() {
        let o = offer();
        let plain = agreed(&o, "permessage-deflate");
        assert_eq!(
            plain,
            Agreement {
                client_max_window_bits: 15,
                server_max_window_bits: 15,
                client_no_context_takeover: false,
                server_no_context_takeover: false,
            }
        );
        let a = agreed(
            &o,
            " Permessage-Deflate ;client_max_window_bits=8;\tserver_max_window_bits=\"10\"; \
             server_no_context_takeover; client_no_context_takeover ",
        );
        assert_eq!(a.client_max_window_bits, 8);
        assert_eq!(a.server_max_window_bits, 10);
        assert!(a.client_no_context_takeover && a.server_no_context_takeover);
        // Spread over two header lines, with empty list elements.
        let split = agree(
            Some(&o),
            &["", " , permessage-deflate; client_max_window_bits=9"],
        );
        assert_eq!(split.unwrap().unwrap().client_max_window_bits, 9);
        // Nothing chosen: no extension, offering or not.
        assert_eq!(agree(Some(&o), &[]), Ok(None));
        assert_eq!(agree(None, &[]), Ok(None));
        assert_eq!(agree(None, &[""]), Ok(None));
    }

    #[test]
    fn our_cap_and_our_promise_hold_without_an_echo() {
        let o = DeflateOffer {
            client_window: ClientWindow::Capped(11),
            client_no_context_takeover: true,
            ..offer()
        };
        let a = agreed(&o, "permessage-deflate");
        assert_eq!(a.client_max_window_bits, 11);
        assert!(a.client_no_context_takeover);
        assert_eq!(
            agreed(&o, "permessage-deflate; client_max_window_bits=9").client_max_window_bits,
            9
        );
    }

    #[test]
    fn refused_answers_name_the_problem() {
        let o = offer();
        let cases: &[(Option<&DeflateOffer>, &str, &str)] = &[
            (None, "permessage-deflate", "not offered"),
            (None, "x-webkit-deflate-frame", "not offered"),
            (
                Some(&o),
                "x-webkit-deflate-frame",
                "\"x-webkit-deflate-frame\", which was not offered",
            ),
            (Some(&o), "permessage-deflate, permessage-deflate", "twice"),
            (
                Some(&o),
                "permessage-deflate; foo",
                "unknown permessage-deflate parameter \"foo\"",
            ),
            (
                Some(&o),
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "given twice",
            ),
            (
                Some(&o),
                "permessage-deflate; client_max_window_bits=10; client_max_window_bits=10",
                "given twice",
            ),
            (
                Some(&o),
                "permessage-deflate; client_no_context_takeover=1",
                "takes no value",
            ),
            (
                Some(&o),
                "permessage-deflate; client_max_window_bits",
                "needs a value",
            ),
            (
                Some(&o),
                "permessage-deflate; server_max_window_bits",
                "needs a value",
            ),
            (
                Some(&o),
                "permessage-deflate; client_max_window_bits=7",
                "from 8 to 15",
            ),
            (
                Some(&o),
                "permessage-deflate; client_max_window_bits=16",
                "from 8 to 15",
            ),
            (
                Some(&o),
                "permessage-deflate; client_max_window_bits=010",
                "from 8 to 15",
            ),
            (
                Some(&o),
                "permessage-deflate; server_max_window_bits=+9",
                "from 8 to 15",
            ),
            (
                Some(&o),
                "permessage-deflate; server_max_window_bits=\"9",
                "unterminated",
            ),
            (
                Some(&o),
                "permessage-deflate;",
                "empty permessage-deflate parameter",
            ),
        ];
        for (offer, answer, expected) in cases {
            let e = refused(*offer, answer);
            assert!(e.contains(expected), "{answer:?}: {e:?} lacks {expected:?}");
        }
    }

    #[test]
    fn answers_beyond_the_offer_are_refused() {
        let no_window = DeflateOffer {
            client_window: ClientWindow::NotOffered,
            ..offer()
        };
        let e = refused(
            Some(&no_window),
            "permessage-deflate; client_max_window_bits=10",
        );
        assert!(e.contains("not offered"), "{e}");
        let capped = DeflateOffer {
            client_window: ClientWindow::Capped(10),
            ..offer()
        };
        let e = refused(
            Some(&capped),
            "permessage-deflate; client_max_window_bits=11",
        );
        assert!(e.contains("above the 10 offered"), "{e}");
        let asked = DeflateOffer {
            server_max_window_bits: Some(10),
            ..offer()
        };
        let e = refused(
            Some(&asked),
            "permessage-deflate; server_max_window_bits=12",
        );
        assert!(e.contains("above the 10 requested"), "{e}");
        let e = refused(Some(&asked), "permessage-deflate");
        assert!(e.contains("did not agree"), "{e}");
        assert_eq!(
            agreed(&asked, "permessage-deflate; server_max_window_bits=9").server_max_window_bits,
            9
        );
        let reset = DeflateOffer {
            server_no_context_takeover: true,
            ..offer()
        };
        let e = refused(Some(&reset), "permessage-deflate");
        assert!(e.contains("server_no_context_takeover"), "{e}");
        // Unasked, the server may limit its own window and reset its context.
        let a = agreed(
            &offer(),
            "permessage-deflate; server_max_window_bits=8; server_no_context_takeover",
        );
        assert_eq!(a.server_max_window_bits, 8);
        assert!(a.server_no_context_takeover);
    }
}
