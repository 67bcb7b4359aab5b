use serde::{Deserialize, Serialize};

use super::events::AccountEvent;
use crate::es::Decider;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Student,
    Staff,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Student, Role::Staff, Role::Analyst, Role::Admin];

    pub fn parse(s: &str) -> Result<Role, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "student" => Ok(Role::Student),
            "staff" => Ok(Role::Staff),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: choose student, staff, analyst or admin"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Staff => "staff",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default)]
pub struct AccountState {
    pub registered: bool,
    pub role: Option<Role>,
    pub active: bool,
    pub time_zone: Option<String>,
    pub email: String,
}

#[derive(Debug, Clone)]
pub enum AccountCommand {
    Register {
        username: String,
        display_name: String,
        email: String,
        role: Role,
    },
    ChangeRole {
        role: Role,
    },
    RecordPasswordChange {
        reset_by_admin: bool,
    },
    Deactivate,
    Reactivate,
    /// `None`: the campus default.
    ChooseTimeZone {
        zone: Option<chrono_tz::Tz>,
    },
    /// A parsed address (`service::parse_email`), or empty for none.
    ChangeEmail {
        email: String,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountRejection {
    #[error("this account already exists")]
    AlreadyRegistered,
    #[error("there is no such account")]
    Unknown,
    #[error("the account already has the role {0}")]
    SameRole(Role),
    #[error("the account is already deactivated")]
    AlreadyInactive,
    #[error("the account is already active")]
    AlreadyActive,
    #[error("the account is deactivated: reactivate it first")]
    Inactive,
    #[error("your times are already shown in {0}")]
    SameTimeZone(String),
    #[error("that is already the account's email address")]
    SameEmail,
}

pub struct Account;

impl Decider for Account {
    const STREAM_TYPE: &'static str = "user";
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Rejection = AccountRejection;

    fn decide(
        state: &AccountState,
        command: &AccountCommand,
    ) -> Result<Vec<AccountEvent>, AccountRejection> {
        use AccountCommand as C;
        use AccountRejection as R;
        match command {
            C::Register {
                username,
                display_name,
                email,
                role,
            } => {
                if state.registered {
                    return Err(R::AlreadyRegistered);
                }
                Ok(vec![AccountEvent::UserRegistered {
                    username: username.clone(),
                    display_name: display_name.clone(),
                    email: email.clone(),
                    role: *role,
                }])
            }
            _ if !state.registered => Err(R::Unknown),
            C::ChangeRole { role } => {
                let from = state.role.expect("registered accounts have a role");
                if from == *role {
                    return Err(R::SameRole(*role));
                }
                Ok(vec![AccountEvent::RoleChanged { from, to: *role }])
            }
            C::RecordPasswordChange { .. } if !state.active => Err(R::Inactive),
            C::RecordPasswordChange { reset_by_admin } => Ok(vec![AccountEvent::PasswordChanged {
                reset_by_admin: *reset_by_admin,
            }]),
            C::Deactivate if !state.active => Err(R::AlreadyInactive),
            C::Deactivate => Ok(vec![AccountEvent::UserDeactivated {}]),
            C::Reactivate if state.active => Err(R::AlreadyActive),
            C::Reactivate => Ok(vec![AccountEvent::UserReactivated {}]),
            C::ChooseTimeZone { zone } => {
                let time_zone = zone.map(|z| z.name().to_owned());
                if time_zone == state.time_zone {
                    return Err(R::SameTimeZone(
                        time_zone.unwrap_or_else(|| "the campus time zone".into()),
                    ));
                }
                Ok(vec![AccountEvent::TimeZoneChosen { time_zone }])
            }
            C::ChangeEmail { .. } if !state.active => Err(R::Inactive),
            C::ChangeEmail { email } if *email == state.email => Err(R::SameEmail),
            C::ChangeEmail { email } => Ok(vec![AccountEvent::EmailChanged {
                email: email.clone(),
            }]),
        }
    }

    fn evolve(mut state: AccountState, event: &AccountEvent) -> AccountState {
        match event {
            AccountEvent::UserRegistered { role, email, .. } => {
                state.email = email.clone();
                state.registered = true;
                state.active = true;
                state.role = Some(*role);
            }
            AccountEvent::RoleChanged { to, .. } => state.role = Some(*to),
            AccountEvent::PasswordChanged { .. } => {}
            AccountEvent::UserDeactivated {} => state.active = false,
            AccountEvent::UserReactivated {} => state.active = true,
            AccountEvent::TimeZoneChosen { time_zone } => state.time_zone = time_zone.clone(),
            AccountEvent::EmailChanged { email } => state.email = email.clone(),
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::decider::given;
    use AccountEvent as E;

    fn registered() -> E {
        E::UserRegistered {
            username: "ada".into(),
            display_name: "Ada".into(),
            email: "ada@example.edu".into(),
            role: Role::Student,
        }
    }

    #[test]
    fn registering_a_new_account_records_it() {
        given::<Account>(&[])
            .when(AccountCommand::Register {
                username: "ada".into(),
                display_name: "Ada".into(),
                email: "ada@example.edu".into(),
                role: Role::Student,
            })
            .then(&[registered()]);
    }

    #[test]
    fn an_account_is_registered_once() {
        given::<Account>(&[registered()])
            .when(AccountCommand::Register {
                username: "ada".into(),
                display_name: "Ada".into(),
                email: "ada@example.edu".into(),
                role: Role::Admin,
            })
            .then_rejected("already exists");
    }

    #[test]
    fn a_role_change_records_from_and_to() {
        given::<Account>(&[registered()])
            .when(AccountCommand::ChangeRole { role: Role::Staff })
            .then(&[E::RoleChanged {
                from: Role::Student,
                to: Role::Staff,
            }]);
        given::<Account>(&[registered()])
            .when(AccountCommand::ChangeRole {
                role: Role::Student,
            })
            .then_rejected("already has the role student");
    }

    #[test]
    fn an_email_change_records_a_different_address() {
        let change = |email: &str| AccountCommand::ChangeEmail {
            email: email.into(),
        };
        given::<Account>(&[registered()])
            .when(change("ada@uni.example"))
            .then(&[E::EmailChanged {
                email: "ada@uni.example".into(),
            }]);
        given::<Account>(&[
            registered(),
            E::EmailChanged {
                email: "ada@uni.example".into(),
            },
        ])
        .when(change("ada@uni.example"))
        .then_rejected("already the account's email address");
        given::<Account>(&[registered(), E::UserDeactivated {}])
            .when(change(""))
            .then_rejected("deactivated");
    }

    #[test]
    fn commands_on_an_unknown_account_are_rejected() {
        given::<Account>(&[])
            .when(AccountCommand::Deactivate)
            .then_rejected("no such account");
    }

    #[test]
    fn deactivation_and_reactivation_alternate() {
        given::<Account>(&[registered()])
            .when(AccountCommand::Deactivate)
            .then(&[E::UserDeactivated {}]);
        given::<Account>(&[registered(), E::UserDeactivated {}])
            .when(AccountCommand::Deactivate)
            .then_rejected("already deactivated");
        given::<Account>(&[registered(), E::UserDeactivated {}])
            .when(AccountCommand::RecordPasswordChange {
                reset_by_admin: true,
            })
            .then_rejected("reactivate it first");
        given::<Account>(&[registered(), E::UserDeactivated {}])
            .when(AccountCommand::Reactivate)
            .then(&[E::UserReactivated {}]);
        given::<Account>(&[registered()])
            .when(AccountCommand::Reactivate)
            .then_rejected("already active");
    }

    #[test]
    fn a_time_zone_is_chosen_and_given_back() {
        let ny = Some(chrono_tz::America::New_York);
        given::<Account>(&[registered()])
            .when(AccountCommand::ChooseTimeZone { zone: ny })
            .then(&[E::TimeZoneChosen {
                time_zone: Some("America/New_York".into()),
            }]);
        let chosen = E::TimeZoneChosen {
            time_zone: Some("America/New_York".into()),
        };
        given::<Account>(&[registered(), chosen.clone()])
            .when(AccountCommand::ChooseTimeZone { zone: ny })
            .then_rejected("already shown in America/New_York");
        given::<Account>(&[registered(), chosen])
            .when(AccountCommand::ChooseTimeZone { zone: None })
            .then(&[E::TimeZoneChosen { time_zone: None }]);
    }
}
