//! `limits:` across the fleet: a family's concurrency is a set of numbered rows in
//! `family_slots`, each taken under a lease by one execution and renewed while it runs. A
//! slot whose holder died frees itself when its lease runs out. Taking one is a single
//! statement (a free or expired slot, inserted or taken over), so two workers never hold
//! the same slot.
//!
//! It owns the `family_slots` rows; it must not know what a family is.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::Pg;
use crate::engine::hooks::FleetSlots;

/// While all slots are taken, look again this often.
const RETRY: Duration = Duration::from_millis(150);

pub struct PgSlots {
    pub(crate) pg: Arc<Pg>,
    /// Names the holder (run and claim) in the rows it takes.
    pub(crate) holder: String,
    pub(crate) lease: Duration,
}

/// A held slot: renewed until dropped, then deleted.
struct Slot {
    renew: tokio::task::JoinHandle<()>,
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.renew.abort();
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

impl PgSlots {
    async fn take(
        &self,
        family: &str,
        limit: usize,
        token: &str,
    ) -> Result<Option<i32>, crate::store::StoreError> {
        let (limit, secs) = (limit as i32, self.lease.as_secs_f64());
        let rows = self
            .pg
            .query(
                "INSERT INTO family_slots (run_id, family, slot, lease_until)
                 SELECT $1, $2, s, now() + make_interval(secs => $4)
                 FROM generate_series(0, $3::int - 1) s
                 WHERE NOT EXISTS (SELECT 1 FROM family_slots f WHERE f.family = $2 AND f.slot = s
                                   AND f.lease_until > now())
                 ORDER BY s LIMIT 1
                 ON CONFLICT (family, slot) DO UPDATE SET run_id = EXCLUDED.run_id, lease_until = EXCLUDED.lease_until
                    WHERE family_slots.lease_until < now()
                 RETURNING slot",
                &[&token, &family, &limit, &secs],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }
}

impl FleetSlots for PgSlots {
    fn acquire<'a>(&'a self, family: &'a str, limit: usize) -> BoxFuture<'a, Option<Box<dyn Send + Sync>>> {
        Box::pin(async move {
            let token = format!("{}#{:08x}", self.holder, fastrand::u32(..));
            let slot = loop {
                match self.take(family, limit, &token).await {
                    Ok(Some(slot)) => break slot,
                    Ok(None) => tokio::time::sleep(RETRY).await,
                    Err(e) => {
                        eprintln!("warning: cannot take a fleet-wide `{family}` slot ({e}); counting this worker only");
                        return None;
                    }
                }
            };
            let (pg, fam, tok, lease) = (self.pg.clone(), family.to_owned(), token.clone(), self.lease);
            let renew = self.pg.spawn(async move {
                let secs = lease.as_secs_f64();
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let _ = pg
                        .execute(
                            "UPDATE family_slots SET lease_until = now() + make_interval(secs => $4)
                             WHERE family = $1 AND slot = $2 AND run_id = $3",
                            &[&fam, &slot, &tok, &secs],
                        )
                        .await;
                }
            });
            let (pg, fam) = (self.pg.clone(), family.to_owned());
            let release = Box::new(move || {
                let pg2 = pg.clone();
                pg.spawn(async move {
                    let _ = pg2
                        .execute(
                            "DELETE FROM family_slots WHERE family = $1 AND slot = $2 AND run_id = $3",
                            &[&fam, &slot, &token],
                        )
                        .await;
                });
            });
            Some(Box::new(Slot { renew, release: Some(release) }) as Box<dyn Send + Sync>)
        })
    }
}
