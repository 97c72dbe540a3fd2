//! SIGTERM / SIGINT for the binaries: the first signal sets the stop flag the service's
//! loop watches (it then drains and commits what is in flight); should the drain not
//! finish within the hard deadline, the process exits with status 1 rather than hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Installs the handler on `rt`. `hard_deadline` counts from the signal.
pub fn stop_on_signal(
    rt: &tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    hard_deadline: Duration,
) {
    rt.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        stop.store(true, Ordering::SeqCst);
        tokio::time::sleep(hard_deadline).await;
        tracing::error!("shutdown did not finish within shutdown.timeoutMs + 5 s; exiting");
        std::process::exit(1);
    });
}
