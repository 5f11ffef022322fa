//! Per-family limits: how many of a family's steps run at once, and how many start a minute.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::model::Limit;

#[derive(Debug)]
pub struct FamilyLimit {
    slots: Option<Arc<Semaphore>>,
    window: Option<(u32, Mutex<VecDeque<Instant>>)>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl FamilyLimit {
    pub fn new(limit: &Limit) -> Self {
        FamilyLimit {
            slots: limit.concurrency.map(|n| Arc::new(Semaphore::new(n))),
            window: limit.per_minute.map(|n| (n.max(1), Mutex::new(VecDeque::new()))),
        }
    }

    /// Waits for a slot and for the per-minute window; the permit frees the slot when dropped.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        let permit = match &self.slots {
            // The semaphore is never closed, so acquiring cannot fail.
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        if let Some((per_minute, starts)) = &self.window {
            loop {
                let mut starts = starts.lock().await;
                let now = Instant::now();
                while starts.front().is_some_and(|&t| now.duration_since(t) >= MINUTE) {
                    starts.pop_front();
                }
                if starts.len() < *per_minute as usize {
                    starts.push_back(now);
                    break;
                }
                let wait = MINUTE - now.duration_since(starts[0]);
                drop(starts);
                tokio::time::sleep(wait).await;
            }
        }
        permit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_per_minute_cap_delays_the_next_start_by_the_window() {
        let l = FamilyLimit::new(&Limit { concurrency: None, per_minute: Some(2) });
        let t0 = tokio::time::Instant::now();
        l.acquire().await;
        l.acquire().await;
        l.acquire().await;
        assert!(t0.elapsed() >= Duration::from_secs(59), "{:?}", t0.elapsed());
    }
}
