//! The thread a log's rounds do their CPU work on: hashing, encoding and
//! compressing the round's tiles and signing its checkpoint.
//!
//! Not tokio's blocking pool: its threads are shared with every SQLite and
//! file call of the process (a dedup lookup per submission) and come and go,
//! so each round ran on whichever thread was free, where neither the
//! libdeflate compressor and scratch buffer of the last round (kept per
//! thread, see `gzip`) nor the allocator's pages for the tiles were: the
//! same ~1,230 entries took 7 to 40 ms of CPU from round to round
//! (BENCHMARKS.md). One long-lived thread per log keeps them warm. The
//! sequencer runs one round at a time, so a job never waits for another.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A log's round thread. Dropping it ends the thread once its job is done.
pub(crate) struct RoundWorker {
    jobs: mpsc::Sender<Job>,
    name: String,
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
#[error("the round's work on thread {0} panicked or the thread is gone")]
pub(crate) struct WorkerError(String);

impl RoundWorker {
    /// Starts the thread, named after the log (as `top` and `perf` show it).
    pub fn spawn(log: &str) -> std::io::Result<RoundWorker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let name = thread_name(log);
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                for job in queue {
                    // A panicking job fails its round (its answer is
                    // dropped), not every round after it.
                    let _ = panic::catch_unwind(AssertUnwindSafe(job));
                }
            })?;
        Ok(RoundWorker { jobs, name })
    }

    /// Runs `work` on the thread and waits for its result without holding
    /// an async worker.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkerError> {
        let (answer, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(work());
        });
        let error = || WorkerError(self.name.clone());
        self.jobs.send(job).map_err(|_| error())?;
        result.await.map_err(|_| error())
    }
}

/// Linux keeps 15 bytes of a thread's name.
fn thread_name(log: &str) -> String {
    let mut name = format!("round-{log}");
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_one_thread_and_survives_a_panic() {
        let worker = RoundWorker::spawn("test-log").unwrap();
        let first = worker.run(|| std::thread::current().id()).await.unwrap();
        let panicked = worker.run(|| -> u8 { panic!("a bad round") }).await;
        assert!(panicked.is_err(), "a panicking job gives an error");
        let second = worker.run(|| std::thread::current().id()).await.unwrap();
        assert_eq!(first, second, "every job runs on the same thread");
        assert_ne!(first, std::thread::current().id());
    }

    #[test]
    fn thread_names_fit_linux() {
        assert_eq!(thread_name("ab"), "round-ab");
        assert_eq!(thread_name("a-very-long-log-name"), "round-a-very-lo");
        assert_eq!(thread_name("ééééééééé").len(), 14);
    }
}
