use serde::{Deserialize, Serialize};

use super::decider::Role;
use crate::es::DomainEvent;
use crate::ops::describe::EventDescription;

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
    /// The event as the account's history says it.
    pub fn describe(&self) -> EventDescription {
        use AccountEvent as E;
        match self {
            E::UserRegistered {
                username,
                display_name,
                email,
                role,
            } => EventDescription::new(format!("Account created: {}", role.as_str()))
                .field("Username", username)
                .field("Name", display_name)
                .field("Email", email),
            E::RoleChanged { from, to } => EventDescription::new(format!(
                "Role changed from {} to {}",
                from.as_str(),
                to.as_str()
            )),
            E::PasswordChanged {
                reset_by_admin: true,
            } => EventDescription::new("Password reset by an admin"),
            E::PasswordChanged { .. } => EventDescription::new("Password changed"),
            E::UserDeactivated {} => EventDescription::new("Account deactivated"),
            E::UserReactivated {} => EventDescription::new("Account reactivated"),
            E::TimeZoneChosen {
                time_zone: Some(zone),
            } => EventDescription::new(format!("Time zone chosen: {zone}")),
            E::TimeZoneChosen { time_zone: None } => {
                EventDescription::new("Time zone set back to the campus time zone")
            }
            E::EmailChanged { email } if email.is_empty() => {
                EventDescription::new("Email address removed")
            }
            E::EmailChanged { email } => {
                EventDescription::new("Email address changed").field("Email", email)
            }
        }
    }

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
