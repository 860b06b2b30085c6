//! Figure 6, permessage-deflate: the text every deflate run sends, and
//! `codec`, the yardstick wsembed's compressed stream is held against.
//!
//! The text is newline-delimited JSON records (ids, names, e-mail
//! addresses, booleans, numbers, dates) from a fixed seed, so every run and
//! every program sends the same bytes; level 6 shrinks it about 6 times,
//! as API payloads usually do. A run cycles through a pool of distinct
//! messages: each is larger than any deflate window, so repeating the pool
//! gains nothing over fresh text, and nothing is generated while timed.
//!
//! `codec` does what permessage-deflate asks of the two codecs and nothing
//! else, in one process on one thread: each message compressed (flate2 on
//! zlib-rs, as wsembed; raw deflate, sync flush, tail stripped, context
//! kept between messages), then inflated by a second context with the
//! same history, and compared byte for byte, as the client compares each
//! echo.

/// Distinct messages a run cycles through (a power of two: the clients
/// pick the next one with a mask).
pub const POOL: usize = 64;

const FIRST: [&str; 24] = [
    "Maria", "James", "Aiko", "Olu", "Sofia", "Liam", "Chen", "Fatima", "Noah", "Elena", "Ravi",
    "Zoe", "Mateo", "Hana", "Lucas", "Amara", "Ivan", "Nora", "Kofi", "Mei", "Omar", "Lena",
    "Diego", "Yuki",
];
const LAST: [&str; 24] = [
    "Garcia", "Smith", "Tanaka", "Okafor", "Rossi", "Murphy", "Wang", "Haddad", "Brown", "Petrova",
    "Patel", "Martin", "Lopez", "Kim", "Silva", "Nwosu", "Ivanov", "Berg", "Mensah", "Lin",
    "Farouk", "Weber", "Torres", "Sato",
];
const CITIES: [&str; 12] = [
    "Lisbon", "Osaka", "Lagos", "Toronto", "Berlin", "Lima", "Pune", "Oslo", "Accra", "Austin",
    "Seoul", "Madrid",
];
const TAGS: [&str; 8] = [
    "new", "vip", "beta", "trial", "churned", "partner", "staff", "eu",
];

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

fn record(rng: &mut Rng, id: u64, out: &mut String) {
    use std::fmt::Write;
    let (first, last) = (rng.pick(&FIRST), rng.pick(&LAST));
    let tags: Vec<String> = (0..rng.below(3))
        .map(|_| format!("\"{}\"", rng.pick(&TAGS)))
        .collect();
    let _ = writeln!(
        out,
        "{{\"id\":{id},\"name\":\"{first} {last}\",\"email\":\"{}.{}{}@example.com\",\
         \"active\":{},\"verified\":{},\"age\":{},\"city\":\"{}\",\"score\":{}.{:02},\
         \"balance\":{}.{:02},\"tags\":[{}],\"created\":\"2024-{:02}-{:02}T{:02}:{:02}:{:02}Z\"}}",
        first.to_lowercase(),
        last.to_lowercase(),
        rng.below(100),
        rng.below(5) != 0,
        rng.below(2) == 0,
        18 + rng.below(60),
        rng.pick(&CITIES),
        rng.below(100),
        rng.below(100),
        rng.below(20_000) as i64 - 5_000,
        rng.below(100),
        tags.join(","),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
    );
}

/// `count` messages of exactly `size` bytes each: one stream of records
/// cut into pieces, so a record may straddle two messages (ASCII, so every
/// piece is valid text).
pub fn json_messages(size: usize, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5EED_DEF1_A7E0_0001);
    let mut text = String::with_capacity(size * count + 512);
    let mut id = 100_000;
    while text.len() < size * count {
        record(&mut rng, id, &mut text);
        id += 1 + rng.below(3);
    }
    let bytes = text.into_bytes();
    bytes
        .chunks_exact(size.max(1))
        .take(count)
        .map(<[u8]>::to_vec)
        .collect()
}

/// `codec --size S --count N --level L --window-bits W`
#[cfg(feature = "deflate")]
pub fn codec(args: &crate::Args) {
    use std::time::Instant;

    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

    use crate::{die, usage, Json};

    const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];
    let size = args.num("size", 64 << 10) as usize;
    let count = args.num("count", 1024).max(1);
    let level = args.num("level", 6) as u32;
    let bits = args.num("window-bits", 15) as u8;
    let messages = json_messages(size, POOL);
    let mut deflater = Compress::new_with_window_bits(Compression::new(level), false, bits);
    let mut inflater = Decompress::new_with_window_bits(false, bits);
    let mut wire: Vec<u8> = Vec::with_capacity(size + 64);
    let mut plain: Vec<u8> = Vec::with_capacity(size + 1024);
    let (mut compress_secs, mut inflate_secs, mut wire_bytes) = (0f64, 0f64, 0u64);
    let cpu0 = usage();
    let start = Instant::now();
    for i in 0..count as usize {
        let message = &messages[i & (POOL - 1)];
        let t0 = Instant::now();
        // As wsembed compresses (framing/compress.rs): one sync flush,
        // looped until zlib stops short of filling the buffer.
        wire.clear();
        let before = deflater.total_in();
        loop {
            let taken = (deflater.total_in() - before) as usize;
            wire.reserve(message.len() - taken + 64);
            deflater
                .compress_vec(&message[taken..], &mut wire, FlushCompress::Sync)
                .unwrap_or_else(|e| die(&format!("codec: deflate: {e}")));
            let taken = (deflater.total_in() - before) as usize;
            if taken == message.len() && wire.len() < wire.capacity() {
                break;
            }
        }
        if !wire.ends_with(&TAIL) {
            die("codec: a sync flush without its tail");
        }
        wire.truncate(wire.len() - TAIL.len());
        wire_bytes += wire.len() as u64;
        let t1 = Instant::now();
        // The receiver puts the tail back (RFC 7692 7.2.2).
        wire.extend_from_slice(&TAIL);
        plain.clear();
        let before = inflater.total_in();
        inflater
            .decompress_vec(&wire, &mut plain, FlushDecompress::Sync)
            .unwrap_or_else(|e| die(&format!("codec: inflate: {e}")));
        if (inflater.total_in() - before) as usize != wire.len() || plain != *message {
            die(&format!("codec: message {i} did not come back as it was"));
        }
        let t2 = Instant::now();
        compress_secs += (t1 - t0).as_secs_f64();
        inflate_secs += (t2 - t1).as_secs_f64();
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = usage().cpu - cpu0.cpu;
    let payload = count as f64 * size as f64;
    Json::default()
        .str("bench", "codec")
        .str("impl", "codec")
        .num("size", size as f64)
        .num("count", count as f64)
        .num("level", level as f64)
        .num("window_bits", bits as f64)
        .num("secs", secs)
        .num("mb_per_sec", payload / secs / 1e6)
        .num("compress_mb_per_sec", payload / compress_secs / 1e6)
        .num("inflate_mb_per_sec", payload / inflate_secs / 1e6)
        .num("payload_bytes", payload)
        // Each message would cross the wire once each way.
        .num("wire_out_bytes", wire_bytes as f64)
        .num("wire_in_bytes", wire_bytes as f64)
        .num("cpu_secs", cpu)
        .num("cpu_util", cpu / secs)
        .print();
}

#[cfg(not(feature = "deflate"))]
pub fn codec(_args: &crate::Args) {
    crate::die("codec: this build has no deflate (the crate's `deflate` feature is off)")
}
