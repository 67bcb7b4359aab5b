use tracing_subscriber::EnvFilter;

/// Structured logs on stderr; `RUST_LOG` filters (default `info`). Every line inside a request
/// carries its `request_id` through the request span.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
