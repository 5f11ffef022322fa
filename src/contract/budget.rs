//! The run's count of paid provider calls against the pipeline's `budget.calls`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::StepError;

#[derive(Debug, Default)]
pub struct Budget {
    pub limit: Option<u64>,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: Option<u64>) -> Self {
        Budget { limit, used: AtomicU64::new(0) }
    }

    /// A budget of which `used` calls were already made.
    pub fn spent(limit: Option<u64>, used: u64) -> Self {
        Budget { limit, used: AtomicU64::new(used) }
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Settles a reservation made with [`Budget::charge`] for work done elsewhere (another
    /// machine of a fleet): `reserved` calls were taken, `paid` were really made.
    pub fn settle(&self, reserved: u64, paid: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| Some((u + paid).saturating_sub(reserved)));
    }

    /// Takes one call from the budget, or refuses without taking anything.
    pub fn charge(&self) -> Result<(), StepError> {
        let Some(limit) = self.limit else {
            self.used.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| (u < limit).then_some(u + 1))
            .map(|_| ())
            .map_err(|_| {
                StepError::fatal(format!(
                    "budget exceeded: this run already made {limit} paid calls, the pipeline's `budget.calls`; \
                     the call was not made. Raise `budget.calls` if the run needs more"
                ))
                .kind(super::ErrorKind::Budget)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_the_call_past_its_limit() {
        let b = Budget::new(Some(2));
        assert!(b.charge().is_ok());
        assert!(b.charge().is_ok());
        let err = b.charge().unwrap_err();
        assert!(err.message.contains("budget exceeded"));
        assert_eq!(err.kind, super::super::ErrorKind::Budget);
        assert_eq!(b.used(), 2);
    }
}
