//! A process-wide budget for CPU-bound model work (the `local` provider's NLP and the
//! offline embedders): at most one task per core runs at a time, the rest queue. Without
//! it, dozens of parallel agents would each get a blocking thread and starve everything
//! else on the machine, such as the HTTP server answering uploads.

use std::sync::OnceLock;

use tokio::sync::{Semaphore, SemaphorePermit};

fn semaphore() -> &'static Semaphore {
    static CPU: OnceLock<Semaphore> = OnceLock::new();
    CPU.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Semaphore::new(cores)
    })
}

/// Waits for a core's worth of budget; hold the permit while the CPU-bound work runs.
pub async fn permit() -> SemaphorePermit<'static> {
    match semaphore().acquire().await {
        Ok(p) => p,
        // The semaphore is never closed.
        Err(_) => unreachable!("the CPU budget semaphore is never closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_permits_than_cores() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let mut held = Vec::new();
        for _ in 0..cores {
            held.push(permit().await);
        }
        let more = tokio::time::timeout(std::time::Duration::from_millis(50), permit()).await;
        assert!(more.is_err(), "a permit beyond the core count was granted");
        held.pop();
        let again = tokio::time::timeout(std::time::Duration::from_millis(500), permit()).await;
        assert!(again.is_ok());
    }
}
