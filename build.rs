//! `embed_migrations!` reads the migration files when the crate is compiled, but Cargo does not know
//! the crate depends on them: without this, a binary built before an SQL edit keeps the old SQL
//! (and a test template named by the files' hash would be made from it).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
