//! SIGINT and SIGTERM: what ends `serve` and interrupts a one-shot
//! command (SIGHUP too, for a command: its terminal went away).

use anyhow::Context as _;
use std::future::Future;
use tokio::signal::unix::{signal, SignalKind};

/// SIGINT or SIGTERM, listened for from now on (a signal that comes
/// before the future is awaited is kept, and the process is not killed
/// by it meanwhile).
///
/// # Errors
/// When the signals cannot be listened for.
pub(super) fn interruption() -> anyhow::Result<impl Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

/// Completes on SIGINT or SIGTERM, listened for from the call on (never,
/// when they cannot be listened for: the process then stops as their
/// default action has it). Called before the server is built, so that a
/// SIGTERM that comes while it starts, or just after it says it listens,
/// stops it cleanly instead of killing it where it stands.
pub(super) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let listened = interruption();
    async move {
        match listened {
            Ok(signalled) => signalled.await,
            Err(e) => {
                tracing::warn!(error = %e, "signals cannot be listened for");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// As [`interruption`], and SIGHUP (the terminal or the SSH session of a
/// one-shot command closed): the command stops or finishes as for Ctrl-C,
/// instead of dying where it stands.
///
/// # Errors
/// When the signals cannot be listened for.
pub(super) fn command_interruption() -> anyhow::Result<impl Future<Output = ()>> {
    let interrupted = interruption()?;
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    Ok(async move {
        tokio::select! {
            () = interrupted => {}
            _ = hangup.recv() => tracing::info!("SIGHUP received"),
        }
    })
}
