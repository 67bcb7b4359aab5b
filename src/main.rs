use clap::Parser;

fn main() {
    heyboss::telemetry::init("info");
    let cli = heyboss::cli::Cli::parse();
    if let Err(e) = heyboss::cli::run(cli) {
        eprintln!("heyboss: {e}");
        std::process::exit(2);
    }
}
