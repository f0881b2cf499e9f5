//! Work moved off the async runtime onto tokio's blocking pool, with the task's panic
//! carried on to the caller.

/// Runs `work` on the blocking pool and returns its result; a panic in `work` resumes in the
/// caller. `what` names the work in the message of the (shutdown-only) cancellation panic.
pub(crate) async fn on_blocking_pool<R, F>(what: &str, work: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("{what} was cancelled: {error}"),
    }
}
