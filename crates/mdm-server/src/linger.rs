//! Lingering close for plain-HTTP connections.
//!
//! When a handler refuses a body before reading all of it (a `413` for an
//! upload over the limit, a `401` before a large body), the HTTP layer closes
//! the connection with the rest of the body still unread. A TCP socket closed
//! with unread bytes sends a reset instead of a FIN, and a reset makes the
//! client's kernel discard the answer it has received but not yet read: the
//! client sees "connection reset" instead of the `413` that says why.
//!
//! [`LingeringListener`] (plain HTTP) and [`LingerAcceptor`] (under TLS)
//! hand out connections whose shutdown first sends the
//! FIN (the answer is complete), then reads and discards what the client
//! still sends — until it closes its side, goes quiet for
//! [`LINGER_IDLE`], or [`LINGER_TIME`] or [`LINGER_BYTES`] run out — and only
//! then lets the socket close. A client that closed first costs one read
//! that returns end-of-file.

use axum::serve::Listener;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The longest a closing connection keeps reading what its client sends.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// How long a closing connection waits for the client's next bytes before it
/// gives up on them.
pub const LINGER_IDLE: Duration = Duration::from_millis(500);

/// The most a closing connection reads and discards.
pub const LINGER_BYTES: usize = 64 << 20;

/// A TCP listener whose connections linger on close.
pub struct LingeringListener(pub TcpListener);

impl Listener for LingeringListener {
    type Io = Lingering;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Lingering, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (Lingering::new(stream), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The same for the HTTPS listener: the inner acceptor of axum-server's
/// rustls acceptor, so that TLS runs over a lingering connection (its
/// shutdown sends `close_notify`, then lingers like a plain one).
#[derive(Clone, Copy, Debug, Default)]
pub struct LingerAcceptor;

impl<S> axum_server::accept::Accept<TcpStream, S> for LingerAcceptor {
    type Stream = Lingering;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Lingering, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(Ok((Lingering::new(stream), service)))
    }
}

/// An accepted connection; see the module documentation.
pub struct Lingering {
    stream: TcpStream,
    drain: Option<Drain>,
}

/// Where a closing connection is in its lingering.
struct Drain {
    ends: Instant,
    quiet: Pin<Box<Sleep>>,
    left: usize,
}

impl Lingering {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            drain: None,
        }
    }

    /// Reads and discards until the client is done, quiet or over budget.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(d) = self.drain.as_mut() else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 8192];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    if n == 0 || n >= d.left {
                        return Poll::Ready(());
                    }
                    d.left -= n;
                    let next = (Instant::now() + LINGER_IDLE).min(d.ends);
                    d.quiet.as_mut().reset(next);
                }
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => {
                    return match d.quiet.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(()),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.drain.is_none() {
            // The FIN first: the answer is complete whatever happens next.
            // A peer that is already gone has nothing left to drain.
            if ready!(Pin::new(&mut this.stream).poll_shutdown(cx)).is_err() {
                return Poll::Ready(Ok(()));
            }
            let now = Instant::now();
            let ends = now + LINGER_TIME;
            this.drain = Some(Drain {
                ends,
                quiet: Box::pin(tokio::time::sleep_until((now + LINGER_IDLE).min(ends))),
                left: LINGER_BYTES,
            });
        }
        ready!(this.poll_drain(cx));
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::extract::DefaultBodyLimit;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A body far larger than the socket buffers, refused after 1 KiB: the
    /// client writes all of it before reading, as simple clients do.
    async fn refused_upload(lingering: bool) -> io::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/upload", post(|_: axum::body::Bytes| async { "stored" }))
            .layer(DefaultBodyLimit::max(1024));
        let server = if lingering {
            tokio::spawn(async move {
                let _ = axum::serve(LingeringListener(listener), app).await;
            })
        } else {
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            })
        };
        let body = vec![b'x'; 16 << 20];
        let mut conn = TcpStream::connect(addr).await?;
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let sent = async {
            conn.write_all(head.as_bytes()).await?;
            conn.write_all(&body).await?;
            let mut answer = Vec::new();
            conn.read_to_end(&mut answer).await?;
            Ok::<_, io::Error>(String::from_utf8_lossy(&answer).into_owned())
        }
        .await;
        server.abort();
        sent
    }

    #[tokio::test]
    async fn a_refused_upload_gets_its_answer() -> io::Result<()> {
        let answer = refused_upload(true).await?;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "expected a 413, got {answer:?}"
        );
        Ok(())
    }

    /// What the listener is for: without it the same client gets a reset.
    #[tokio::test]
    async fn without_lingering_the_client_gets_a_reset() {
        match refused_upload(false).await {
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ),
                "{e}"
            ),
            Ok(answer) => assert!(
                !answer.starts_with("HTTP/1.1 413"),
                "the plain listener delivered the 413 too: the test no longer shows the problem"
            ),
        }
    }

    #[tokio::test]
    async fn a_client_that_closed_first_costs_no_wait() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let server = tokio::spawn(async move {
            let _ = axum::serve(LingeringListener(listener), app).await;
        });
        let mut conn = TcpStream::connect(addr).await?;
        conn.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await?;
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await?;
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
        // The FIN goes out before the lingering starts: the client has the
        // end of the answer at once, not after LINGER_IDLE.
        assert!(started.elapsed() < LINGER_IDLE, "{:?}", started.elapsed());
        server.abort();
        Ok(())
    }
}
