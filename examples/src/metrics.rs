//! The library's metrics in the Prometheus text format, for the example binaries.
//!
//! `integrations-core` records through the [`metrics`] facade and leaves the choice of a
//! recorder to the host. The examples install `metrics-exporter-prometheus`'s recorder
//! (without its own HTTP listener) and serve its rendering on `GET /metrics`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use integrations_core::Integrations;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The content type of [`PrometheusHandle::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's Prometheus recorder, installed as the global `metrics` recorder on the
/// first call; later calls return the same handle. `None` when another global recorder
/// was installed first (the metrics go there instead).
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .clone()
}

/// The `GET /metrics` response: the handle's rendering with its content type.
pub fn response(handle: &PrometheusHandle) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response()
}

/// The example server's `GET /metrics` handler: [`response`] after counting the
/// connection gauges ([`Integrations::record_connection_gauges`]), so a scrape sees the
/// connections as they are now.
pub fn route(integrations: Integrations, handle: PrometheusHandle) -> MethodRouter {
    axum::routing::get(move || async move {
        if let Err(e) = integrations.record_connection_gauges().await {
            tracing::warn!(error = %e, "could not count connections for /metrics");
        }
        response(&handle)
    })
}
