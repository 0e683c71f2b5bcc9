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
    loop {
        let (piece, result) = match tokio::time::timeout(idle, stream.next()).await {
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
            Ok(Some(Ok(bytes))) => {
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
