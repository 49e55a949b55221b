//! The application's error: what went wrong, in terms a caller can act on.
//! Storage errors never cross this boundary as themselves.

use hookline_domain::ValidationError;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input broke one or more rules; each names its field.
    #[error("{}", join(.0))]
    Validation(Vec<ValidationError>),
    /// The request is malformed in a way not tied to one field.
    #[error("{0}")]
    BadRequest(String),
    /// No such resource for this tenant.
    #[error("{resource} '{id}' was not found")]
    NotFound { resource: &'static str, id: String },
    /// Nothing to act on, with a specific code (e.g. `no_subscriptions`).
    #[error("{detail}")]
    NothingFound { code: &'static str, detail: String },
    /// The request conflicts with the current state.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// Hookline is behind on its own work (the delivery backlog is at its
    /// bound): nothing was done; retrying shortly will work.
    #[error("{detail}")]
    Busy { code: &'static str, detail: String },
    /// A dependency (the database) is unreachable; retrying later may work.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A provider Hookline called for the tenant (Siigo) refused the
    /// request (`unavailable: false`: the credentials or what was asked)
    /// or could not answer; `detail` says what it answered.
    #[error("{detail}")]
    Upstream {
        unavailable: bool,
        code: &'static str,
        detail: String,
    },
    /// A bug or an unexpected state; details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

fn join(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl AppError {
    pub fn not_found(resource: &'static str, id: impl fmt::Display) -> Self {
        Self::NotFound {
            resource,
            id: id.to_string(),
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    pub fn invalid(error: ValidationError) -> Self {
        Self::Validation(vec![error])
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        Self::invalid(e)
    }
}

/// Collects validation results so every broken field is reported at once.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<ValidationError>,
}

impl Validator {
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// # Errors
    /// [`AppError::Validation`] with every collected error.
    pub fn finish(self) -> Result<(), AppError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self.errors))
        }
    }
}

impl Validator {
    /// Records a failure found outside a value object's `parse`.
    pub fn fail(&mut self, error: ValidationError) {
        self.errors.push(error);
    }
}
