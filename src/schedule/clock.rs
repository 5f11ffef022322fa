//! The daemon's clock: the real one, or (for tests only) a fast one set by
//! `COMETFLOW_TEST_CLOCK=<real unix ms>,<virtual RFC 3339>,<speed>`: at the real instant
//! given it reads the virtual time given, and then runs `speed` times faster. Two
//! processes given the same value read the same time, so a test can watch two schedulers
//! live through three cron minutes in a few seconds. Not for use outside tests.

use std::sync::OnceLock;
use std::time::Duration;

use jiff::Timestamp;

struct Fake {
    real: Timestamp,
    virtual_start: Timestamp,
    speed: f64,
}

fn fake() -> Option<&'static Fake> {
    static FAKE: OnceLock<Option<Fake>> = OnceLock::new();
    FAKE.get_or_init(|| {
        let spec = std::env::var("COMETFLOW_TEST_CLOCK").ok()?;
        let mut parts = spec.split(',');
        let real = Timestamp::from_millisecond(parts.next()?.trim().parse().ok()?).ok()?;
        let virtual_start = parts.next()?.trim().parse().ok()?;
        let speed: f64 = parts.next()?.trim().parse().ok().filter(|s: &f64| *s > 0.0)?;
        Some(Fake { real, virtual_start, speed })
    })
    .as_ref()
}

/// Now, as the daemon sees it.
pub fn now() -> Timestamp {
    let real = Timestamp::now();
    let Some(f) = fake() else { return real };
    let elapsed = (real.as_nanosecond() - f.real.as_nanosecond()) as f64 * f.speed;
    Timestamp::from_nanosecond(f.virtual_start.as_nanosecond() + elapsed as i128).unwrap_or(real)
}

/// The real time to wait for `d` of the daemon's time to pass.
pub fn real(d: Duration) -> Duration {
    match fake() {
        Some(f) => d.div_f64(f.speed),
        None => d,
    }
}
