//! Bytes waiting for the socket, in the order they must go out: frames
//! wsembed encoded itself (whole buffers of them, moved in without a copy)
//! and whatever tungstenite writes (control frames), queued behind them.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Emptied buffers kept for reuse, at most this many bytes of them, so a
/// steady flow allocates nothing and a burst's memory goes back.
const SPARE_BYTES_MAX: usize = 1 << 20;
/// Buffers handed to one vectored write.
const MAX_SLICES: usize = 64;

#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    /// Emptied buffers, so the next batches need no allocation.
    spares: Vec<Vec<u8>>,
    spare_bytes: usize,
}

impl OutQueue {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Appends a buffer of encoded bytes; an empty one is kept as spare.
    pub fn push(&mut self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            self.recycle(chunk);
        } else {
            self.chunks.push_back(chunk);
        }
    }

    /// An empty buffer to fill (a reused one, if any).
    pub fn take_spare(&mut self) -> Vec<u8> {
        let spare = self.spares.pop().unwrap_or_default();
        self.spare_bytes -= spare.capacity();
        spare
    }

    fn recycle(&mut self, mut chunk: Vec<u8>) {
        if chunk.capacity() > 0 && self.spare_bytes + chunk.capacity() <= SPARE_BYTES_MAX {
            chunk.clear();
            self.spare_bytes += chunk.capacity();
            self.spares.push(chunk);
        }
    }

    /// Writes `bytes` behind everything queued: straight to `sink` when
    /// nothing is queued, and whatever it does not take is queued. Always
    /// takes all of `bytes`, so a frame is never split around another one.
    pub fn write_through(&mut self, sink: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        if self.chunks.is_empty() {
            loop {
                match sink.write(rest) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) if n == rest.len() => return Ok(()),
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        let mut chunk = self.take_spare();
        chunk.extend_from_slice(rest);
        self.chunks.push_back(chunk);
        Ok(())
    }

    /// Writes queued bytes until none is left (Ok) or `sink` would block.
    #[cfg(any(test, feature = "tls"))]
    pub fn send(&mut self, sink: &mut impl Write) -> io::Result<()> {
        self.send_vectored(|slices| sink.write(slices[0].as_ref()))
    }

    /// As `send`, with a write that takes several buffers at once (one
    /// syscall for every message a callback pass queued).
    pub fn send_vectored(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<()> {
        while !self.chunks.is_empty() {
            let written = if self.chunks.len() == 1 {
                // The usual case (one reply): no slice array to fill.
                write(&[IoSlice::new(&self.chunks[0][self.front_written..])])
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let mut count = 0;
                for (i, chunk) in self.chunks.iter().take(MAX_SLICES).enumerate() {
                    let from = if i == 0 { self.front_written } else { 0 };
                    slices[i] = IoSlice::new(&chunk[from..]);
                    count += 1;
                }
                write(&slices[..count])
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `n` more bytes went out: drops (and reuses) the chunks they finish.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let front = self.chunks.front().expect("no more written than queued");
            let left = front.len() - self.front_written;
            if n < left {
                self.front_written += n;
                return;
            }
            n -= left;
            self.front_written = 0;
            let done = self.chunks.pop_front().expect("front exists");
            self.recycle(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `room` bytes per call, then says it would block once.
    struct Narrow {
        taken: Vec<u8>,
        room: usize,
        block_next: bool,
    }

    impl Write for Narrow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if std::mem::take(&mut self.block_next) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.block_next = true;
            let n = buf.len().min(self.room);
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_leave_in_order_across_partial_writes() {
        let mut q = OutQueue::default();
        let mut sink = Narrow {
            taken: Vec::new(),
            room: 3,
            block_next: false,
        };
        q.push(b"abcdefgh".to_vec());
        // tungstenite writes while a chunk waits: queued behind it.
        q.write_through(&mut sink, b"PONG").unwrap();
        assert!(sink.taken.is_empty());
        q.push(b"ij".to_vec());
        let mut rounds = 0;
        while !q.is_empty() {
            match q.send(&mut sink) {
                Ok(()) => {}
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
            rounds += 1;
            assert!(rounds < 100);
        }
        assert_eq!(sink.taken, b"abcdefghPONGij");
    }

    #[test]
    fn a_vectored_write_may_end_anywhere_in_any_chunk() {
        let mut q = OutQueue::default();
        for chunk in [&b"abc"[..], b"", b"defgh", b"i", b"jklmnop"] {
            q.push(chunk.to_vec());
        }
        let mut taken = Vec::new();
        // Takes 4 bytes per call, across slice boundaries.
        let mut steps = 0;
        while !q.is_empty() {
            q.send_vectored(|slices| {
                steps += 1;
                if steps % 2 == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let mut n = 0;
                for s in slices {
                    let take = s.len().min(4 - n);
                    taken.extend_from_slice(&s[..take]);
                    n += take;
                    if n == 4 {
                        break;
                    }
                }
                Ok(n)
            })
            .or_else(|e| {
                if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .unwrap();
        }
        assert_eq!(taken, b"abcdefghijklmnop");
    }

    #[test]
    fn a_partial_write_through_queues_the_rest_before_later_chunks() {
        let mut q = OutQueue::default();
        let mut sink = Narrow {
            taken: Vec::new(),
            room: 2,
            block_next: false,
        };
        q.write_through(&mut sink, b"CLOSE").unwrap();
        assert_eq!(sink.taken, b"CL");
        q.push(b"data".to_vec());
        while !q.is_empty() {
            let _ = q.send(&mut sink);
        }
        assert_eq!(sink.taken, b"CLOSEdata");
    }
}
