//! The thread a log's rounds do their CPU work on: hashing, encoding and
//! compressing the round's tiles and signing its checkpoint; and the one,
//! at idle priority, where they sign SCTs ahead while the round waits on
//! storage.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A log's round thread. Dropping it ends the thread once its job is done.
pub(crate) struct RoundWorker {
    jobs: mpsc::Sender<Job>,
    name: String,
    /// Whether a job queued by [`RoundWorker::start_unless_busy`] has not
    /// ended yet.
    busy: Arc<AtomicBool>,
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
#[error("the round's work on thread {0} panicked or the thread is gone")]
pub(crate) struct WorkerError(String);

impl RoundWorker {
    /// Starts the round thread, named after the log (as `top` and `perf`
    /// show it).
    pub fn spawn(log: &str) -> std::io::Result<RoundWorker> {
        RoundWorker::start_thread(thread_name("round-", log), false)
    }

    /// Starts a thread that runs only when no other thread of the process
    /// wants its core (Linux `SCHED_IDLE`): work done there ahead of need
    /// never delays a round or a request. Elsewhere, an ordinary thread.
    pub fn spawn_idle(log: &str) -> std::io::Result<RoundWorker> {
        RoundWorker::start_thread(thread_name("sct-", log), true)
    }

    fn start_thread(name: String, idle: bool) -> std::io::Result<RoundWorker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                if idle {
                    lower_to_idle_priority();
                }
                for job in queue {
                    // A panicking job fails its round (its answer is
                    // dropped), not every round after it.
                    let _ = panic::catch_unwind(AssertUnwindSafe(job));
                }
            })?;
        Ok(RoundWorker {
            jobs,
            name,
            busy: Arc::default(),
        })
    }

    /// Runs `work` on the thread and waits for its result without holding
    /// an async worker.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkerError> {
        let (answer, result) = oneshot::channel();
        self.start(move || {
            let _ = answer.send(work());
        })?;
        result.await.map_err(|_| WorkerError(self.name.clone()))
    }

    fn start(&self, work: impl FnOnce() + Send + 'static) -> Result<(), WorkerError> {
        self.jobs
            .send(Box::new(work))
            .map_err(|_| WorkerError(self.name.clone()))
    }

    /// Queues `work` without waiting for it (work whose results land
    /// elsewhere: a round's SCT signatures made ahead), unless a job queued
    /// this way has not ended: an idle-priority thread may not run for as
    /// long as the machine is busy, and its queue, each job holding a
    /// round's entries, must not grow meanwhile. `false` when skipped.
    pub fn start_unless_busy(
        &self,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<bool, WorkerError> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        // A job the thread never takes is dropped with its guard, which
        // marks the worker free again.
        let done = Done(self.busy.clone());
        self.start(move || {
            let _done = done;
            work();
        })?;
        Ok(true)
    }
}

/// Marks a worker's job ended when dropped, even by a panic.
struct Done(Arc<AtomicBool>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Makes the calling thread run only on otherwise idle cores. A thread
/// may always lower its own priority; should that fail, it runs as any
/// other, which costs only the head start.
fn lower_to_idle_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` reads `param` during the call only;
        // pid 0 is the calling thread.
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if set != 0 {
            let error = std::io::Error::last_os_error();
            tracing::warn!(%error, "could not lower the SCT signing thread to idle priority");
        }
    }
}

/// Linux keeps 15 bytes of a thread's name.
fn thread_name(prefix: &str, log: &str) -> String {
    let mut name = format!("{prefix}{log}");
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

    /// While a job queued unless busy has not ended, another is skipped;
    /// once it ends, even by a panic, the next is queued.
    #[tokio::test]
    async fn a_busy_worker_skips_new_jobs() {
        let worker = RoundWorker::spawn_idle("test-log").unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        assert!(worker
            .start_unless_busy(move || hold.recv().unwrap())
            .unwrap());
        assert!(
            !worker.start_unless_busy(|| {}).unwrap(),
            "skipped while busy"
        );
        release.send(()).unwrap();
        worker.run(|| ()).await.unwrap();
        assert!(worker.start_unless_busy(|| panic!("a bad job")).unwrap());
        worker.run(|| ()).await.unwrap();
        let (ran, done) = tokio::sync::oneshot::channel();
        assert!(worker
            .start_unless_busy(move || ran.send(()).unwrap())
            .unwrap());
        done.await.unwrap();
    }

    #[test]
    fn thread_names_fit_linux() {
        assert_eq!(thread_name("round-", "ab"), "round-ab");
        assert_eq!(
            thread_name("round-", "a-very-long-log-name"),
            "round-a-very-lo"
        );
        assert_eq!(thread_name("round-", "ééééééééé").len(), 14);
        assert_eq!(thread_name("sct-", "ab"), "sct-ab");
    }
}
