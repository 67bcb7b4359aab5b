//! The `heyboss` command line (the contract in DESIGN.md section 6). Every command that changes
//! data records events with the CLI as actor.

use std::io::Read;

use clap::{Parser, Subcommand};

use crate::accounts::{service, NewAccount};
use crate::db::{self, Database};
use crate::es::shadow;
use crate::es::{Actor, CommandContext, EventStore, Metadata};
use crate::startup::{self, Application};
use crate::threats;
use crate::web::Settings;

#[derive(Parser)]
#[command(
    name = "heyboss",
    version,
    about = "Event-sourced enrollment, scholarships and threat reports"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the web application.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080, or HEYBOSS_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Add demo accounts and data (idempotent).
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage sensors (machine clients of the sensor API).
    Sensors {
        #[command(subcommand)]
        command: SensorsCommand,
    },
    /// Manage threat signatures.
    Signatures {
        #[command(subcommand)]
        command: SignaturesCommand,
    },
    /// Grant or revoke an analyst's visibility groups.
    Clearances {
        #[command(subcommand)]
        command: ClearancesCommand,
    },
    /// Act as a sensor: post a generated stream of sessions, files and scores through the HTTP API.
    Simulate {
        /// The running app (default http://127.0.0.1:8080).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// A sensor token; without one, a sensor named "simulator" is created.
        #[arg(long)]
        token: Option<String>,
        /// How many events to post.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Events per batch.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Events per second (0: as fast as the server takes them).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Distinct file hashes to draw from.
        #[arg(long, default_value_t = 5_000)]
        hashes: u64,
        /// Seed of the generator (runs with the same seed repeat, so vary it).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Rebuild or verify projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Bring a legacy system's records in as history.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Export the event log as NDJSON, import such an export into an empty store, or manage
    /// the log's partitions.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Legacy enrollment records (CSV: legacy_id, student_number, name, email, term, status,
    /// updated_at); exit status 1 when a row could not be imported.
    Enrollments {
        file: String,
        /// Report what would be imported and every row that cannot be, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Legacy scholarship awards (CSV: legacy_id, student_number, name, email, fund_name, term,
    /// amount, status, updated_at; optional fund_id, fund_budget); exit status 1 when a row could
    /// not be imported.
    Awards {
        file: String,
        /// Report what would be imported and every row that cannot be, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Write the log to standard output, one JSON event a line, in position order.
    Export {
        /// Only the events after this position (for an export that continues an earlier one).
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Load an export (a file, or - for standard input) into a store with no events, and run
    /// every projection on it.
    Import { file: String },
    /// Make the log's partitions one partition ahead of its newest position, and list them.
    Partitions,
    /// Detach partition N from the log to archive it (its table stays, for pg_dump).
    Detach { number: i32 },
    /// Attach a detached partition N again.
    Attach { number: i32 },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create an account; the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        password_stdin: bool,
        /// Display name (default: the username).
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
    },
}

#[derive(Subcommand)]
pub enum SensorsCommand {
    /// Register a sensor and print its API token (alone on the last line, shown once).
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum SignaturesCommand {
    /// Create a signature, or revise its group and default score.
    Set {
        #[arg(long)]
        name: String,
        #[arg(long)]
        group: String,
        #[arg(long)]
        score: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum ClearancesCommand {
    /// Let an analyst see the hits of a visibility group.
    Grant {
        #[arg(long)]
        username: String,
        #[arg(long)]
        group: String,
    },
    /// Take a visibility group away from an analyst.
    Revoke {
        #[arg(long)]
        username: String,
        #[arg(long)]
        group: String,
    },
}

#[derive(Subcommand)]
pub enum ProjectionsCommand {
    /// Replay the whole log into shadow tables and swap them in (one projection, or all).
    Rebuild { name: Option<String> },
    /// Rebuild into shadow tables and print every row that differs from the live tables
    /// (exit status 1 when any does).
    Verify { name: Option<String> },
}

pub type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub fn run(cli: Cli) -> CliResult {
    let database = Database::discover()?;
    let result = dispatch(cli, &database);
    drop(database);
    result
}

fn dispatch(cli: Cli, database: &Database) -> CliResult {
    match cli.command {
        Command::Serve { bind, demo } => serve(database, bind, demo),
        Command::Migrate => {
            let mut conn = db::pool(&database.url, 1)?.get()?;
            let applied = db::migrate(&mut conn)?;
            println!("{applied} migrations applied");
            Ok(())
        }
        Command::Users { command } => users(database, command),
        Command::Sensors {
            command: SensorsCommand::Create { name },
        } => create_sensor(database, &name),
        Command::Signatures {
            command: SignaturesCommand::Set { name, group, score },
        } => set_signature(database, &name, &group, score),
        Command::Clearances { command } => clearances(database, command),
        Command::Simulate {
            url,
            token,
            events,
            batch,
            rate,
            hashes,
            seed,
        } => simulate(database, &url, token, events, batch, rate, hashes, seed),
        Command::Projections { command } => projections(database, command),
        Command::Events { command } => crate::ops::event_log::run(database, command),
        Command::Import { command } => {
            if !crate::import::run(database, command)? {
                // Some rows were not imported (listed above).
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn serve(database: &Database, bind: Option<String>, demo: bool) -> CliResult {
    Settings::check()?;
    let mut settings = Settings::from_env(database.url.clone());
    if let Some(bind) = bind {
        settings.bind = bind;
    }
    let app = Application::build(settings)?;
    if demo {
        crate::demo::seed(app.state())?;
    }
    tracing::info!(
        port = app.port(),
        "listening on http://{}",
        app.state().settings.bind
    );
    actix_web::rt::System::new().block_on(app.run_until_stopped())?;
    Ok(())
}

fn users(database: &Database, command: UsersCommand) -> CliResult {
    let UsersCommand::Create {
        username,
        role,
        password_stdin,
        name,
        email,
    } = command;
    if !password_stdin {
        return Err("pass --password-stdin and the password on standard input".into());
    }
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = password.lines().next().unwrap_or("").to_owned();
    let account = NewAccount::parse(&username, &name, &email, &role, &password)?;
    let (mut conn, store) = cli_connection(database)?;
    let id = service::register(
        &mut conn,
        &store,
        Metadata::new(Actor::Cli),
        account,
        |_, _| Ok(()),
    )?;
    println!("created {role} {username} ({id})");
    Ok(())
}

fn create_sensor(database: &Database, name: &str) -> CliResult {
    let (mut conn, store) = cli_connection(database)?;
    let (id, token) = threats::service::create_sensor(&mut conn, &store, &cli_context(), name)?;
    println!(
        "sensor {} registered ({id}); its API token (shown once):",
        name.trim()
    );
    println!("{token}");
    Ok(())
}

fn set_signature(database: &Database, name: &str, group: &str, score: Option<i64>) -> CliResult {
    let (mut conn, store) = cli_connection(database)?;
    let outcome = threats::service::set_signature(
        &mut conn,
        &store,
        &cli_context(),
        name,
        group,
        score,
        None,
    )?;
    match outcome.event_types.first() {
        Some(t) => println!("{t}: {} (version {})", name.trim(), outcome.stream_version),
        None => println!("signature {} unchanged", name.trim()),
    }
    Ok(())
}

fn clearances(database: &Database, command: ClearancesCommand) -> CliResult {
    let (username, group, grant) = match command {
        ClearancesCommand::Grant { username, group } => (username, group, true),
        ClearancesCommand::Revoke { username, group } => (username, group, false),
    };
    let (mut conn, store) = cli_connection(database)?;
    threats::service::change_clearance(
        &mut conn,
        &store,
        &cli_context(),
        &username,
        &group,
        grant,
    )?;
    let what = if grant { "granted to" } else { "revoked from" };
    println!("clearance {} {what} {}", group.trim(), username.trim());
    Ok(())
}

#[allow(clippy::too_many_arguments)] // the command's own flags, one by one
fn simulate(
    database: &Database,
    url: &str,
    token: Option<String>,
    events: u64,
    batch: usize,
    rate: u64,
    hashes: u64,
    seed: Option<u64>,
) -> CliResult {
    if batch == 0 || batch > threats::ingest::MAX_BATCH {
        return Err(format!("--batch is 1 to {}", threats::ingest::MAX_BATCH).into());
    }
    let token = match token {
        Some(t) => t,
        None => {
            let (mut conn, store) = cli_connection(database)?;
            threats::service::create_sensor(&mut conn, &store, &cli_context(), "simulator")?.1
        }
    };
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let names = threats::simulate::DEMO_SIGNATURES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let mut generator = threats::simulate::Generator::new(seed, names, hashes);
    let stats = threats::simulate::run(url, &token, &mut generator, events, batch, rate)?;
    println!(
        "posted {} events in {} batches in {:.2} s ({:.0} events/s)",
        stats.events,
        stats.batches,
        stats.seconds,
        stats.events as f64 / stats.seconds.max(1e-9)
    );
    Ok(())
}

fn projections(database: &Database, command: ProjectionsCommand) -> CliResult {
    // The second connection builds indexes alongside the first at the end of a replay.
    let pool = db::pool(&database.url, 2)?;
    let mut conn = pool.get()?;
    let mut helper = pool.get()?;
    db::migrate(&mut conn)?;
    let store = startup::event_store();
    let projections = store.projections();
    let (ProjectionsCommand::Rebuild { name } | ProjectionsCommand::Verify { name }) = &command;
    let selected: Vec<_> = match name {
        Some(n) => vec![projections
            .get(n)
            .ok_or_else(|| format!("no projection named {n:?}"))?
            .clone()],
        None => projections.iter().cloned().collect(),
    };
    let mut differing = 0;
    for p in selected {
        let started = std::time::Instant::now();
        let catch_up = projections.is_catch_up(p.name());
        let helper = Some(&mut *helper);
        if let ProjectionsCommand::Rebuild { .. } = command {
            let r = shadow::rebuild(&mut conn, helper, p.as_ref(), catch_up, 5_000, |_| {})?;
            println!(
                "{}: {} events replayed into a shadow and swapped in, {} rows, {:.2} s",
                p.name(),
                r.events,
                r.rows,
                started.elapsed().as_secs_f64()
            );
            continue;
        }
        let diffs = shadow::verify(&mut conn, helper, p.as_ref(), catch_up, 5_000, |_| {})?;
        if diffs.is_empty() {
            println!("{}: equal to a rebuild", p.name());
        } else {
            differing += 1;
            println!("{}: {} rows differ from a rebuild", p.name(), diffs.len());
            for d in diffs {
                println!("  {d}");
            }
        }
    }
    if differing > 0 {
        // The contract: exit status 1 when verify finds a difference.
        std::process::exit(1);
    }
    Ok(())
}

/// What the CLI's commands carry: the CLI as actor.
fn cli_context() -> CommandContext {
    CommandContext::new(Metadata::new(Actor::Cli))
}

/// A migrated connection and the event store, for commands that change data.
fn cli_connection(
    database: &Database,
) -> Result<(db::PgPooled, EventStore), Box<dyn std::error::Error + Send + Sync>> {
    let pool = db::pool(&database.url, 1)?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    Ok((conn, startup::event_store()))
}
