//! A small WebSocket echo server for the demo and for trying wsembed
//! locally (tungstenite, one thread per connection). Not part of the
//! library.
//!
//! Usage: echo_server [PORT]   (default 0: any free port)
//! Listens on 127.0.0.1 only and prints `listening on ws://127.0.0.1:PORT/`
//! once ready.

use std::net::{TcpListener, TcpStream};
use std::thread;

use tungstenite::Message;

fn serve(stream: TcpStream) {
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn main() {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("echo_server: bad port: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo_server: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().expect("bound").port();
    println!("listening on ws://127.0.0.1:{port}/");
    for stream in listener.incoming().flatten() {
        thread::spawn(move || serve(stream));
    }
}
