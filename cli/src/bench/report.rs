//! The bench's results: a table on stdout, JSON for machines, an SVG plot for people.

use std::fmt::Write as _;

use super::measure::Sample;

/// Everything one `streampool bench` run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Device name.
    pub device: String,
    /// Workload name (model).
    pub model: String,
    /// Tokens per sequence (models) or words per buffer (demo).
    pub seq: usize,
    /// Precision.
    pub dtype: String,
    /// Per-thread-stream points, one per thread count.
    pub per_thread: Vec<Sample>,
    /// One batched call on one stream (the ceiling), if measured.
    pub batched: Option<Sample>,
    /// Batch size of the batched call.
    pub batch: usize,
}

impl Report {
    /// Throughput at `threads` relative to `threads` × the 1-thread throughput.
    pub fn efficiency(&self, sample: &Sample) -> Option<f64> {
        let one = self.per_thread.iter().find(|s| s.threads == 1)?;
        (one.items_per_s > 0.0)
            .then(|| sample.items_per_s / (one.items_per_s * sample.threads as f64))
    }

    /// Throughput relative to the batched ceiling.
    pub fn share_of_ceiling(&self, sample: &Sample) -> Option<f64> {
        let ceiling = self.batched.as_ref()?;
        (ceiling.items_per_s > 0.0).then(|| sample.items_per_s / ceiling.items_per_s)
    }

    /// A fixed-width table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "device: {}  model: {}  seq: {}  dtype: {}",
            self.device, self.model, self.seq, self.dtype
        );
        let _ = writeln!(
            out,
            "{:>8} {:>10} {:>12} {:>9} {:>9} {:>11} {:>10} {:>9} {:>9}",
            "threads",
            "requests",
            "items/s",
            "p50 ms",
            "p99 ms",
            "efficiency",
            "ceiling %",
            "dev MiB",
            "pool MiB"
        );
        let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.0}%", v * 100.0));
        for s in &self.per_thread {
            let _ = writeln!(
                out,
                "{:>8} {:>10} {:>12.1} {:>9.3} {:>9.3} {:>11} {:>10} {:>9} {:>9}",
                s.threads,
                s.requests,
                s.items_per_s,
                s.p50_ms,
                s.p99_ms,
                self.efficiency(s).map_or("-".into(), |e| format!("{e:.2}")),
                pct(self.share_of_ceiling(s)),
                s.device_mib.map_or("-".into(), |m| format!("{m:.0}")),
                s.pool_mib.map_or("-".into(), |m| format!("{m:.0}"))
            );
        }
        if let Some(b) = &self.batched {
            let _ = writeln!(
                out,
                "batched: one call of {} on {}: {:.1} items/s (p50 {:.3} ms per call)",
                self.batch,
                match b.threads {
                    1 => "one stream".to_owned(),
                    n => format!("each of {n} devices at once"),
                },
                b.items_per_s,
                b.p50_ms
            );
        }
        out
    }

    /// A line chart of throughput against threads, with the batched ceiling as a dashed line.
    pub fn svg(&self) -> String {
        let (w, h, left, right, top, bottom) = (720.0, 420.0, 80.0, 30.0, 50.0, 60.0);
        let points: Vec<(f64, f64)> =
            self.per_thread.iter().map(|s| (s.threads as f64, s.items_per_s)).collect();
        let ceiling = self.batched.as_ref().map(|b| b.items_per_s);
        let y_max = points.iter().map(|p| p.1).chain(ceiling).fold(1.0_f64, f64::max) * 1.1;
        let x_max = points.iter().map(|p| p.0).fold(1.0_f64, f64::max).max(2.0);
        let x = |t: f64| left + (t.log2() / x_max.log2()) * (w - left - right);
        let y = |v: f64| h - bottom - v / y_max * (h - top - bottom);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="13">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{} on {} ({}, seq {}): throughput vs threads</text>"#,
            w / 2.0,
            self.model,
            escape(&self.device),
            self.dtype,
            self.seq
        );
        for i in 0..=5 {
            let v = y_max * f64::from(i) / 5.0;
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
                w - right,
                left - 8.0,
                y(v) + 4.0,
                y = y(v)
            );
        }
        for p in &points {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                x(p.0),
                h - bottom + 20.0,
                p.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">threads (each on its own stream)</text><text x="20" y="{}" transform="rotate(-90 20 {})" text-anchor="middle">items / s</text>"#,
            w / 2.0,
            h - 15.0,
            h / 2.0,
            h / 2.0
        );
        if let Some(c) = ceiling {
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" x2="{}" y1="{yc:.1}" y2="{yc:.1}" stroke="#c33" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" text-anchor="end" fill="#c33">batched ceiling ({} per call)</text>"##,
                w - right,
                w - right,
                y(c) - 6.0,
                self.batch,
                yc = y(c)
            );
        }
        if let Some(one) = points.first().filter(|p| p.0 == 1.0) {
            // Perfect scaling from the 1-thread point, for comparison.
            let ideal: Vec<String> = points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.0), y((one.1 * p.0).min(y_max))))
                .collect();
            let _ = writeln!(
                svg,
                r##"<polyline points="{}" fill="none" stroke="#999" stroke-dasharray="2 3"/>"##,
                ideal.join(" ")
            );
        }
        let line: Vec<String> =
            points.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))).collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#1f6feb" stroke-width="2.5"/>"##,
            line.join(" ")
        );
        for p in &points {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#1f6feb"/>"##,
                x(p.0),
                y(p.1)
            );
        }
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" fill="#1f6feb">measured</text><text x="{}" y="{}" fill="#999">perfect scaling</text>"##,
            left + 10.0,
            top + 10.0,
            left + 90.0,
            top + 10.0
        );
        svg.push_str("</svg>\n");
        svg
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
