//! Why a subscription refused a command.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("the subscription already exists")]
    AlreadyExists,
    /// A subscription of another tenant has this id (ids are global; the
    /// client chose one that is taken).
    #[error("the subscription id is taken")]
    IdTaken,
    /// Also returned when the command's tenant does not own the
    /// subscription: another tenant's subscription does not exist for you.
    #[error("the subscription does not exist")]
    NotFound,
    #[error("the subscription has been deleted")]
    Deleted,
    #[error("the previous secret's overlap must end at or after the rotation")]
    OverlapInThePast,
    #[error("a disable reason must not be empty")]
    EmptyReason,
    /// A rotation while this many secrets already sign deliveries (the
    /// current one and earlier ones whose overlap has not ended).
    #[error("{0} secrets already sign this subscription's deliveries (the current one and rotated-out ones whose overlap has not ended); rotate again once an overlap ends")]
    TooManySecrets(usize),
    /// An update based on a version that is no longer the latest: the
    /// subscription changed after the one the request was made from.
    #[error("the subscription changed after the version this change was based on")]
    ChangedMeanwhile,
}
