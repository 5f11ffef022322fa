//! `cometflow schedule next` (fire times in several zones, across both DST changes), cron
//! errors at their position, and the daemon's start, catch-up and clean stop.

use std::time::Duration;

use crate::child::Running;
use crate::harness::Test;

fn next(cron: &str, zone: &str, after: &str, count: &str) -> Vec<String> {
    let yaml = format!(
        "name: timed\non:\n  schedule:\n    - cron: \"{cron}\"\n      timezone: {zone}\nsteps:\n  a: {{ run: echo }}\n"
    );
    let out = Test::new()
        .pipeline(&yaml)
        .args(&["schedule", "next", "pipeline.yaml", "--after", after, "--count", count])
        .expect(0);
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn weekdays_skip_the_weekend_and_follow_the_zone() {
    // Fri 27 March 09:00 CET, then Mon 30 March 09:00 CEST (summer time began on the 29th).
    assert_eq!(
        next("0 9 * * MON-FRI", "Europe/Berlin", "2026-03-27T00:00:00Z", "3"),
        ["2026-03-27T08:00:00Z", "2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z"]
    );
}

#[test]
fn steps_collapse_the_skipped_hour_into_one_fire() {
    // New York 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z).
    assert_eq!(
        next("*/15 * * * *", "America/New_York", "2026-03-08T06:40:00Z", "3"),
        ["2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z"]
    );
}

#[test]
fn lists_and_ranges_in_offset_zones() {
    assert_eq!(
        next("0 8,12,18 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", "4"),
        ["2026-01-01T02:30:00Z", "2026-01-01T06:30:00Z", "2026-01-01T12:30:00Z", "2026-01-02T02:30:00Z"]
    );
    assert_eq!(
        next("0 22-23 * * *", "Australia/Sydney", "2026-01-01T00:00:00Z", "3"),
        ["2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z", "2026-01-02T11:00:00Z"]
    );
}

#[test]
fn berlin_dst_changes_fire_once() {
    // Spring: 02:30 does not exist on 29 March; it fires at 03:00 CEST, once.
    assert_eq!(
        next("30 2 * * *", "Europe/Berlin", "2026-03-28T02:00:00Z", "2"),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
    // Autumn: 02:30 happens twice on 25 October; only the first (CEST) fires.
    assert_eq!(
        next("30 2 * * *", "Europe/Berlin", "2026-10-24T02:00:00Z", "2"),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
}

#[test]
fn new_york_dst_changes_fire_once() {
    assert_eq!(
        next("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2"),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
    assert_eq!(
        next("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2"),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
}

#[test]
fn several_entries_merge_in_time_order_five_by_default() {
    let out = Test::new()
        .pipeline(
            "name: two\non:\n  schedule:\n    - cron: \"0 12 * * *\"\n    - cron: \"0 */8 * * *\"\nsteps:\n  a: { run: echo }\n",
        )
        .args(&["schedule", "next", "pipeline.yaml", "--after", "2026-01-01T00:00:00Z"])
        .expect(0);
    assert_eq!(
        out.stdout,
        "2026-01-01T08:00:00Z\n2026-01-01T12:00:00Z\n2026-01-01T16:00:00Z\n2026-01-02T00:00:00Z\n2026-01-02T08:00:00Z\n"
    );
}

#[test]
fn a_bad_cron_is_reported_at_its_line_and_column() {
    let out = Test::new()
        .pipeline("name: bad\non:\n  schedule:\n    - cron: \"0 25 * * *\"\n      timezone: Europe/Paris\nsteps:\n  a: { run: echo }\n")
        .args(&["validate", "pipeline.yaml"])
        .expect(2);
    assert!(
        out.stderr.contains("error: pipeline.yaml:4:13: hour field `25`: `25` is out of range"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hours run 0-23"), "{}", out.stderr);
}

#[test]
fn an_unknown_zone_suggests_the_nearest() {
    let out = Test::new()
        .pipeline("name: bad\non:\n  schedule:\n    - cron: \"0 9 * * *\"\n      timezone: America/New_Yrok\nsteps:\n  a: { run: echo }\n")
        .args(&["schedule", "next", "pipeline.yaml"])
        .expect(2);
    assert!(
        out.stderr.contains("pipeline.yaml:5:17: unknown time zone `America/New_Yrok`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("did you mean `America/New_York`?"), "{}", out.stderr);
}

const DAILY: &str = "name: daily\non:\n  schedule:\n    - cron: \"0 9 * * MON-FRI\"\n      timezone: Europe/Berlin\nsteps:\n  a: { run: echo ran }\n";
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_daemon_prints_its_schedule_and_stops_cleanly_on_sigterm() {
    let t = Test::new()
        .file("pipelines/daily.yaml", DAILY)
        .file("pipelines/notes.yml", "name: [")
        .args(&["schedule", "pipelines"]);
    let mut d = Running::start(&t);
    d.expect_line("scheduled `daily` (pipelines/daily.yaml): `0 9 * * MON-FRI` in Europe/Berlin", WAIT);
    d.expect_line("next run of `daily` at 20", WAIT);
    d.signal(libc::SIGTERM);
    let (code, seen) = d.wait(WAIT);
    assert_eq!(code, 0, "{}", seen.join("\n"));
    let all = seen.join("\n");
    assert!(all.contains("`pipelines/notes.yml` is invalid; not scheduled until it is fixed"), "{all}");
    assert!(all.contains("stopping"), "{all}");
}

#[test]
fn ctrl_c_stops_the_daemon_with_130() {
    let t = Test::new().pipeline(DAILY).args(&["schedule", "pipeline.yaml"]);
    let mut d = Running::start(&t);
    d.expect_line("next run of `daily`", WAIT);
    d.signal(libc::SIGINT);
    assert_eq!(d.wait(WAIT).0, 130);
}

#[test]
fn catch_up_latest_runs_the_missed_fire_once_on_start() {
    let t = Test::new()
        .pipeline("name: nightly\non:\n  schedule:\n    - cron: \"0 0 * * *\"\n      catch_up: latest\nsteps:\n  a: { run: echo caught up }\n")
        .file("state/schedule.json", r#"{ "nightly": "2026-01-01T00:30:00Z" }"#)
        .args(&["schedule", "pipeline.yaml"]);
    let mut d = Running::start(&t);
    d.expect_line("catching up the run of", WAIT);
    d.expect_line("of `nightly` succeeded", WAIT);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(WAIT).0, 0);
    let record = std::fs::read_to_string(t.state_dir().join("schedule.json")).unwrap();
    assert!(!record.contains("2026-01-01T00:30:00Z"), "the record moves on: {record}");
}

#[test]
fn nothing_to_schedule_is_an_error() {
    let out = Test::new()
        .pipeline("name: plain\nsteps:\n  a: { run: echo }\n")
        .args(&["schedule", "pipeline.yaml"])
        .expect(2);
    assert!(out.stderr.contains("has no `on.schedule`; not scheduled"), "{}", out.stderr);
    assert!(out.stderr.contains("error: nothing to schedule"), "{}", out.stderr);
}

#[test]
fn the_daemon_reloads_edits_and_keeps_the_old_schedule_on_an_invalid_one() {
    let t = Test::new().pipeline(DAILY).args(&["schedule", "pipeline.yaml"]);
    let mut d = Running::start(&t);
    d.expect_line("next run of `daily`", WAIT);
    let file = t.path().join("pipeline.yaml");
    std::fs::write(&file, DAILY.replace("0 9 * * MON-FRI", "30 2 * * *")).unwrap();
    d.expect_line("reloaded `daily` (pipeline.yaml): `30 2 * * *` in Europe/Berlin", WAIT);
    std::fs::write(&file, DAILY.replace("0 9 * * MON-FRI", "30 2 * *")).unwrap();
    d.expect_line("error: pipeline.yaml:4:13: `30 2 * *` has 4 fields, not 5", WAIT);
    d.expect_line("`pipeline.yaml` is invalid; keeping the previous schedule of `daily`", WAIT);
    std::fs::remove_file(&file).unwrap();
    d.expect_line("`pipeline.yaml` was removed; dropped the schedule of `daily`", WAIT);
    std::fs::write(&file, DAILY).unwrap();
    d.expect_line("scheduled `daily` (pipeline.yaml)", WAIT);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(WAIT).0, 0);
}

#[test]
fn schedule_inputs_and_policies_are_checked_where_written() {
    let out = Test::new()
        .pipeline(
            "name: bad\ninputs:\n  clips: { default: 2 }\non:\n  schedule:\n    - cron: \"0 9 * * *\"\n      overlap: queued\n      catch_up: all\n      inputs: { clips: many, theme: x }\nsteps:\n  a: { run: echo }\n",
        )
        .args(&["validate", "pipeline.yaml"])
        .expect(2);
    let e = &out.stderr;
    assert!(e.contains("pipeline.yaml:7:16: unknown overlap policy `queued`"), "{e}");
    assert!(e.contains("did you mean `queue`?"), "{e}");
    assert!(e.contains("pipeline.yaml:8:17: unknown catch-up policy `all`"), "{e}");
    assert!(e.contains("input `clips` is of type `integer`"), "{e}");
    assert!(e.contains("the pipeline has no input `theme`"), "{e}");
}

#[test]
fn a_schedule_that_leaves_a_required_input_unset_is_refused_where_it_is_written() {
    let out = Test::new()
        .pipeline(
            "name: bad\ninputs:\n  theme: { required: true }\non:\n  schedule:\n    - cron: \"0 9 * * *\"\nsteps:\n  a: { run: echo }\n",
        )
        .args(&["validate", "pipeline.yaml"])
        .expect(2);
    let e = &out.stderr;
    assert!(e.contains("pipeline.yaml:6:11: input `theme` is required and has no default, and this schedule does not set it"), "{e}");
    assert!(e.contains("set it under the entry's `inputs:`"), "{e}");
}
