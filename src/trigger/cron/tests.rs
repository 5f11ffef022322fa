//! The cron evaluator as a specification: parsing, Vixie day rules, and fire times in
//! several zones across both daylight-saving changes.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::Cron;

fn cron(expr: &str) -> Cron {
    expr.parse().unwrap_or_else(|e| panic!("`{expr}`: {e:?}"))
}

/// The next `n` fire times after `after`, as RFC 3339 UTC strings.
fn next(expr: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
    let (c, tz) = (cron(expr), TimeZone::get(zone).unwrap());
    let mut t: Timestamp = after.parse().unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        t = c.next_after(&tz, t).expect("fires");
        out.push(t.to_string());
    }
    out
}

fn error(expr: &str) -> (String, String) {
    let e = expr.parse::<Cron>().expect_err(expr);
    (e.message, e.help)
}

#[test]
fn errors_name_the_field_and_what_it_allows() {
    let (m, h) = error("61 * * * *");
    assert_eq!(m, "minute field `61`: `61` is out of range");
    assert!(h.starts_with("minutes run 0-59;"), "{h}");
    let (m, h) = error("0 9 * * FUN");
    assert_eq!(m, "day-of-week field `FUN`: `FUN` is not a number or a name");
    assert!(h.contains("SUN-SAT"), "{h}");
    let (m, _) = error("0 9 * *");
    assert_eq!(m, "`0 9 * *` has 4 fields, not 5");
    let (m, _) = error("*/0 * * * *");
    assert_eq!(m, "minute field `*/0`: a step of 0 never advances");
    let (m, _) = error("0 9 * * FRI-MON");
    assert!(m.starts_with("day-of-week field `FRI-MON`: range `FRI-MON` runs backwards"), "{m}");
    let (m, _) = error("0 9 1, * *");
    assert_eq!(m, "day-of-month field `1,`: a value is missing");
    let (m, h) = error("0 24 * * *");
    assert_eq!(
        (m.as_str(), h.starts_with("hours run 0-23")),
        ("hour field `24`: `24` is out of range", true)
    );
}

#[test]
fn names_are_case_insensitive_and_seven_is_sunday() {
    assert_eq!(cron("0 9 * * mon-Fri"), cron("0 9 * * 1-5"));
    assert_eq!(cron("0 0 1 jan,JUL *"), cron("0 0 1 1,7 *"));
    assert_eq!(cron("0 0 * * 7"), cron("0 0 * * SUN"));
    assert_eq!(cron("0 0 * * 5-7"), cron("0 0 * * 0,5,6"));
}

#[test]
fn steps_lists_and_ranges() {
    let t = "2026-01-01T00:07:00Z";
    assert_eq!(
        next("*/15 * * * *", "UTC", t, 3),
        ["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z"]
    );
    assert_eq!(
        next("1-30/10 * * * *", "UTC", t, 3),
        ["2026-01-01T00:11:00Z", "2026-01-01T00:21:00Z", "2026-01-01T01:01:00Z"]
    );
    assert_eq!(
        next("0 8,12,18 * * *", "UTC", t, 4),
        ["2026-01-01T08:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01T18:00:00Z", "2026-01-02T08:00:00Z"]
    );
    // 2026-01-02 is a Friday: the next weekday 09:00 after it is Monday the 5th.
    assert_eq!(
        next("0 9 * * MON-FRI", "UTC", "2026-01-02T09:00:00Z", 2),
        ["2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z"]
    );
}

#[test]
fn either_day_field_matches_when_both_are_restricted() {
    // Fridays and the 10th (March 2026: Fri 6, Tue 10, Fri 13).
    assert_eq!(
        next("0 0 10 * FRI", "UTC", "2026-03-01T00:00:00Z", 3),
        ["2026-03-06T00:00:00Z", "2026-03-10T00:00:00Z", "2026-03-13T00:00:00Z"]
    );
    // A `*`-led day field means both must match: the 1st, 11th, 21st, 31st that are Fridays.
    assert_eq!(next("0 0 */10 * FRI", "UTC", "2026-01-01T00:00:00Z", 1), ["2026-05-01T00:00:00Z"]);
}

#[test]
fn an_impossible_date_never_fires() {
    assert_eq!(cron("0 0 30 2 *").next_after(&TimeZone::UTC, Timestamp::UNIX_EPOCH), None);
    assert_eq!(next("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", 1), ["2028-02-29T00:00:00Z"]);
}

#[test]
fn berlin_spring_gap_fires_once_at_the_jump() {
    // 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist.
    assert_eq!(
        next("30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", 3),
        ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
    // Every skipped half hour and the real 03:00 collapse into one fire.
    assert_eq!(
        next("*/30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 3),
        ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"]
    );
}

#[test]
fn berlin_autumn_fold_fires_at_the_first_occurrence_only() {
    // 2026-10-25 03:00 CEST falls back to 02:00 CET; 02:30 happens at 00:30Z and 01:30Z.
    assert_eq!(
        next("30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", 3),
        ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    // Asked from inside the repeated hour, it does not fire again.
    assert_eq!(next("30 2 * * *", "Europe/Berlin", "2026-10-25T01:15:00Z", 1), ["2026-10-26T01:30:00Z"]);
}

#[test]
fn new_york_both_changes() {
    assert_eq!(
        next("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", 3),
        ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
    assert_eq!(
        next("30 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", 3),
        ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
}

#[test]
fn sydney_changes_the_other_way_round() {
    // DST ends 2026-04-05 03:00 AEDT -> 02:00 AEST: 02:30 repeats; first occurrence only.
    assert_eq!(
        next("30 2 * * *", "Australia/Sydney", "2026-04-03T00:00:00Z", 3),
        ["2026-04-03T15:30:00Z", "2026-04-04T15:30:00Z", "2026-04-05T16:30:00Z"]
    );
    // DST starts 2026-10-04 02:00 AEST -> 03:00 AEDT (16:00Z the day before).
    assert_eq!(
        next("30 2 * * *", "Australia/Sydney", "2026-10-02T00:00:00Z", 3),
        ["2026-10-02T16:30:00Z", "2026-10-03T16:00:00Z", "2026-10-04T15:30:00Z"]
    );
}

#[test]
fn kolkata_has_a_half_hour_offset_and_no_dst() {
    // 2026-03-27 is a Friday; 09:00 IST is 03:30Z.
    assert_eq!(
        next("0 9 * * MON-FRI", "Asia/Kolkata", "2026-03-27T00:00:00Z", 2),
        ["2026-03-27T03:30:00Z", "2026-03-30T03:30:00Z"]
    );
}

#[test]
fn latest_missed_fire_is_found_backwards() {
    let (c, tz) = (cron("0 9 * * *"), TimeZone::UTC);
    let since: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
    let until: Timestamp = "2026-03-10T08:00:00Z".parse().unwrap();
    assert_eq!(c.latest_between(&tz, since, until).unwrap().to_string(), "2026-03-09T09:00:00Z");
    let until: Timestamp = "2026-01-02T08:59:00Z".parse().unwrap();
    assert_eq!(c.latest_between(&tz, since, until), None);
}
