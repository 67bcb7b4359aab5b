use clap::Parser;

/// The sensor ingest allocates and frees a JSON tree, typed events and report keys for every event
/// of a batch; glibc's allocator took about 30% of the application's CPU there (`perf`). Set here,
/// in the binary, so that a program using the library chooses its own (the benchmarks that measure
/// the ingest set it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    heyboss::telemetry::init("info");
    let cli = heyboss::cli::Cli::parse();
    if let Err(e) = heyboss::cli::run(cli) {
        eprintln!("heyboss: {e}");
        std::process::exit(2);
    }
}
