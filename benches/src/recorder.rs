//! A `metrics` recorder that keeps the samples of `integrations_refresh_duration_seconds`
//! (one per refreshed account, recorded by the refresher around its claim → platform
//! call → store writes → lease release) and ignores every other metric.

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use std::sync::{Arc, Mutex};

/// The histogram whose samples are kept.
pub const REFRESH_DURATION: &str = "integrations_refresh_duration_seconds";

/// The samples, shared by the recorder and its reader.
#[derive(Debug, Clone, Default)]
pub struct Samples(Arc<Mutex<Vec<f64>>>);

impl Samples {
    /// Takes the samples recorded so far (seconds), leaving none.
    pub fn take(&self) -> Vec<f64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(value);
    }
}

/// The recorder.
#[derive(Debug, Default)]
pub struct LatencyRecorder {
    samples: Samples,
}

impl Recorder for LatencyRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        if key.name() == REFRESH_DURATION {
            Histogram::from_arc(Arc::new(self.samples.clone()))
        } else {
            Histogram::noop()
        }
    }
}

/// Installs the recorder as the process-wide one; `None` if another one is installed.
pub fn install() -> Option<Samples> {
    let recorder = LatencyRecorder::default();
    let samples = recorder.samples.clone();
    metrics::set_global_recorder(recorder).ok()?;
    Some(samples)
}
