//! An HTTP CONNECT proxy reached over TLS (an `https://` proxy) for the
//! tests, on 127.0.0.1: a self-signed certificate made at start, optional
//! Basic auth, a refusing mode, and a record of every CONNECT head it read.
//! It only tunnels to this machine (127.0.0.1, ::1, localhost), so a test
//! can never reach anything else through it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

/// How the proxy answers a CONNECT.
#[derive(Clone, Debug, Default)]
pub enum ProxyMode {
    /// Tunnels to the target without asking for credentials.
    #[default]
    Forward,
    /// Wants `Proxy-Authorization: Basic` with this user and password,
    /// else answers 407.
    Auth(String, String),
    /// Answers every CONNECT with 403.
    Refuse,
}

pub struct TlsProxy {
    pub port: u16,
    /// The proxy's self-signed certificate (for the names 127.0.0.1 and
    /// localhost), PEM.
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    /// `cert_pem` written to a file of its own, for `ws_options_set_ca_file`.
    pub ca_path: PathBuf,
    /// Each CONNECT head read, request line and header lines joined by
    /// CRLF (the blank line left off), in arrival order, refused ones too.
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TlsProxy {
    /// `https://[userinfo@]127.0.0.1:PORT`; `userinfo` is `user:pass`
    /// (percent-encoded as the URL needs), or "" for none.
    pub fn url(&self, userinfo: &str) -> String {
        let at = if userinfo.is_empty() { "" } else { "@" };
        format!("https://{userinfo}{at}127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop is blocked in accept(): one connection wakes it
        // to see the flag and drop the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let _ = std::fs::remove_file(&self.ca_path);
    }
}

/// Writes `pem` to a fresh file under the temp dir and returns its path.
pub fn write_pem(tag: &str, pem: &str) -> PathBuf {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("wsembed-tls-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = SERIAL.fetch_add(1, Ordering::SeqCst);
    let path = dir.join(format!("{tag}-{n}.pem"));
    std::fs::write(&path, pem).unwrap();
    path
}

/// Starts the proxy on 127.0.0.1 (a free port).
pub fn tls_proxy(mode: ProxyMode) -> TlsProxy {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = Arc::new(
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (record, stopped) = (requests.clone(), stop.clone());
    thread::spawn(move || {
        for client in listener.incoming() {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let Ok(client) = client else { continue };
            let (config, mode, record) = (config.clone(), mode.clone(), record.clone());
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let _ = serve(client, config, &mode, &record);
                })
                .unwrap();
        }
    });
    let cert_pem = cert.pem();
    TlsProxy {
        port,
        ca_path: write_pem(&format!("proxy-{port}"), &cert_pem),
        cert_pem,
        cert_der: cert.der().clone(),
        requests,
        stop,
    }
}

/// How long the proxy waits for a client's handshake and CONNECT head, so
/// that a client that never sends one does not hold a thread for good.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 16 * 1024;

fn serve(
    mut tcp: TcpStream,
    config: Arc<ServerConfig>,
    mode: &ProxyMode,
    record: &Mutex<Vec<String>>,
) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(HEAD_TIMEOUT))?;
    let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    // The head may share a TLS record with bytes after it (a client that
    // does not wait for the 200): those are kept for the target.
    let mut head = Vec::new();
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if head.len() > MAX_HEAD {
            return Ok(());
        }
        let mut buf = [0u8; 4096];
        let n = rustls::Stream::new(&mut conn, &mut tcp).read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let early = head.split_off(end + 4);
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    record.lock().unwrap().push(text.clone());

    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "CONNECT" {
        return refuse(conn, tcp, "405 Method Not Allowed", "");
    }
    if let ProxyMode::Auth(user, pass) = mode {
        if !authorized(&headers, user, pass) {
            return refuse(
                conn,
                tcp,
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"test\"\r\n",
            );
        }
    }
    if matches!(mode, ProxyMode::Refuse) {
        return refuse(conn, tcp, "403 Forbidden", "");
    }
    let Some(upstream) = connect_local(target) else {
        return refuse(conn, tcp, "502 Bad Gateway", "");
    };
    upstream.set_nodelay(true)?;
    conn.writer()
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    while conn.wants_write() {
        conn.write_tls(&mut tcp)?;
    }
    tcp.set_read_timeout(None)?;
    relay(conn, tcp, upstream, early)
}

fn authorized(headers: &[(&str, &str)], user: &str, pass: &str) -> bool {
    let expected = data_encoding::BASE64.encode(format!("{user}:{pass}").as_bytes());
    headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("proxy-authorization")
            && v.split_once(' ').is_some_and(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("basic") && token.trim() == expected
            })
    })
}

/// Connects to `host:port` when the host is this machine, else None.
/// `localhost` is mapped here rather than resolved, so that no resolver
/// can send the tunnel elsewhere.
fn connect_local(target: &str) -> Option<TcpStream> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let addrs: &[&str] = match host {
        "127.0.0.1" => &["127.0.0.1"],
        "[::1]" => &["::1"],
        h if h.eq_ignore_ascii_case("localhost") => &["127.0.0.1", "::1"],
        _ => return None,
    };
    addrs
        .iter()
        .find_map(|a| TcpStream::connect((*a, port)).ok())
}

/// Answers with `status`, then closes the TLS session and the connection.
fn refuse(
    mut conn: ServerConnection,
    mut tcp: TcpStream,
    status: &str,
    headers: &str,
) -> io::Result<()> {
    write!(
        conn.writer(),
        "HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\n\r\n"
    )?;
    conn.send_close_notify();
    while conn.wants_write() {
        conn.write_tls(&mut tcp)?;
    }
    linger_close(&mut tcp);
    Ok(())
}

/// Half-closes, then reads until the peer closes too (or a short while):
/// closing a socket with unread input sends a reset, which can destroy
/// the answer before the client has read it.
fn linger_close(tcp: &mut TcpStream) {
    let _ = tcp.shutdown(Shutdown::Write);
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    let mut sink = [0u8; 4096];
    while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
}

/// Once one direction has ended, how long the other may stay idle before
/// the tunnel is torn down (a client that never closes its side).
const HALF_OPEN_IDLE: Duration = Duration::from_secs(5);
/// Client bytes held for a slow target before the proxy stops reading TLS.
const BACKLOG: usize = 256 * 1024;

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Moves bytes both ways through the TLS session from one thread: both
/// sockets non-blocking, every step tried on each pass, a 1 ms sleep only
/// when a whole pass moved nothing.
fn relay(
    mut conn: ServerConnection,
    mut client: TcpStream,
    mut upstream: TcpStream,
    early: Vec<u8>,
) -> io::Result<()> {
    client.set_nonblocking(true)?;
    upstream.set_nonblocking(true)?;
    let mut to_upstream = early;
    let mut to_client: Vec<u8> = Vec::new();
    let (mut client_eof, mut upstream_eof) = (false, false);
    let (mut upstream_shut, mut notify_sent) = (false, false);
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_progress = Instant::now();
    loop {
        let mut progress = false;

        // Client -> upstream. read_tls gives Ok(0) both on TCP EOF and
        // after a close_notify: either way nothing more comes.
        if !client_eof && to_upstream.len() < BACKLOG {
            match conn.read_tls(&mut client) {
                Ok(0) => {
                    client_eof = true;
                    progress = true;
                }
                Ok(_) => progress = true,
                Err(e) if would_block(&e) => {}
                Err(_) => return Ok(()),
            }
        }
        if let Err(e) = conn.process_new_packets() {
            // The alert rustls queued tells the client why.
            let _ = conn.write_tls(&mut client);
            return Err(io::Error::other(e));
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => {
                    client_eof = true;
                    break;
                }
                Ok(n) => {
                    to_upstream.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if would_block(&e) => break,
                // A TCP EOF without close_notify, once the plaintext is out.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    client_eof = true;
                    break;
                }
                Err(_) => return Ok(()),
            }
        }
        while !to_upstream.is_empty() {
            match upstream.write(&to_upstream) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    to_upstream.drain(..n);
                    progress = true;
                }
                Err(e) if would_block(&e) => break,
                Err(_) => return Ok(()),
            }
        }
        if client_eof && to_upstream.is_empty() && !upstream_shut {
            let _ = upstream.shutdown(Shutdown::Write);
            upstream_shut = true;
            progress = true;
        }

        // Upstream -> client, one buffer at a time so that a slow client
        // holds back the upstream rather than filling memory.
        if !upstream_eof && to_client.is_empty() {
            match upstream.read(&mut buf) {
                Ok(0) => {
                    upstream_eof = true;
                    progress = true;
                }
                Ok(n) => {
                    to_client.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => upstream_eof = true,
            }
        }
        if !to_client.is_empty() {
            // Ok(0) while rustls's outgoing buffer is at its limit: the
            // write_tls below makes room.
            let n = conn.writer().write(&to_client)?;
            if n > 0 {
                to_client.drain(..n);
                progress = true;
            }
        }
        if upstream_eof && to_client.is_empty() && !notify_sent {
            conn.send_close_notify();
            notify_sent = true;
            progress = true;
        }
        while conn.wants_write() {
            match conn.write_tls(&mut client) {
                Ok(0) => return Ok(()),
                Ok(_) => progress = true,
                Err(e) if would_block(&e) => break,
                Err(_) => return Ok(()),
            }
        }

        let client_done = client_eof && upstream_shut;
        let upstream_done = notify_sent && !conn.wants_write();
        if upstream_done && client_done {
            linger_close(&mut client);
            return Ok(());
        }
        if progress {
            last_progress = Instant::now();
        } else {
            if (client_done || upstream_done) && last_progress.elapsed() > HALF_OPEN_IDLE {
                linger_close(&mut client);
                return Ok(());
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The value of header `name` in a recorded request head, if present.
pub fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
