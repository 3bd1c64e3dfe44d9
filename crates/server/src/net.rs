//! The listener: HTTP/1 connections with bounded header reads and idle
//! keep-alive, at most `HIRECJ_MAX_CONNECTIONS` open at once (a clear 503
//! beyond it, never a hang), `TCP_NODELAY` on every socket, and graceful
//! shutdown. A WebSocket keeps its connection's slot for as long as it is
//! open ([`ConnectionSlot`]).

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::metrics::Metrics;

/// How the listener treats connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Request headers must arrive within this; an idle keep-alive
    /// connection is closed after it.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// How long in-flight requests get after shutdown starts.
    pub grace: Duration,
}

/// A connection's place under the cap, in every request's extensions. The
/// WebSocket handler keeps a clone, so an upgraded connection holds its
/// slot until the socket closes.
#[derive(Debug, Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// What a client over the cap reads before its connection is closed.
const AT_CAPACITY: &str = "HTTP/1.1 503 Service Unavailable\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Retry-After: 1\r\n\
    Cache-Control: no-store\r\n\
    Connection: close\r\n\
    Content-Length: 58\r\n\r\n\
    The server is at its connection limit; try again shortly.\n";

/// Serves `router` until `shutdown` is cancelled. After that no new
/// connections are accepted; in-flight requests get `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    options: ServeOptions,
    metrics: Metrics,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    // Every connection task holds a receiver; `closed()` resolves when the
    // last one is gone.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        // Frames written together leave together (no Nagle delay).
        let _ = stream.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.connection_refused();
            tracing::warn!(%peer, max = options.max_connections, "connection limit reached; answered 503");
            tokio::spawn(refuse(stream));
            continue;
        };
        let slot = ConnectionSlot(Arc::new(permit));
        let task = Connection {
            router: router.clone(),
            peer,
            slot,
            header_timeout: options.header_timeout,
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
            _open: open_rx.clone(),
            last: false,
        };
        tokio::spawn(task.run(stream));
    }
    // Connections the kernel had already accepted when shutdown began are
    // served their request (then closed), not reset with the listener.
    if let Ok(queued) = listener.into_std() {
        while let Ok((stream, peer)) = queued.accept() {
            let stream = match stream
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(stream))
            {
                Ok(stream) => stream,
                Err(_) => continue,
            };
            let _ = stream.set_nodelay(true);
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tokio::spawn(refuse(stream));
                continue;
            };
            let task = Connection {
                router: router.clone(),
                peer,
                slot: ConnectionSlot(Arc::new(permit)),
                header_timeout: options.header_timeout,
                shutdown: shutdown.clone(),
                metrics: metrics.clone(),
                _open: open_rx.clone(),
                last: true,
            };
            tokio::spawn(task.run(stream));
        }
    }
    drop(open_rx);
    tokio::select! {
        () = open_tx.closed() => Ok(()),
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!(grace_secs = options.grace.as_secs(), "in-flight requests did not finish in time; stopping anyway");
            Ok(())
        }
    }
}

/// How long a connection may go on as it was once shutdown has begun, so a
/// request already sent is read (then the connection shuts down
/// gracefully: what is in flight finishes, nothing new starts).
const SHUTDOWN_SETTLE: Duration = Duration::from_millis(250);

/// One accepted connection.
struct Connection {
    router: Router,
    peer: SocketAddr,
    slot: ConnectionSlot,
    header_timeout: Duration,
    shutdown: CancellationToken,
    metrics: Metrics,
    _open: watch::Receiver<()>,
    /// Accepted as the server shuts down: one request, then closed.
    last: bool,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let Self {
            router,
            peer,
            slot,
            header_timeout,
            shutdown,
            metrics,
            _open,
            last,
        } = self;
        let _gauge = metrics.connection_opened();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(slot.clone());
            router.clone().oneshot(request)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(!last);
        let mut connection = pin!(
            builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
        );
        if last {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
            () = shutdown.cancelled() => {
                // A request whose bytes have arrived but that the
                // connection has not read yet is read and served first:
                // closing it now would reset a request the client already
                // sent.
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        return;
                    }
                    () = tokio::time::sleep(SHUTDOWN_SETTLE) => {}
                }
                connection.as_mut().graceful_shutdown();
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
        }
    }
}

/// Answers a connection over the cap with a 503 and closes it, within a
/// second whatever the client does.
async fn refuse(mut stream: TcpStream) {
    let answer = async {
        stream.write_all(AT_CAPACITY.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent so closing does not reset the
        // connection before it has read the answer.
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

/// Accepting failed: per-connection errors are skipped; running out of
/// file descriptors backs off briefly so the loop does not spin.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Raises the open-file soft limit to the hard limit (every connection is
/// a file descriptor) and returns how many connections fit in it: the
/// configured cap, lowered to leave room for the database, Redis, the model
/// and Shopify.
pub fn fit_connections(configured: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let mut soft = before.current;
    if before.current < before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => soft = before.maximum,
            Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
        }
    }
    let Some(files) = soft else {
        tracing::info!(max_connections = configured, "open files: no limit");
        return configured;
    };
    let files = usize::try_from(files).unwrap_or(usize::MAX);
    let reserve = (files / 4).min(256);
    let fit = configured.min(files.saturating_sub(reserve).max(1));
    tracing::info!(
        soft_before = ?before.current,
        soft = files,
        hard = ?before.maximum,
        max_connections = fit,
        "open files"
    );
    if fit < configured {
        tracing::warn!(
            configured,
            max_connections = fit,
            "HIRECJ_MAX_CONNECTIONS lowered to fit the open-file limit; raise `ulimit -n` to accept more"
        );
    }
    fit
}
