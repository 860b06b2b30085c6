//! wsembed's benchmark programs, driven by `benches/run` (see
//! `benches/README.md`). One binary with subcommands, so every figure is
//! taken with the same build:
//!
//! - `server`: the echo server every client of a comparison talks to (one
//!   thread, mio/epoll; WebSocket frame echo, or raw TCP echo);
//! - `rtt`: round trips on one socket, wsembed through its C ABI or a plain
//!   blocking tungstenite client;
//! - `stream`: pipelined binary messages through wsembed, tungstenite or raw
//!   TCP;
//! - `scale`: thousands of sockets on wsembed's one IO thread;
//! - `codec`: permessage-deflate's compress and inflate alone, no sockets
//!   (the yardstick of the deflate streaming figure).
//!
//! Each client prints one JSON line on stdout; `benches/harness.py` runs
//! them interleaved and prints the table. Nothing here is a test: no
//! timing is ever asserted.

mod clients;
mod deflate;
mod scale;
mod server;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Counts allocations while `COUNTING` is on (`--count-allocs 1`): the
/// library is linked into this binary, so its allocations on the IO thread
/// are counted too. Off, it costs one relaxed load per allocation.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocation counters: (allocations, bytes).
pub fn alloc_counts() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        ALLOC_BYTES.load(Ordering::Relaxed),
    )
}

/// `--key value` arguments after the subcommand.
pub struct Args {
    map: HashMap<String, String>,
}

impl Args {
    fn parse(raw: &[String]) -> Args {
        let mut map = HashMap::new();
        let mut it = raw.iter();
        while let Some(key) = it.next() {
            let Some(key) = key.strip_prefix("--") else {
                die(&format!("unexpected argument {key:?}"));
            };
            let value = it
                .next()
                .unwrap_or_else(|| die(&format!("--{key} needs a value")));
            map.insert(key.to_owned(), value.clone());
        }
        Args { map }
    }

    pub fn str(&self, key: &str, default: &str) -> String {
        self.map
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    pub fn num(&self, key: &str, default: u64) -> u64 {
        match self.map.get(key) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|e| die(&format!("--{key} {v:?}: {e}"))),
        }
    }
}

pub fn die(message: &str) -> ! {
    eprintln!("wsbench: {message}");
    std::process::exit(2)
}

/// CPU time and context switches of this whole process.
#[derive(Clone, Copy)]
pub struct Usage {
    pub cpu: f64,
    pub voluntary: i64,
    pub involuntary: i64,
}

pub fn usage() -> Usage {
    // SAFETY: getrusage fills the struct we hand it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu: secs(ru.ru_utime) + secs(ru.ru_stime),
        voluntary: ru.ru_nvcsw,
        involuntary: ru.ru_nivcsw,
    }
}

/// A field of /proc/self/status, in its unit (kB for memory).
pub fn proc_status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Raises the open-file limit to at least `want` (as root the hard limit
/// too). Returns the soft limit in force.
pub fn raise_nofile(want: u64) -> u64 {
    // SAFETY: plain getrlimit/setrlimit on structs we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        if lim.rlim_cur >= want {
            return lim.rlim_cur;
        }
        if lim.rlim_max < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: want,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return want;
            }
        }
        lim.rlim_cur = lim.rlim_max.min(want);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

/// One JSON object, built by hand (numbers and plain strings only).
#[derive(Default)]
pub struct Json {
    fields: Vec<(String, String)>,
}

impl Json {
    pub fn str(mut self, key: &str, value: &str) -> Json {
        let escaped: String = value
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                c if (c as u32) < 0x20 => vec![' '],
                c => vec![c],
            })
            .collect();
        self.fields.push((key.into(), format!("\"{escaped}\"")));
        self
    }

    pub fn num(mut self, key: &str, value: f64) -> Json {
        let text = if value.is_finite() {
            format!("{value}")
        } else {
            "null".into()
        };
        self.fields.push((key.into(), text));
        self
    }

    /// Appends `other`'s fields.
    pub fn with(mut self, other: Json) -> Json {
        self.fields.extend(other.fields);
        self
    }

    pub fn print(self) {
        let body: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        println!("{{{}}}", body.join(", "));
    }
}

/// Ends the process if it runs past `secs`: every program here stops by
/// itself even when its peer hangs.
pub fn watchdog(secs: u64, what: &'static str) {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            eprintln!("wsbench {what}: still running after {secs} s; giving up");
            std::process::exit(3);
        })
        .expect("spawn watchdog");
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs bench targets with `--bench`: say what this is.
    let Some(command) = argv.first().filter(|c| !c.starts_with("--")) else {
        eprintln!(
            "wsbench: run the benchmarks with `benches/run` (this is one of its programs: \
             wsbench server|rtt|stream|scale|codec --key value ...)"
        );
        return;
    };
    let args = Args::parse(&argv[1..]);
    if args.num("count-allocs", 0) != 0 {
        COUNTING.store(true, Ordering::Relaxed);
    }
    match command.as_str() {
        "server" => server::main(&args),
        "rtt" => clients::rtt(&args),
        "stream" => clients::stream(&args),
        "scale" => scale::main(&args),
        "codec" => deflate::codec(&args),
        other => die(&format!("unknown command {other:?}")),
    }
}
