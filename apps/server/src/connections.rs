//! Noticing clients that went away.
//!
//! hyper stops reading a connection while its request is being handled, so a client that
//! disconnects while its request waits in the queue goes unnoticed and its handler is never
//! dropped. The acceptor here keeps a duplicate of each connection's socket, keyed by the
//! peer address; a handler waiting for the model watches that duplicate for end-of-stream
//! ([`Connections::closed`]) and gives up, which drops its oneshot receiver and so takes the
//! request out of the queue.
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Open connections by peer address.
/// Each entry carries the id of its connection, so that a closing connection never removes
/// a newer one from the same peer address.
#[derive(Debug, Default)]
pub struct Connections {
    sockets: Mutex<HashMap<SocketAddr, (u64, std::net::TcpStream)>>,
    next_id: AtomicU64,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, (u64, std::net::TcpStream)>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(unix)]
    fn register(&self, peer: SocketAddr, stream: &TcpStream) -> u64 {
        use std::os::fd::AsFd;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(fd) = stream.as_fd().try_clone_to_owned() {
            self.lock()
                .insert(peer, (id, std::net::TcpStream::from(fd)));
        }
        id
    }

    #[cfg(not(unix))]
    fn register(&self, _peer: SocketAddr, _stream: &TcpStream) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn unregister(&self, peer: &SocketAddr, id: u64) {
        let mut map = self.lock();
        if map.get(peer).is_some_and(|(i, _)| *i == id) {
            map.remove(peer);
        }
    }

    /// Resolves once the client at `peer` has closed its connection (end of stream or
    /// reset). Never resolves when that cannot be known (unknown peer, or the client sent
    /// more bytes, e.g. a pipelined request).
    pub async fn closed(&self, peer: Option<SocketAddr>) {
        let watch = peer.and_then(|p| {
            let dup = self.lock().get(&p)?.1.try_clone().ok()?;
            dup.set_nonblocking(true).ok()?;
            TcpStream::from_std(dup).ok()
        });
        let Some(stream) = watch else {
            return std::future::pending().await;
        };
        let mut byte = [0u8; 1];
        match stream.peek(&mut byte).await {
            Ok(0) | Err(_) => {}
            Ok(_) => std::future::pending().await,
        }
    }
}

/// A TCP acceptor that records each connection in [`Connections`].
pub struct TrackingAcceptor {
    listener: TcpListener,
    local: LocalAddr,
    connections: Arc<Connections>,
}

impl TrackingAcceptor {
    pub fn new(listener: TcpListener, connections: Arc<Connections>) -> io::Result<Self> {
        let local = LocalAddr(listener.local_addr()?.into());
        Ok(Self {
            listener,
            local,
            connections,
        })
    }
}

impl Acceptor for TrackingAcceptor {
    type Io = TrackedStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![self.local.clone()]
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (stream, peer) = self.listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let id = self.connections.register(peer, &stream);
        let io = TrackedStream {
            inner: stream,
            peer,
            id,
            connections: self.connections.clone(),
        };
        Ok((
            io,
            self.local.clone(),
            RemoteAddr(peer.into()),
            poem::http::uri::Scheme::HTTP,
        ))
    }
}

/// A connection; forgets itself in [`Connections`] when dropped.
pub struct TrackedStream {
    inner: TcpStream,
    peer: SocketAddr,
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        self.connections.unregister(&self.peer, self.id);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
