use super::event::DomainEvent;

/// A functional decider: two pure functions over one aggregate's stream.
/// No I/O, no clock: what a decision needs from outside comes in the command.
pub trait Decider {
    /// The stream type under which this aggregate's events are stored.
    const STREAM_TYPE: &'static str;
    /// Kept between commands by [`crate::EventStore::execute`], hence shareable across threads.
    type State: Default + Clone + std::fmt::Debug + Send + Sync + 'static;
    type Command: std::fmt::Debug;
    type Event: DomainEvent + PartialEq;
    type Rejection: std::error::Error + Send + Sync + 'static;

    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Rejection>;
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), Self::evolve)
    }
}

/// Given/when/then for deciders, without a database.
///
/// ```ignore
/// given::<Enrollment>(&[Inquired {..}]).when(StartApplication {..}).then(&[ApplicationStarted {..}]);
/// ```
pub fn given<D: Decider>(events: &[D::Event]) -> Given<D> {
    Given {
        state: D::fold(events),
    }
}

pub struct Given<D: Decider> {
    state: D::State,
}

impl<D: Decider> Given<D> {
    pub fn when(self, command: D::Command) -> Then<D> {
        let result = D::decide(&self.state, &command);
        Then { command, result }
    }
}

pub struct Then<D: Decider> {
    command: D::Command,
    result: Result<Vec<D::Event>, D::Rejection>,
}

impl<D: Decider> Then<D> {
    #[track_caller]
    pub fn then(self, expected: &[D::Event]) {
        match self.result {
            Ok(events) => assert_eq!(events, expected, "events decided for {:?}", self.command),
            Err(rejection) => panic!(
                "expected events for {:?}, got rejection: {rejection}",
                self.command
            ),
        }
    }

    /// The command is rejected and the message contains `fragment`.
    #[track_caller]
    pub fn then_rejected(self, fragment: &str) {
        match self.result {
            Ok(events) => panic!(
                "expected a rejection of {:?}, got events {events:?}",
                self.command
            ),
            Err(rejection) => {
                let message = rejection.to_string();
                assert!(
                    message.contains(fragment),
                    "rejection {message:?} should mention {fragment:?}"
                );
            }
        }
    }

    pub fn result(self) -> Result<Vec<D::Event>, D::Rejection> {
        self.result
    }
}
