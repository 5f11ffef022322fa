//! Cron expressions: five fields (minute hour day-of-month month day-of-week) parsed into
//! sets, and the next fire time after an instant, evaluated in an IANA time zone.
//!
//! Semantics follow Vixie cron: `*`, lists, ranges, steps, names (`MON`, `JAN`), `7` is
//! Sunday, and when both day fields are restricted a day matches if *either* does. Wall
//! clocks are read in the schedule's zone, with two rules for daylight-saving changes:
//! a wall-clock time skipped in spring fires once, at the first instant after the jump;
//! a wall-clock time repeated in autumn fires once, at its first occurrence. This module
//! is pure: it reads no clock, so the daemon and the tests pass instants in.

#[cfg(test)]
mod tests;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// A parsed cron expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Whether the day-of-month / day-of-week field starts with `*` (Vixie's rule for
    /// choosing between "both must match" and "either matches").
    days_star: bool,
    weekdays_star: bool,
}

/// A problem in a cron expression; `message` names the field, `help` says what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    pub message: String,
    pub help: String,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names accepted for values, the first standing for `min`.
    names: &'static [&'static str],
    allows: &'static str,
}

const DAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: &[&str] =
    &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

const FIELDS: [Field; 5] = [
    Field { name: "minute", min: 0, max: 59, names: &[], allows: "minutes run 0-59" },
    Field { name: "hour", min: 0, max: 23, names: &[], allows: "hours run 0-23" },
    Field { name: "day-of-month", min: 1, max: 31, names: &[], allows: "days of the month run 1-31" },
    Field { name: "month", min: 1, max: 12, names: MONTH_NAMES, allows: "months run 1-12 or JAN-DEC" },
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: DAY_NAMES,
        allows: "days of the week run 0-7 (0 and 7 are Sunday) or SUN-SAT",
    },
];

const SYNTAX: &str = "each field takes `*`, a value, a list `1,5`, a range `1-5` or a step `*/15`, `1-30/5`";

/// Searching further than this finds nothing new: every calendar pattern (even Feb 29 on
/// a given weekday under "either matches") recurs within eight years.
const MAX_DAYS: u32 = 366 * 9;

impl std::str::FromStr for Cron {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Cron, CronError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(CronError {
                message: format!("`{text}` has {} fields, not 5", parts.len()),
                help: "the fields are minute hour day-of-month month day-of-week; write e.g. `0 9 * * MON-FRI` (09:00 on weekdays)".into(),
            });
        }
        let sets: Vec<u64> =
            parts.iter().zip(&FIELDS).map(|(p, f)| parse_field(p, f)).collect::<Result<_, _>>()?;
        // Sunday is both 0 and 7; fold 7 onto 0 so matching needs one bit.
        let weekdays = (sets[4] | (sets[4] >> 7)) & 0x7f;
        Ok(Cron {
            minutes: sets[0],
            hours: sets[1] as u32,
            days: sets[2] as u32,
            months: sets[3] as u16,
            weekdays: weekdays as u8,
            days_star: parts[2].starts_with('*'),
            weekdays_star: parts[4].starts_with('*'),
        })
    }
}

fn parse_field(text: &str, f: &Field) -> Result<u64, CronError> {
    let mut set = 0u64;
    for item in text.split(',') {
        let err = |what: String| CronError {
            message: format!("{} field `{text}`: {what}", f.name),
            help: format!("{}; {SYNTAX}", f.allows),
        };
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| err(format!("step `{s}` is not a number")))?;
                if step == 0 {
                    return Err(err("a step of 0 never advances".into()));
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (f.min, f.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a, f).map_err(err)?, value(b, f).map_err(err)?);
            if a > b {
                return Err(err(format!("range `{range}` runs backwards; write the smaller value first")));
            }
            (a, b)
        } else {
            let v = value(range, f).map_err(err)?;
            // `5/15` means "from 5, every 15", as in Vixie cron.
            (v, if step > 1 { f.max } else { v })
        };
        for v in (lo..=hi).step_by(step as usize) {
            set |= 1 << v;
        }
    }
    Ok(set)
}

fn value(text: &str, f: &Field) -> Result<u32, String> {
    if text.is_empty() {
        return Err("a value is missing".into());
    }
    if let Some(i) = f.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(f.min + i as u32);
    }
    match text.parse::<u32>() {
        Ok(v) if (f.min..=f.max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("`{v}` is out of range")),
        Err(_) => {
            Err(format!("`{text}` is not a number{}", if f.names.is_empty() { "" } else { " or a name" }))
        }
    }
}

impl Cron {
    /// The first fire time strictly after `after`, read in `tz`; `None` if it never fires
    /// (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
        let local = tz.to_datetime(after);
        let mut cursor = local.date().at(local.hour(), local.minute(), 0, 0);
        // Fire instants grow with wall-clock times, so the first candidate later than
        // `after` is the answer; in a repeated hour a few candidates map to earlier instants.
        for _ in 0..10_000 {
            let dt = self.next_civil(cursor)?;
            let at = resolve(tz, dt)?;
            if at > after {
                return Some(at);
            }
            cursor = dt.checked_add(1.minute()).ok()?;
        }
        None
    }

    /// The latest fire time in `(since, until]`, if any: what a daemon that was down
    /// missed. Searches backwards from `until` in growing windows, so it stays cheap.
    pub fn latest_between(&self, tz: &TimeZone, since: Timestamp, until: Timestamp) -> Option<Timestamp> {
        for hours in [1i64, 25, 24 * 32, 24 * 367, 24 * 366 * 9] {
            let start = until.checked_sub(hours.hours()).map_or(since, |s| s.max(since));
            let mut found = None;
            let mut t = start;
            while let Some(next) = self.next_after(tz, t).filter(|n| *n <= until) {
                found = Some(next);
                t = next;
            }
            if found.is_some() || start == since {
                return found;
            }
        }
        None
    }

    /// The first matching wall-clock minute at or after `from`.
    fn next_civil(&self, from: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let mut floor = (from.hour() as u32, from.minute() as u32);
        for _ in 0..MAX_DAYS {
            if self.day_matches(date) {
                if let Some((h, m)) = self.first_time_from(floor) {
                    return Some(date.at(h as i8, m as i8, 0, 0));
                }
            }
            date = date.tomorrow().ok()?;
            floor = (0, 0);
        }
        None
    }

    fn first_time_from(&self, (h0, m0): (u32, u32)) -> Option<(u32, u32)> {
        (h0..24).filter(|h| self.hours & (1 << h) != 0).find_map(|h| {
            let start = if h == h0 { m0 } else { 0 };
            (start..60).find(|m| self.minutes & (1 << m) != 0).map(|m| (h, m))
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        if self.days_star || self.weekdays_star {
            dom && dow
        } else {
            dom || dow
        }
    }
}

/// The instant a matching wall-clock time fires: itself when unambiguous, its first
/// occurrence in a fold, and the end of the gap (the transition) when it was skipped.
fn resolve(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
        AmbiguousOffset::Gap { before, after } => {
            // Read with the later offset, the time lies before the jump; the next
            // transition from there is the jump itself.
            let early = after.to_timestamp(dt).ok()?;
            tz.following(early).next().map(|t| t.timestamp()).or_else(|| before.to_timestamp(dt).ok())
        }
    }
}
