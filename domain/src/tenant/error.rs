//! Why a tenant refused a command.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("the tenant already exists")]
    AlreadyExists,
    #[error("the tenant does not exist")]
    NotFound,
    #[error("the tenant has been deleted")]
    Deleted,
    #[error("the tenant has no such API key")]
    KeyNotFound,
    #[error("the API key id is already taken")]
    KeyExists,
    #[error("the tenant already holds {0} active API keys; revoke one first")]
    TooManyKeys(usize),
    #[error("a key's revocation cannot take effect before it is revoked")]
    RevocationInThePast,
    /// A key an earlier rotation (or a revocation) is retiring cannot
    /// rotate: whoever holds a leaked key during its overlap would get a
    /// key that outlives it.
    #[error("this API key is being retired (an earlier rotation or revocation ends it); rotate with the key that replaced it")]
    KeyRetiring,
}
