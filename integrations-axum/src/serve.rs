//! Serving a router with limits: what `axum::serve` leaves open.

use axum::Router;
use axum::http::{HeaderValue, header};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// Limits of [`serve`]. The defaults suit a service behind a reverse proxy or on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// How long a client may take to send a request's headers, including the wait for the
    /// next request on a kept-alive connection (default 10 s): a connection that trickles
    /// headers, sends nothing, or idles after a request is closed.
    pub header_read_timeout: Duration,
    /// How long one request may take to be answered (default 60 s); then `408`.
    pub request_timeout: Duration,
    /// How long a connection may stay open at all (default 10 minutes).
    pub connection_lifetime: Duration,
    /// The most connections served at once (default 1024); more wait in the listen
    /// backlog until one closes.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            connection_lifetime: Duration::from_secs(600),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` with `limits` until the process ends or accepting fails.
///
/// An answer given before the request's body was read to its end (a refused method,
/// content type or origin) says `Connection: close`: the server does not wait for a body
/// it will not read, so the connection cannot carry another request.
pub async fn serve(listener: TcpListener, app: Router, limits: ServeLimits) -> std::io::Result<()> {
    serve_with_shutdown(listener, app, limits, std::future::pending()).await
}

/// Like [`serve`], stopping to accept when `shutdown` completes and then waiting for open
/// connections to finish their current request (closing them when they idle).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let app = app.layer(tower::layer::layer_fn(move |inner| RequestTimeout {
        inner,
        timeout: limits.request_timeout,
    }));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // A transient accept error (too many open files, a reset): wait and retry.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let (request, read) = track_body(request);
                let answer = app.clone().oneshot(request);
                async move {
                    let mut response = answer.await?;
                    if !read.load(Ordering::Acquire) {
                        // Answered without reading the whole body: hyper will not wait
                        // for the rest and closes the connection, so say so, or a
                        // client reusing it loses its next request.
                        response
                            .headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            // HTTP/1.1 only: the version sniffing of an HTTP/2-capable server reads without
            // a timeout, which is exactly what an idle socket exploits.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let lifetime = tokio::time::sleep(limits.connection_lifetime);
            let mut lifetime = std::pin::pin!(lifetime);
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    () = &mut lifetime => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(limits.request_timeout, conn.as_mut()).await;
                        break;
                    }
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(limits.request_timeout, conn.as_mut()).await;
                            break;
                        }
                    }
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Wait for the connections to finish (each holds a slot).
    let _ = tokio::time::timeout(
        limits.request_timeout,
        slots.acquire_many(limits.max_connections.max(1) as u32),
    )
    .await;
    Ok(())
}

/// Serves `app` on `listener` with `limits` in a task of its own ([`serve_with_shutdown`])
/// and returns at once, with the bound address and a way to stop serving.
///
/// For a server started beside other work (a test, a binary that does more than serve):
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
/// let server = integrations_axum::spawn(listener, app, Default::default())?;
/// println!("serving {}", server.url());
/// server.shutdown().await
/// # }
/// ```
///
/// Must be called inside a tokio runtime.
pub fn spawn(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
) -> std::io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        // A dropped sender stops the server too.
        let _ = stopped.await;
    };
    let task = tokio::spawn(serve_with_shutdown(listener, app, limits, shutdown));
    Ok(ServerHandle {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

/// A server started by [`spawn`]. Dropping the handle stops the server without waiting
/// (it stops accepting; open connections finish their current request);
/// [`shutdown`](Self::shutdown) stops it and waits.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The address the listener is bound to (with the port picked when it asked for `0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<address>` (no trailing slash), e.g. `http://127.0.0.1:3000`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the server stops, which it does not do by itself (only a task that
    /// ends early, by a panic, ends the wait): for a binary that serves until it is
    /// interrupted.
    pub async fn wait(mut self) -> std::io::Result<()> {
        self.join().await
    }

    /// Stops accepting, lets open connections finish their current request (closing them
    /// when they idle, at most [`ServeLimits::request_timeout`] later) and returns once
    /// the server has stopped.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await
    }

    async fn join(&mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The request with a body that records, in the flag, when it has been read to its end
/// (at once for a request without a body).
fn track_body(request: hyper::Request<Incoming>) -> (axum::extract::Request, Arc<AtomicBool>) {
    let read = Arc::new(AtomicBool::new(request.body().is_end_stream()));
    let flag = read.clone();
    let request = request.map(|inner| axum::body::Body::new(TrackedBody { inner, read: flag }));
    (request, read)
}

struct TrackedBody {
    inner: Incoming,
    read: Arc<AtomicBool>,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Answers `408` (JSON) when a request takes longer than the timeout.
#[derive(Clone)]
struct RequestTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> tower::Service<axum::extract::Request> for RequestTimeout<S>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let future = self.inner.call(request);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, future).await {
                Ok(r) => r,
                Err(_) => Ok(axum::response::IntoResponse::into_response(
                    crate::api::ApiError::new(
                        axum::http::StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        "The request took too long.",
                    ),
                )),
            }
        })
    }
}
