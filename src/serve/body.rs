//! A request body handed from the server's async side to a blocking
//! verification: the async side pumps the body's chunks into a bounded
//! channel (so a slow disk slows the client, and memory stays a few
//! chunks per request), the blocking side reads them as a [`Read`].
//!
//! The end of the body is an explicit message: a channel that closes
//! without it (the request was dropped, the client went away) is an error
//! to the reader, never a short but complete-looking package.

use std::io::Read;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// One message of the pump.
#[derive(Debug)]
pub enum Piece {
    /// More bytes.
    Data(Bytes),
    /// The body ended here, complete.
    End,
    /// The body failed; the reader reports this.
    Failed(std::io::ErrorKind, &'static str),
}

/// Why the pump stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpError {
    /// More than the limit.
    TooLarge,
    /// No chunk arrived within the idle timeout.
    Idle,
    /// The connection failed mid-body.
    Broken,
}

/// The blocking side: the body as a reader.
pub struct ChannelReader {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
    ended: bool,
}

impl ChannelReader {
    /// A reader of what the pump sends.
    pub fn new(rx: mpsc::Receiver<Piece>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
            ended: false,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Data(b)) => self.current = b,
                Some(Piece::End) => self.ended = true,
                Some(Piece::Failed(kind, what)) => return Err(std::io::Error::new(kind, what)),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the request ended before its body did",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        let chunk = self.current.split_to(n);
        buf.get_mut(..n)
            .ok_or_else(|| std::io::Error::other("short buffer"))?
            .copy_from_slice(&chunk);
        Ok(n)
    }
}

/// Send `body` to `tx`, refusing more than `limit` bytes and waiting at
/// most `idle` for each chunk. Returns once the body ended, failed, or the
/// reader stopped wanting it (it refused the package before reading all).
pub async fn pump(
    body: Body,
    tx: mpsc::Sender<Piece>,
    limit: u64,
    idle: Duration,
) -> Result<(), PumpError> {
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    // An item taken from the stream while gathering, not handled yet (an
    // error or the end is never dropped on the way).
    let mut held: Option<Option<Result<Bytes, axum::Error>>> = None;
    loop {
        let item = match held.take() {
            Some(item) => Ok(item),
            None => tokio::time::timeout(idle, stream.next()).await,
        };
        let (piece, result) = match item {
            Err(_) => (
                Piece::Failed(
                    std::io::ErrorKind::TimedOut,
                    "the client sent nothing for too long",
                ),
                Err(PumpError::Idle),
            ),
            Ok(None) => (Piece::End, Ok(())),
            Ok(Some(Err(_))) => (
                Piece::Failed(
                    std::io::ErrorKind::ConnectionAborted,
                    "the client's connection failed mid-body",
                ),
                Err(PumpError::Broken),
            ),
            Ok(Some(Ok(first))) => {
                // Gather what has already arrived into one piece: one
                // hand-off to the reader per COALESCE bytes rather than per
                // network read (each hand-off may wake a thread).
                let (bytes, next) = gather(first, &mut stream);
                held = next;
                total = total.saturating_add(bytes.len() as u64);
                if total > limit {
                    (
                        Piece::Failed(
                            std::io::ErrorKind::InvalidData,
                            "the body is over the limit",
                        ),
                        Err(PumpError::TooLarge),
                    )
                } else {
                    if tx.send(Piece::Data(bytes)).await.is_err() {
                        // The reader is done (it refused before reading all).
                        return Ok(());
                    }
                    continue;
                }
            }
        };
        // The reader may be gone already; what it was told does not matter then.
        let _ = tx.send(piece).await;
        return result;
    }
}

/// Pieces handed to the reader are gathered up to this size.
const GATHER: usize = 256 * 1024;

/// `first`, and the data chunks that are ready now after it, as one piece
/// of about [`GATHER`] bytes at most; and the item that stopped the
/// gathering when it was taken from the stream (the end, an error, or a
/// chunk that did not fit), which the caller handles next.
#[allow(clippy::type_complexity)]
fn gather<S>(first: Bytes, stream: &mut S) -> (Bytes, Option<Option<Result<Bytes, axum::Error>>>)
where
    S: futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    use futures_util::FutureExt as _;
    if first.len() >= GATHER {
        return (first, None);
    }
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Not ready now: nothing was taken; the next turn waits for it.
        let Some(item) = stream.next().now_or_never() else {
            break;
        };
        match item {
            Some(Ok(more)) if first.len() + buf.len() + more.len() <= GATHER => {
                if buf.is_empty() {
                    buf.reserve(GATHER);
                    buf.extend_from_slice(&first);
                }
                buf.extend_from_slice(&more);
            }
            other => {
                let out = if buf.is_empty() {
                    first
                } else {
                    Bytes::from(buf)
                };
                return (out, Some(other));
            }
        }
    }
    let out = if buf.is_empty() {
        first
    } else {
        Bytes::from(buf)
    };
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> axum::Error {
        axum::Error::new(std::io::Error::other("reset"))
    }

    #[test]
    fn gathering_never_drops_an_error_or_the_end() {
        let chunks = |n: usize| (0..n).map(|i| Ok(Bytes::from(vec![i as u8; 1000])));
        // Chunks then an error: the error is handed back, not lost.
        let mut s = futures_util::stream::iter(chunks(5).chain([Err(err())]));
        let (piece, held) = gather(Bytes::from_static(b"first"), &mut s);
        assert_eq!(piece.len(), 5 + 5 * 1000);
        assert!(matches!(held, Some(Some(Err(_)))));
        // Chunks then the end.
        let mut s = futures_util::stream::iter(chunks(3));
        let (piece, held) = gather(Bytes::from_static(b"x"), &mut s);
        assert_eq!(piece.len(), 3001);
        assert!(matches!(held, Some(None)));
        // A chunk that does not fit is held, whole, for the next turn.
        let mut s = futures_util::stream::iter([
            Ok(Bytes::from(vec![1u8; GATHER - 10])),
            Ok(Bytes::from(vec![2u8; 100])),
        ]);
        let (piece, held) = gather(Bytes::from_static(b"abc"), &mut s);
        assert_eq!(piece.len(), 3 + GATHER - 10);
        assert!(matches!(held, Some(Some(Ok(ref b))) if b.len() == 100));
        // The bytes come out in order.
        let mut s = futures_util::stream::iter([Ok(Bytes::from_static(b"cd"))]);
        let (piece, _) = gather(Bytes::from_static(b"ab"), &mut s);
        assert_eq!(&piece[..], b"abcd");
    }
}
