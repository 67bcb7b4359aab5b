use serde::{Deserialize, Serialize};

use super::decider::Role;
use crate::es::DomainEvent;

/// Facts about a user account. Secrets never appear here: password hashes live in `credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccountEvent {
    UserRegistered {
        username: String,
        display_name: String,
        email: String,
        role: Role,
    },
    RoleChanged {
        from: Role,
        to: Role,
    },
    PasswordChanged {
        /// True when an admin reset it, false when the user changed their own.
        reset_by_admin: bool,
    },
    UserDeactivated {},
    UserReactivated {},
    /// The zone the user reads times in (an IANA name); `None`: back to the campus default.
    TimeZoneChosen {
        time_zone: Option<String>,
    },
    /// The user changed the address their notifications are emailed to (empty: none).
    EmailChanged {
        email: String,
    },
}

impl DomainEvent for AccountEvent {}

impl AccountEvent {
    pub const TYPES: &'static [&'static str] = &[
        "UserRegistered",
        "RoleChanged",
        "PasswordChanged",
        "UserDeactivated",
        "UserReactivated",
        "TimeZoneChosen",
        "EmailChanged",
    ];
}
