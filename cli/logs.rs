//! How the service tells what it does: log lines on stderr (text or JSON,
//! filtered by `DOCCONV_LOG`), spans exported to an OpenTelemetry
//! collector over OTLP when `--otlp-endpoint` is given, and panics as one
//! error line.

use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(clap::Args)]
pub struct Logs {
    /// How the service logs to stderr: text, or json (one object a line,
    /// with the span fields: job id and trace id)
    #[arg(long, global = true, env = "DOCCONV_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// An OpenTelemetry collector's OTLP/gRPC address (e.g.
    /// http://127.0.0.1:4317) to export spans to: each web request, Submit
    /// and job, linked in the caller's trace [default: none]
    #[arg(long, global = true, env = "DOCCONV_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

/// Flushes the spans not yet exported when the service stops.
pub struct Exporting(Option<SdkTracerProvider>);

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("docconv: exporting the last spans: {e}");
        }
    }
}

impl Logs {
    /// Starts logging for `service` (its name in exported spans). Call it
    /// inside the runtime: the exporter's connection lives there.
    pub fn start(self, service: &'static str) -> Result<Exporting, String> {
        let filter = tracing_subscriber::EnvFilter::try_from_env("DOCCONV_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let lines = match self.log_format.as_str() {
            "json" => lines.json().with_current_span(true).with_span_list(false).boxed(),
            _ => lines.boxed(),
        };
        let provider = self.otlp_endpoint.map(|endpoint| exporter(&endpoint, service)).transpose()?;
        let spans = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("docconv")));
        tracing_subscriber::registry().with(lines).with(spans).with(filter).init();
        log_panics();
        Ok(Exporting(provider))
    }
}

fn exporter(endpoint: &str, service: &'static str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("--otlp-endpoint {endpoint}: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// A panic in a task is caught where it matters (a job fails, a
/// connection closes), but the default hook prints it as bare text,
/// backtrace and all, outside the logs: one error line instead, with
/// where it happened.
fn log_panics() {
    std::panic::set_hook(Box::new(|panic| {
        let message = panic
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let location = panic.location().map(ToString::to_string).unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(thread = thread.name().unwrap_or("unnamed"), %location, "panic: {message}");
    }));
}
