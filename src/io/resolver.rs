//! Name resolution off the IO thread: `getaddrinfo` blocks, so a small
//! fixed pool does it and posts the answer back as a command. The pool does
//! not grow with the number of sockets.

use std::net::ToSocketAddrs;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use super::{Command, IoShared};

const WORKERS: usize = 2;

struct Job {
    handle: u64,
    host: String,
    port: u16,
}

pub struct Resolver {
    io: Arc<IoShared>,
    sender: Option<Sender<Job>>,
}

impl Resolver {
    pub fn new(io: Arc<IoShared>) -> Resolver {
        Resolver { io, sender: None }
    }

    /// Resolves `host:port` for socket `handle`; the answer arrives as
    /// `Command::Resolved`. Workers start on first use.
    pub fn resolve(&mut self, handle: u64, host: &str, port: u16) {
        let job = Job {
            handle,
            host: host.to_owned(),
            port,
        };
        let sender = self.sender.get_or_insert_with(|| start_workers(&self.io));
        if let Err(failed) = sender.send(job) {
            let job = failed.0;
            self.io.send(Command::Resolved(
                job.handle,
                Err(std::io::Error::other("the resolver pool is gone")),
            ));
        }
    }
}

fn start_workers(io: &Arc<IoShared>) -> Sender<Job> {
    let (sender, receiver) = channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..WORKERS {
        let receiver = receiver.clone();
        let io = io.clone();
        // A pool that could not grow still has the workers already started;
        // with none, jobs wait in the channel and the connect timeout fires.
        let _ = thread::Builder::new()
            .name(format!("wsembed-dns-{i}"))
            .spawn(move || work(&receiver, &io));
    }
    sender
}

fn work(receiver: &Mutex<Receiver<Job>>, io: &IoShared) {
    loop {
        let job = {
            let guard = receiver.lock().unwrap_or_else(|e| e.into_inner());
            match guard.recv() {
                Ok(job) => job,
                // The IO thread is gone.
                Err(_) => return,
            }
        };
        let result = (job.host.as_str(), job.port)
            .to_socket_addrs()
            .map(|addrs| addrs.collect());
        io.send(Command::Resolved(job.handle, result));
    }
}
