//! A SOCKS5 proxy for the tests (RFC 1928, RFC 1929), on 127.0.0.1: it
//! records what each client asked, can be told to refuse, and sends its
//! replies a byte at a time so that clients must cope with split reads.
//! Names are resolved from a table the test gives, never by a resolver:
//! `echo.invalid` can exist for the proxy and nowhere else.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// What one client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub methods: Vec<u8>,
    pub credentials: Option<(String, String)>,
    /// 1: IPv4, 3: a name, 4: IPv6.
    pub atyp: u8,
    pub host: String,
    pub port: u16,
}

#[derive(Clone)]
pub enum Behaviour {
    /// Connects the client where it asks (names through the table).
    Forward,
    /// Wants this user and password first.
    Auth(String, String),
    /// Accepts no method the client offers.
    NoMethod,
    /// Answers the CONNECT with this reply code.
    Refuse(u8),
    /// Reads the greeting, then says nothing.
    Stall,
}

pub struct SocksProxy {
    pub port: u16,
    pub asked: Arc<Mutex<Vec<Asked>>>,
}

impl SocksProxy {
    pub fn url(&self, scheme: &str, userinfo: &str) -> String {
        format!("{scheme}://{userinfo}127.0.0.1:{}", self.port)
    }
}

/// Starts the proxy; `names` maps the names it resolves to 127.0.0.1.
pub fn socks_proxy(behaviour: Behaviour, names: &[&str]) -> SocksProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let record = asked.clone();
    let names: Arc<HashMap<String, ()>> =
        Arc::new(names.iter().map(|n| (n.to_string(), ())).collect());
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let (behaviour, record, names) = (behaviour.clone(), record.clone(), names.clone());
            thread::spawn(move || {
                let _ = serve(client, behaviour, &record, &names);
            });
        }
    });
    SocksProxy { port, asked }
}

fn read_exact(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// One byte per write: the client sees the reply in pieces.
fn dribble(s: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    for b in bytes {
        s.write_all(&[*b])?;
        s.flush()?;
    }
    Ok(())
}

fn serve(
    mut client: TcpStream,
    behaviour: Behaviour,
    record: &Mutex<Vec<Asked>>,
    names: &HashMap<String, ()>,
) -> std::io::Result<()> {
    let head = read_exact(&mut client, 2)?;
    assert_eq!(head[0], 5, "SOCKS version");
    let methods = read_exact(&mut client, head[1] as usize)?;
    if matches!(behaviour, Behaviour::Stall) {
        thread::sleep(std::time::Duration::from_secs(30));
        return Ok(());
    }
    let mut credentials = None;
    match &behaviour {
        Behaviour::NoMethod => return dribble(&mut client, &[5, 0xFF]),
        Behaviour::Auth(user, pass) => {
            if !methods.contains(&2) {
                return dribble(&mut client, &[5, 0xFF]);
            }
            dribble(&mut client, &[5, 2])?;
            let v = read_exact(&mut client, 2)?;
            let u = read_exact(&mut client, v[1] as usize)?;
            let plen = read_exact(&mut client, 1)?;
            let p = read_exact(&mut client, plen[0] as usize)?;
            let (u, p) = (
                String::from_utf8_lossy(&u).into_owned(),
                String::from_utf8_lossy(&p).into_owned(),
            );
            let ok = (&u, &p) == (user, pass);
            credentials = Some((u, p));
            if !ok {
                return dribble(&mut client, &[1, 1]);
            }
            dribble(&mut client, &[1, 0])?;
        }
        _ => dribble(&mut client, &[5, 0])?,
    }
    let request = read_exact(&mut client, 4)?;
    assert_eq!(&request[..3], &[5, 1, 0], "a CONNECT request");
    let atyp = request[3];
    let host = match atyp {
        1 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(read_exact(&mut client, 4)?).unwrap())
            .to_string(),
        4 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(read_exact(&mut client, 16)?).unwrap())
            .to_string(),
        3 => {
            let len = read_exact(&mut client, 1)?[0] as usize;
            String::from_utf8_lossy(&read_exact(&mut client, len)?).into_owned()
        }
        other => panic!("atyp {other}"),
    };
    let p = read_exact(&mut client, 2)?;
    let port = u16::from_be_bytes([p[0], p[1]]);
    record.lock().unwrap().push(Asked {
        methods,
        credentials,
        atyp,
        host: host.clone(),
        port,
    });
    let reachable = atyp != 3 || names.contains_key(&host);
    let code = match behaviour {
        Behaviour::Refuse(code) => code,
        _ if !reachable => 4,
        _ => 0,
    };
    // Bound address 127.0.0.1:0, as the reply's IPv4 form.
    let reply = [5, code, 0, 1, 127, 0, 0, 1, 0, 0];
    if code != 0 {
        return dribble(&mut client, &reply);
    }
    // Every address of the test is this machine's.
    let upstream = TcpStream::connect(("127.0.0.1", port))?;
    dribble(&mut client, &reply)?;
    let (mut a, mut b) = (client.try_clone()?, upstream.try_clone()?);
    thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut b);
        let _ = b.shutdown(std::net::Shutdown::Write);
    });
    let (mut c, mut u) = (client, upstream);
    let _ = std::io::copy(&mut u, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
    Ok(())
}
