//! The opening handshake's words, without IO: the request wsembed sends,
//! the limits tungstenite enforces, and what the answer chose.

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::{Request, Response};
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;

use super::failure::Failure;
use crate::framing::{agree, Agreement};
use crate::options::Options;
use crate::status::AsyncErrorKind;
use crate::target::Target;

/// tungstenite allocates this per connection up front.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// The GET request of the opening handshake, with the subprotocols and
/// headers the options add; without `Authorization` and `Cookie` unless
/// `keep_credentials` (a redirect to another host drops them).
pub(super) fn request(
    target: &Target,
    options: &Options,
    extra_headers: &[(String, String)],
    keep_credentials: bool,
) -> Result<Request, Failure> {
    let bad = |what: String| Failure::new(AsyncErrorKind::Handshake, what);
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| bad(format!("cannot build the opening handshake: {e}")))?;
    let headers = request.headers_mut();
    if !options.protocols.is_empty() {
        let value = HeaderValue::from_str(&options.protocols.join(", "))
            .map_err(|e| bad(format!("bad subprotocol list: {e}")))?;
        headers.insert("Sec-WebSocket-Protocol", value);
    }
    if let Some(offer) = options.deflate_offer() {
        let value = HeaderValue::from_str(&offer.header())
            .map_err(|e| bad(format!("bad extension offer: {e}")))?;
        headers.insert("Sec-WebSocket-Extensions", value);
    }
    for (name, value) in extra_headers {
        let credential =
            name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie");
        if credential && !keep_credentials {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| bad(format!("bad header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| bad(format!("bad value for header {name}: {e}")))?;
        headers.append(name, value);
    }
    Ok(request)
}

pub(super) fn config(options: &Options) -> WebSocketConfig {
    let max = options.max_message_size;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        // tungstenite writes only control frames (wsembed encodes data
        // frames itself, see `wire`); its buffer goes out when flushed,
        // behind the frames already staged, never on its own.
        .write_buffer_size(usize::MAX / 2)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// The subprotocol the server chose, if any (tungstenite has checked that
/// it was one we offered).
pub(super) fn accepted_protocol(response: &Response) -> Option<String> {
    response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The extensions the answer put in use.
pub(super) struct Agreed {
    /// `Sec-WebSocket-Extensions` as the server sent it ("" if absent).
    pub extensions: String,
    pub deflate: Option<Agreement>,
}

/// Reads the answer's extensions strictly against what we offered (see
/// `framing::negotiate`): anything else fails the handshake.
pub(super) fn agreed(response: &Response, options: &Options) -> Result<Agreed, Failure> {
    let bad = |what: String| Failure::new(AsyncErrorKind::Handshake, what);
    let values = response
        .headers()
        .get_all("Sec-WebSocket-Extensions")
        .iter()
        .map(|v| v.to_str())
        .collect::<Result<Vec<&str>, _>>()
        .map_err(|_| bad("the server's Sec-WebSocket-Extensions is not ASCII".into()))?;
    let deflate = agree(options.deflate_offer(), &values)
        .map_err(|e| bad(format!("the server's extensions are not acceptable: {e}")))?;
    let extensions = values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Agreed {
        extensions,
        deflate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_protocols_and_headers() {
        let target = Target::parse("ws://127.0.0.1:9/chat?room=1").unwrap();
        let options = Options {
            protocols: vec!["v2.chat".into(), "v1.chat".into()],
            headers: vec![
                ("X-Token".into(), "abc".into()),
                ("X-Token".into(), "def".into()),
            ],
            ..Options::default()
        };
        let request = request(&target, &options, &options.headers, true).unwrap();
        assert_eq!(request.uri().to_string(), "ws://127.0.0.1:9/chat?room=1");
        let headers = request.headers();
        assert_eq!(headers["Sec-WebSocket-Protocol"], "v2.chat, v1.chat");
        let tokens: Vec<_> = headers.get_all("X-Token").iter().collect();
        assert_eq!(tokens, ["abc", "def"]);
    }

    #[test]
    fn credentials_stay_behind_when_asked() {
        let target = Target::parse("ws://127.0.0.1:9/").unwrap();
        let options = Options {
            headers: vec![
                ("Authorization".into(), "Bearer x".into()),
                ("cookie".into(), "a=1".into()),
                ("X-Other".into(), "kept".into()),
            ],
            ..Options::default()
        };
        let with = request(&target, &options, &options.headers, true).unwrap();
        assert_eq!(with.headers()["authorization"], "Bearer x");
        let without = request(&target, &options, &options.headers, false).unwrap();
        assert!(without.headers().get("authorization").is_none());
        assert!(without.headers().get("cookie").is_none());
        assert_eq!(without.headers()["x-other"], "kept");
    }

    #[test]
    fn a_bad_header_is_a_handshake_failure() {
        let target = Target::parse("ws://127.0.0.1:9/").unwrap();
        let options = Options {
            headers: vec![("X-Bad".into(), "line\nbreak".into())],
            ..Options::default()
        };
        let failure = request(&target, &options, &options.headers, true).unwrap_err();
        assert_eq!(failure.kind, AsyncErrorKind::Handshake);
        assert!(failure.message.contains("X-Bad") || failure.message.contains("x-bad"));
    }

    #[test]
    fn an_extension_that_was_not_offered_fails_the_handshake() {
        let mut response = Response::new(None);
        response.headers_mut().insert(
            "Sec-WebSocket-Extensions",
            HeaderValue::from_static("permessage-deflate"),
        );
        let failure = agreed(&response, &Options::default()).err().unwrap();
        assert_eq!(failure.kind, AsyncErrorKind::Handshake);
        assert!(
            failure.message.contains("not offered"),
            "{}",
            failure.message
        );
        let none = agreed(&Response::new(None), &Options::default())
            .ok()
            .unwrap();
        assert_eq!(none.extensions, "");
        assert_eq!(none.deflate, None);
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn an_offer_goes_out_and_its_answer_is_read() {
        let target = Target::parse("ws://127.0.0.1:9/").unwrap();
        let mut options = Options::default();
        options.set_deflate(true).unwrap();
        let request = request(&target, &options, &options.headers, true).unwrap();
        assert_eq!(
            request.headers()["Sec-WebSocket-Extensions"],
            "permessage-deflate; client_max_window_bits"
        );
        let mut response = Response::new(None);
        response.headers_mut().insert(
            "Sec-WebSocket-Extensions",
            HeaderValue::from_static(" permessage-deflate; client_max_window_bits=12 "),
        );
        let answer = agreed(&response, &options).ok().unwrap();
        assert_eq!(
            answer.extensions,
            "permessage-deflate; client_max_window_bits=12"
        );
        assert_eq!(answer.deflate.unwrap().client_max_window_bits, 12);
    }

    #[test]
    fn the_chosen_protocol_is_read_from_the_answer() {
        let mut response = Response::new(None);
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("v2.chat"),
        );
        assert_eq!(accepted_protocol(&response).as_deref(), Some("v2.chat"));
        let plain = Response::new(None);
        assert_eq!(accepted_protocol(&plain), None);
    }
}
