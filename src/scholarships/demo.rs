//! Demo data for the scholarships context (filled in below).
use crate::web::AppState;

pub fn seed(_state: &AppState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}
