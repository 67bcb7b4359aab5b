//! The `heyboss` command line (the contract in DESIGN.md section 6). Every command that changes
//! data records events with the CLI as actor.

use std::io::Read;

use clap::{Parser, Subcommand};

use crate::accounts::{service, NewAccount};
use crate::db::{self, Database};
use crate::es::shadow;
use crate::es::{Actor, Metadata};
use crate::startup::{self, Application};
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
    /// Rebuild or verify projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
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
        Command::Serve { bind, demo } => {
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
        Command::Migrate => {
            let mut conn = db::pool(&database.url, 1)?.get()?;
            let applied = db::migrate(&mut conn)?;
            println!("{applied} migrations applied");
            Ok(())
        }
        Command::Users {
            command:
                UsersCommand::Create {
                    username,
                    role,
                    password_stdin,
                    name,
                    email,
                },
        } => {
            if !password_stdin {
                return Err("pass --password-stdin and the password on standard input".into());
            }
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.lines().next().unwrap_or("").to_owned();
            let account = NewAccount::parse(&username, &name, &email, &role, &password)?;
            let pool = db::pool(&database.url, 1)?;
            let mut conn = pool.get()?;
            db::migrate(&mut conn)?;
            let store = startup::event_store();
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
        Command::Projections { command } => {
            let pool = db::pool(&database.url, 1)?;
            let mut conn = pool.get()?;
            db::migrate(&mut conn)?;
            let store = startup::event_store();
            let projections = store.projections();
            let name = match &command {
                ProjectionsCommand::Rebuild { name } | ProjectionsCommand::Verify { name } => name,
            };
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
                match &command {
                    ProjectionsCommand::Rebuild { .. } => {
                        let r = shadow::rebuild(&mut conn, p.as_ref(), catch_up, 5_000, |_| {})?;
                        println!(
                            "{}: {} events replayed into a shadow and swapped in, {} rows, {:.2} s",
                            p.name(),
                            r.events,
                            r.rows,
                            started.elapsed().as_secs_f64()
                        );
                    }
                    ProjectionsCommand::Verify { .. } => {
                        let diffs = shadow::verify(&mut conn, p.as_ref(), catch_up, 5_000, |_| {})?;
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
                }
            }
            if differing > 0 {
                // The contract: exit status 1 when verify finds a difference.
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
