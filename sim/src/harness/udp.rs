//! quinn's `AsyncUdpSocket` over turmoil's simulated UDP, so that the real quinn + rustls
//! transport runs unchanged inside a simulated host.
//!
//! Contract: `poll_recv` first polls the stored `readable()` future (turmoil holds its
//! receive lock while that future is pending, so a `try_recv_from` before it would always
//! fail), then takes one datagram with `try_recv_from`. Sending never blocks: the poller
//! is always writable and `try_send` is `try_send_to`. One datagram per call (no GSO/GRO).

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

type Readable = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A turmoil UDP socket that quinn can drive.
pub struct TurmoilUdp {
    socket: Arc<turmoil::net::UdpSocket>,
    readable: Mutex<Option<Readable>>,
}

impl TurmoilUdp {
    /// Binds `0.0.0.0:port` on the current simulated host.
    pub async fn bind(port: u16) -> io::Result<Arc<Self>> {
        let socket = turmoil::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
        Ok(Arc::new(TurmoilUdp {
            socket: Arc::new(socket),
            readable: Mutex::new(None),
        }))
    }
}

impl fmt::Debug for TurmoilUdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TurmoilUdp({:?})", self.socket.local_addr().ok())
    }
}

/// Turmoil UDP has no back-pressure: always writable.
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for TurmoilUdp {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.socket
            .try_send_to(transmit.contents, transmit.destination)
            .map(|_| ())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(meta)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut slot = self.readable.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let socket = self.socket.clone();
            let readable =
                slot.get_or_insert_with(|| Box::pin(async move { socket.readable().await }));
            match readable.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    *slot = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(())) => *slot = None,
            }
            match self.socket.try_recv_from(buf) {
                Ok((len, addr)) => {
                    *meta = RecvMeta {
                        addr,
                        len,
                        stride: len,
                        ecn: None,
                        dst_ip: None,
                    };
                    return Poll::Ready(Ok(1));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}
