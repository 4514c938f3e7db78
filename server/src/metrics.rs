//! `GET /metrics`: Prometheus text format (prometheus-client). Counters and histograms are
//! atomics inside prometheus-client's families; the label sets of `requests` and `duration` are
//! few (route × status) and each family's map is read-locked per update after first use. The
//! engine's counters (cancelled texts, each device's requests and batches) are fed in at each
//! scrape from its snapshots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use streampool_engine::{DeviceStats, EngineStats};

/// A route and the status answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatus {
    /// The route's pattern (`/v1/embeddings`), or `other` for paths that match none.
    pub route: String,
    /// The HTTP status code.
    pub status: u16,
}

/// A route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    /// The route's pattern.
    pub route: String,
}

/// A device of the engine.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabel {
    /// Its label (`cuda:1`).
    pub device: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    duration: Family<Route, Histogram>,
    batch_size: Histogram,
    batch_tokens: Histogram,
    tokens: Counter,
    inputs: Counter,
    queue_depth: Gauge,
    streams_in_use: Gauge,
    cancelled: Counter,
    cancelled_seen: AtomicU64,
    connections_refused: Counter,
    device_requests: Family<DeviceLabel, Counter>,
    device_batches: Family<DeviceLabel, Counter>,
    device_running: Family<DeviceLabel, Gauge>,
    device_healthy: Family<DeviceLabel, Gauge>,
    /// Each device's requests and batches as of the last scrape (the counters get the growth).
    device_seen: Mutex<HashMap<String, (u64, u64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered under the `streampool` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("streampool");
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let duration = Family::<Route, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its answer, by route",
            duration.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register("batch_size", "Texts per batch the engine ran", batch_size.clone());
        let batch_tokens = Histogram::new(exponential_buckets(16.0, 2.0, 14));
        registry.register(
            "batch_padded_tokens",
            "Tokens per batch the engine ran, padding included (rows x longest)",
            batch_tokens.clone(),
        );
        let tokens = Counter::default();
        registry.register("tokens", "Tokens embedded (padding excluded)", tokens.clone());
        let inputs = Counter::default();
        registry.register("embeddings", "Texts embedded", inputs.clone());
        let queue_depth = Gauge::default();
        registry.register("queue_depth", "Texts queued for the engine", queue_depth.clone());
        let streams_in_use = Gauge::default();
        registry.register(
            "streams_in_use",
            "Engine workers running a batch on their stream now",
            streams_in_use.clone(),
        );
        let cancelled = Counter::default();
        registry.register(
            "cancelled",
            "Texts dropped unrun because their request had gone (client closed, request failed)",
            cancelled.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at once because --max-connections were open",
            connections_refused.clone(),
        );
        let device_requests = Family::<DeviceLabel, Counter>::default();
        registry.register(
            "device_requests",
            "Texts each device answered (embeddings and errors)",
            device_requests.clone(),
        );
        let device_batches = Family::<DeviceLabel, Counter>::default();
        registry.register("device_batches", "Batches each device ran", device_batches.clone());
        let device_running = Family::<DeviceLabel, Gauge>::default();
        registry.register("device_running", "Batches each device runs now", device_running.clone());
        let device_healthy = Family::<DeviceLabel, Gauge>::default();
        registry.register(
            "device_healthy",
            "1 while a device takes batches, 0 once it has failed",
            device_healthy.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            batch_size,
            batch_tokens,
            tokens,
            inputs,
            queue_depth,
            streams_in_use,
            cancelled,
            cancelled_seen: AtomicU64::new(0),
            connections_refused,
            device_requests,
            device_batches,
            device_running,
            device_healthy,
            device_seen: Mutex::default(),
        }
    }

    /// A request answered.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        let route = route.to_owned();
        self.requests.get_or_create(&RouteStatus { route: route.clone(), status }).inc();
        self.duration.get_or_create(&Route { route }).observe(seconds);
    }

    /// A batch run: its rows, padded tokens and real tokens.
    pub fn batch(&self, rows: usize, padded: usize, tokens: usize) {
        self.batch_size.observe(rows as f64);
        self.batch_tokens.observe(padded as f64);
        self.tokens.inc_by(tokens as u64);
        self.inputs.inc_by(rows as u64);
    }

    /// A connection refused at the limit.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// The text format, with the engine's gauges as of now: `stats` summed over its devices,
    /// `queue` texts queued, and each device's share.
    pub fn render(&self, stats: EngineStats, queue: usize, devices: &[DeviceStats]) -> String {
        self.queue_depth.set(queue as i64);
        self.streams_in_use.set(stats.running as i64);
        // The largest value seen, not the last: of two scrapes at once, the one with the older
        // snapshot may come second, and must not count the difference again later.
        let seen = self.cancelled_seen.fetch_max(stats.cancelled, Ordering::Relaxed);
        self.cancelled.inc_by(stats.cancelled.saturating_sub(seen));
        self.feed_devices(devices);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Each device's counters grown by what its snapshot adds to the last one seen, its gauges
    /// set.
    fn feed_devices(&self, devices: &[DeviceStats]) {
        // A poisoned lock's map is still right: each entry is written whole.
        let mut seen = self.device_seen.lock().unwrap_or_else(|e| e.into_inner());
        for d in devices {
            let label = DeviceLabel { device: d.device.clone() };
            let (requests, batches) = seen.entry(d.device.clone()).or_default();
            self.device_requests
                .get_or_create(&label)
                .inc_by(d.stats.requests.saturating_sub(*requests));
            self.device_batches
                .get_or_create(&label)
                .inc_by(d.stats.batches.saturating_sub(*batches));
            *requests = (*requests).max(d.stats.requests);
            *batches = (*batches).max(d.stats.batches);
            self.device_running.get_or_create(&label).set(d.stats.running as i64);
            self.device_healthy.get_or_create(&label).set(i64::from(d.healthy()));
        }
    }
}
