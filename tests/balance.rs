//! `cometflow balance` and the `budget:` pre-run balance check: read from the simulator, an
//! exhausted account refuses the run, an unreadable balance only warns, the key never shows.

use crate::harness::Test;

const KEY: &str = "sk-test-balance-7c1e";
const CHAT: &str = "name: b\nbudget: { calls: 3 }\nsteps:\n  a:\n    uses: chat\n    with: { model: gpt-5-mini, messages: [{role: user, content: hi}] }\n";

#[test]
fn balance_prints_usd_used_requests_and_keys_from_the_simulator() {
    let out = Test::new().args(&["balance", "--simulate"]).expect(0).stdout;
    assert_eq!(
        out,
        "balance:  $100.00\nused:     $0.50\nrequests: 42\nkeys:\n  sim_key  remain unlimited  used $0.50\n"
    );
}

#[test]
fn an_unreadable_balance_names_the_url_but_never_the_key() {
    let out = Test::new()
        .args(&["balance"])
        .env("COMETAPI_KEY", KEY)
        .env("COMETAPI_QUOTA_URL", "http://127.0.0.1:9/user/quota")
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("cannot read the balance"), "{}", out.stderr);
    assert!(!out.stderr.contains(KEY) && !out.stdout.contains(KEY), "{}", out.stderr);
}

#[test]
fn an_exhausted_balance_refuses_a_budgeted_run_before_any_call() {
    let out = Test::new()
        .pipeline(CHAT)
        .args(&["run", "pipeline.yaml", "--simulate"])
        .env("COMETFLOW_SIM", "quota_exhausted=true")
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("the CometAPI balance is $0.00 (exhausted), so nothing was run"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("▶ a"), "a step started: {}", out.stderr);
}

#[test]
fn a_budgeted_run_with_balance_left_runs() {
    Test::new().pipeline(CHAT).args(&["run", "pipeline.yaml", "--simulate"]).expect(0);
}

#[test]
fn an_unreadable_balance_only_warns() {
    let out = Test::new()
        .pipeline(CHAT)
        .args(&["run", "pipeline.yaml"])
        .env("COMETAPI_KEY", KEY)
        .env("COMETAPI_BASE_URL", "http://127.0.0.1:9")
        .env("COMETAPI_QUOTA_URL", "http://127.0.0.1:9/user/quota")
        .env("COMETFLOW_HTTP_BACKOFF", "1ms")
        .run();
    assert!(out.stderr.contains("warning: cannot read the balance before the run"), "{}", out.stderr);
    assert!(out.stderr.contains("running anyway"), "{}", out.stderr);
    assert!(out.stderr.contains("▶ a"), "the run did not start: {}", out.stderr);
    assert!(!out.stderr.contains(KEY), "{}", out.stderr);
}
