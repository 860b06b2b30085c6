//! Bytes waiting for the socket, in the order they must go out: frames
//! wsembed encoded itself (whole buffers of them, moved in without a copy)
//! and whatever tungstenite writes (control frames), queued behind them.

use std::collections::VecDeque;
use std::io::{self, Write};

/// A buffer bigger than this is not kept for reuse after a burst.
const RECYCLE_MAX: usize = 1 << 20;

#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    /// An emptied buffer, kept so the next batch needs no allocation.
    spare: Vec<u8>,
}

impl OutQueue {
    #[cfg(test)]
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

    /// An empty buffer to fill (the spare one, if any).
    pub fn take_spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    fn recycle(&mut self, mut chunk: Vec<u8>) {
        if chunk.capacity() <= RECYCLE_MAX && chunk.capacity() > self.spare.capacity() {
            chunk.clear();
            self.spare = chunk;
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
    pub fn send(&mut self, sink: &mut impl Write) -> io::Result<()> {
        while let Some(front) = self.chunks.front() {
            match sink.write(&front[self.front_written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.front_written += n;
                    if self.front_written == front.len() {
                        self.front_written = 0;
                        let done = self.chunks.pop_front().expect("front exists");
                        self.recycle(done);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
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
