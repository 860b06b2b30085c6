//! Name resolution off the IO thread: `getaddrinfo` blocks, so a small
//! fixed pool does it and posts the answer back as a command. The pool does
//! not grow with the number of sockets.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
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
        let result = match answer_set_for(&job.host, job.port) {
            Some(addrs) => Ok(addrs),
            None => (job.host.as_str(), job.port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect()),
        };
        io.send(Command::Resolved(job.handle, result));
    }
}

/// Answers that tests set for names, ahead of the system's resolver: they
/// need a name with an address that never answers, which no hosts file
/// gives them. Empty unless a test set one.
static ANSWERS: OnceLock<Mutex<HashMap<String, Vec<std::net::IpAddr>>>> = OnceLock::new();

fn answer_set_for(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let answers = crate::sync::lock(ANSWERS.get()?);
    let ips = answers.get(&host.to_ascii_lowercase())?;
    Some(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
}

/// Makes `name` resolve to `ips`, in that order, for every socket of the
/// process from now on (empty: back to the system's resolver).
pub(crate) fn set_answer(name: &str, ips: Vec<std::net::IpAddr>) {
    let mut answers = crate::sync::lock(ANSWERS.get_or_init(Default::default));
    match ips.is_empty() {
        true => answers.remove(&name.to_ascii_lowercase()),
        false => answers.insert(name.to_ascii_lowercase(), ips),
    };
}
