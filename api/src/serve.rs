//! The HTTP/1.1 accept loop. Unlike a bare `axum::serve`, it bounds what a
//! slow or hostile client can hold: a connection must send a complete
//! request head within the request timeout (also between keep-alive
//! requests, so idle connections close), and at most `max_connections` are
//! open at once (more wait in the listen backlog). Request bodies and
//! handlers are bounded by the same timeout in
//! [`crate::middleware::request_context`].

use crate::routes::inbound::PeerAddr;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Connection limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// To send a complete request head (and the longest idle keep-alive).
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight.
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (for up to `limits.drain`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) => {
                    // Out of file descriptors, a connection reset before
                    // accept…: keep serving the others.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        // Handlers that need the client's address (the console's sign-in
        // limiter, the metrics endpoint's loopback check) find it in the
        // request's extensions.
        let service =
            router
                .clone()
                .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(crate::console::web::ClientAddr(peer));
                    req.extensions_mut().insert(Peer(peer));
                    req.extensions_mut().insert(PeerAddr(peer));
                    req
                });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(drain = ?limits.drain, "connections still open after the drain period; closing them");
    }
}
