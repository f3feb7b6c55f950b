//! A TCP listener whose connections a handler can cut, for the `Drop` fault.
//!
//! A handler cannot close its own connection through axum, so every accepted socket keeps a second
//! handle to itself (a `dup` of the descriptor). The handler reaches it through `ConnectInfo` and
//! shuts the socket down: the client sees the connection end without a single byte of response.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The listener handed to `axum::serve`.
pub struct CuttableListener {
    inner: TcpListener,
}

impl CuttableListener {
    pub fn new(inner: TcpListener) -> CuttableListener {
        CuttableListener { inner }
    }
}

/// An accepted connection together with a handle that can cut it.
pub struct CuttableStream {
    stream: TcpStream,
    cutter: Cutter,
}

/// Cuts one connection; cheap to clone into every request of that connection.
#[derive(Clone, Debug)]
pub struct Cutter {
    socket: Arc<std::net::TcpStream>,
}

impl Cutter {
    /// Shuts the connection down in both directions, so nothing more is sent on it.
    pub fn cut(&self) {
        // The peer may already be gone; there is nothing left to do then.
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

impl<'a> Connected<IncomingStream<'a, CuttableListener>> for Cutter {
    fn connect_info(stream: IncomingStream<'a, CuttableListener>) -> Self {
        stream.io().cutter.clone()
    }
}

/// Wraps an accepted stream, keeping a duplicate descriptor to cut it with.
fn wrap(stream: TcpStream) -> io::Result<CuttableStream> {
    // Small answers should leave at once rather than wait for Nagle's algorithm.
    stream.set_nodelay(true)?;
    let std_stream = stream.into_std()?;
    let twin = std_stream.try_clone()?;
    Ok(CuttableStream {
        stream: TcpStream::from_std(std_stream)?,
        cutter: Cutter {
            socket: Arc::new(twin),
        },
    })
}

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => match wrap(stream) {
                    Ok(stream) => return (stream, addr),
                    // The connection is unusable (the peer left, or descriptors ran out); the
                    // client sees a closed connection and may retry.
                    Err(_) => continue,
                },
                // Accept errors such as running out of descriptors pass; back off briefly so a
                // persistent one does not spin the loop.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
