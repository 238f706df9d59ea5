//! Logs and traces. Logs go to stderr (human or JSON), each line carrying the request id of
//! the request it belongs to (through the request's span). Traces are exported over OTLP/HTTP
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set: a span per request and
//! one per upstream attempt, with GenAI semantic-convention attributes.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use crate::logs::LogFormat;

static TRACES: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: recording span attributes is skipped otherwise, since the log
/// layer would re-serialise every recorded field for nothing.
pub(crate) fn traces_enabled() -> bool {
    TRACES.load(Ordering::Relaxed)
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes what is buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// Flushes the log writer's queue when dropped.
    _logs: Option<crate::logs::LogGuard>,
}

impl Telemetry {
    /// Installs the global subscriber: `SWITCHYARD_LOG` filters (default `info`).
    pub fn init(format: LogFormat) -> Telemetry {
        let filter =
            || EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
        // Log lines are written by one background thread (`logs`), so a request never waits
        // on stderr.
        let guard = crate::logs::start(format);
        // No ANSI colours: the writer escapes every control character so client text cannot
        // drive a terminal, which would garble colour codes too.
        let fmt = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(crate::logs::ChannelWriter);
        let fmt = match format {
            LogFormat::Human => fmt.boxed(),
            LogFormat::Json => fmt.json().boxed(),
        };
        let provider = otlp_provider();
        TRACES.store(provider.is_some(), Ordering::Relaxed);
        let otel = provider.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("switchyard"))
                .with_filter(EnvFilter::new("switchyard_server=info"))
        });
        tracing_subscriber::registry()
            .with(fmt.with_filter(filter()))
            .with(otel)
            .init();
        Telemetry {
            provider,
            _logs: guard,
        }
    }

    /// Exports every span still buffered.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                eprintln!("switchyard: trace export at shutdown failed: {e}");
            }
        }
    }
}

fn otlp_provider() -> Option<SdkTracerProvider> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .ok()
        .or_else(|| {
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(endpoint)
        .build();
    match exporter {
        Ok(exporter) => Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("switchyard")
                        .build(),
                )
                .build(),
        ),
        Err(e) => {
            eprintln!("switchyard: OTLP trace export disabled: {e}");
            None
        }
    }
}
