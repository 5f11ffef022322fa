//! Real CometAPI answers the first notes missed, end to end: each shape through a local
//! server that answers exactly it, and through `--simulate` with the simulator setting
//! that serves it (`alt_shapes`, `stuck_status`, `hang_submits`, `quota_exhausted`). Also
//! tasks that never finish, and the submit window: a submit sent whose answer was lost is
//! not paid for again on resume unless `--resubmit-unknown` says so.

use super::*;

const FILE: &[u8] = b"forty bytes standing in for a result file";

/// A scripted task server. `POST submit` answers `accepted` (the first one after `hang`,
/// when set, never comes); each `GET fetch` answers the next of `polls`, the last one
/// repeating, with `{host}` replaced by the server's own address. `/cdn/{name}` and
/// `/v1/videos/T1/content` serve [`FILE`].
struct Script {
    submit: &'static str,
    fetch: &'static str,
    accepted: (StatusCode, Json),
    polls: Vec<(StatusCode, Json)>,
    hang: Option<Duration>,
    /// While false, every poll answers the first of `polls` (a task that is stuck);
    /// `None` walks through them.
    released: Option<std::sync::atomic::AtomicBool>,
    seen: Seen,
}

impl Script {
    fn new(submit: &'static str, fetch: &'static str, accepted: Json, polls: Vec<Json>) -> Script {
        Script {
            submit,
            fetch,
            accepted: (StatusCode::OK, accepted),
            polls: polls.into_iter().map(|p| (StatusCode::OK, p)).collect(),
            hang: None,
            released: None,
            seen: Seen::default(),
        }
    }

    fn serve(self, rt: &tokio::runtime::Runtime) -> (String, Arc<Script>) {
        let script = Arc::new(self);
        let router = Router::new()
            .route(script.submit, post(submit))
            .route(script.fetch, get(fetch))
            .route("/cdn/{name}", get(file))
            .route("/v1/videos/T1/content", get(file))
            .with_state(script.clone());
        (serve(rt, router), script)
    }

    fn submits(&self) -> usize {
        self.seen.submits.load(Ordering::SeqCst)
    }

    /// The authorization header each request to `path` carried.
    fn auth_of(&self, path: &str) -> Vec<String> {
        self.seen.requests.lock().unwrap().iter().filter(|r| r.0 == path).map(|r| r.1.clone()).collect()
    }
}

async fn submit(State(s): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    s.seen.record(s.submit, &headers, &body);
    let n = s.seen.submits.fetch_add(1, Ordering::SeqCst);
    if let (0, Some(hang)) = (n, s.hang) {
        tokio::time::sleep(hang).await;
    }
    (s.accepted.0, axum::Json(s.accepted.1.clone())).into_response()
}

async fn fetch(State(s): State<Arc<Script>>, headers: HeaderMap) -> Response {
    s.seen.record(s.fetch, &headers, b"");
    let polls = s.seen.requests.lock().unwrap().iter().filter(|r| r.0 == s.fetch).count();
    let index = match &s.released {
        Some(released) if !released.load(Ordering::SeqCst) => 0,
        Some(_) => s.polls.len() - 1,
        None => (polls - 1).min(s.polls.len() - 1),
    };
    let (status, answer) = &s.polls[index];
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
    let text = answer.to_string().replace("{host}", host);
    (*status, [("content-type", "application/json")], text).into_response()
}

async fn file(State(s): State<Arc<Script>>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    s.seen.record(uri.path(), &headers, b"");
    ([("content-type", "video/mp4")], FILE).into_response()
}

fn step(uses: &str, with: &str) -> String {
    format!(
        "name: fidelity\nsteps:\n  job:\n    uses: {uses}\n    poll: {{ interval: 20ms, max_interval: 40ms }}\n    with: {with}\n"
    )
}

/// Runs `yaml` against `base` with the key.
fn against(base: &str, yaml: &str) -> (Test, Output) {
    let t = case(yaml).env("COMETAPI_BASE_URL", base).env("COMETAPI_KEY", KEY);
    let out = t.run();
    (t, out)
}

/// Runs `yaml` with `--simulate` and the simulator settings `sim`.
fn simulated(yaml: &str, sim: &str) -> (Test, Output) {
    let t = case(yaml).env("COMETFLOW_SIM", &format!("task_time=300ms,{sim}"));
    let out = t.run_with(&["--simulate"]);
    (t, out)
}

fn succeeded(out: &Output) -> Json {
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    out.json()["steps"]["job"]["outputs"].clone()
}

fn failed(out: &Output) -> String {
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.json()["steps"]["job"]["error"].as_str().unwrap_or_default().to_owned()
}

const RUNWAY: &str = r#"{ image: "https://example.com/a.png", prompt: a cat }"#;

fn runway(polls: Vec<Json>) -> Script {
    Script::new("/runwayml/v1/image_to_video", "/runwayml/v1/tasks/T1", json!({"id": "T1"}), polls)
}

// 1. Runway polling -----------------------------------------------------------------------

#[test]
fn runway_reads_the_wrapped_poll_answer_as_well_as_the_bare_one() {
    let rt = runtime();
    let wrapped = vec![
        json!({"code": "success", "data": {"status": "QUEUED", "progress": "0%", "data": {"status": "PENDING"}}}),
        json!({"code": "success", "data": {"status": "SUCCESS", "progress": "100%",
               "data": {"status": "SUCCEEDED", "output": ["http://{host}/cdn/clip.mp4"]}}}),
    ];
    let bare = vec![json!({"id": "T1", "status": "SUCCESS", "output": ["http://{host}/cdn/clip.mp4"]})];
    for polls in [wrapped, bare] {
        let (base, _script) = runway(polls).serve(&rt);
        let (_t, out) = against(&base, &step("runway.image2video", RUNWAY));
        let outputs = succeeded(&out);
        assert_eq!(file_len(&outputs["video"]), FILE.len() as u64);
        assert_eq!(outputs["task_id"], "T1");
    }
}

#[test]
fn a_wrapped_runway_failure_fails_with_its_reason() {
    let rt = runtime();
    let polls = vec![json!({"code": "success",
        "data": {"status": "FAILURE", "fail_reason": "flagged by moderation", "data": {"status": "FAILED"}}})];
    let (base, _script) = runway(polls).serve(&rt);
    let (_t, out) = against(&base, &step("runway.image2video", RUNWAY));
    let error = failed(&out);
    assert!(error.starts_with("runway task T1 failed (FAILURE): flagged by moderation"), "{error}");
}

#[test]
fn simulated_runway_answers_wrapped_and_is_read() {
    let (_t, out) = simulated(&step("runway.image2video", RUNWAY), "alt_shapes");
    assert!(file_len(&succeeded(&out)["video"]) > 0);
}

// 2. Suno lyrics ---------------------------------------------------------------------------

fn lyrics(data: Json) -> Script {
    Script::new(
        "/suno/submit/lyrics",
        "/suno/fetch/T1",
        json!({"code": "success", "message": "", "data": "T1"}),
        vec![json!({"code": "success", "message": "",
                    "data": {"task_id": "T1", "action": "LYRICS", "status": "SUCCESS", "data": data}})],
    )
}

#[test]
fn suno_lyrics_are_read_from_either_shape_and_empty_lyrics_fail() {
    let rt = runtime();
    let yaml = step("suno.lyrics", "{ prompt: rain }");
    let shapes = [
        json!({"id": "T1", "text": "[Verse]\nrain again", "title": "Rain", "status": "complete"}),
        json!([{"title": "Rain", "tags": "pop", "prompt": "[Verse]\nrain again", "state": "succeeded"}]),
    ];
    for data in shapes {
        let (base, _script) = lyrics(data).serve(&rt);
        let outputs = succeeded(&against(&base, &yaml).1);
        assert_eq!(outputs["text"], "[Verse]\nrain again");
        assert_eq!(outputs["title"], "Rain");
    }
    let (base, _script) = lyrics(json!([{"title": "Rain", "prompt": "", "state": "succeeded"}])).serve(&rt);
    let error = failed(&against(&base, &yaml).1);
    assert!(error.starts_with("suno lyrics task T1 finished without any lyrics text"), "{error}");
}

#[test]
fn simulated_suno_lyrics_in_the_list_shape_are_read() {
    let (_t, out) = simulated(&step("suno.lyrics", "{ prompt: rain }"), "alt_shapes");
    let outputs = succeeded(&out);
    assert!(outputs["text"].as_str().is_some_and(|t| !t.trim().is_empty()), "{outputs}");
}

// 3. /v1/videos without a URL --------------------------------------------------------------

#[test]
fn a_completed_video_without_a_url_is_read_from_its_content_route_with_the_key() {
    let rt = runtime();
    let script = Script::new(
        "/v1/videos",
        "/v1/videos/T1",
        json!({"id": "T1", "task_id": "T1", "object": "video", "status": "queued"}),
        vec![
            json!({"id": "T1", "status": "in_progress", "progress": 50}),
            json!({"id": "T1", "status": "completed", "progress": 100}),
        ],
    );
    let (base, script) = script.serve(&rt);
    let (_t, out) = against(&base, &step("sora.generate", "{ prompt: a boat }"));
    let outputs = succeeded(&out);
    assert_eq!(file_len(&outputs["video"]), FILE.len() as u64);
    assert_eq!(outputs["video_url"], Json::Null);
    assert_eq!(script.auth_of("/v1/videos/T1/content"), vec![format!("Bearer {KEY}")]);
}

#[test]
fn simulated_sora_without_a_url_downloads_its_content() {
    let (_t, out) = simulated(&step("sora.generate", "{ prompt: a boat }"), "alt_shapes");
    assert!(file_len(&succeeded(&out)["video"]) > 0);
}

// 4. MiniMax wrapped -----------------------------------------------------------------------

fn minimax(polls: Vec<Json>) -> Script {
    Script::new(
        "/v1/video_generation",
        "/v1/query/video_generation",
        json!({"code": "success", "message": "", "data": "T1"}),
        polls,
    )
}

#[test]
fn minimax_reads_the_wrapped_shape_and_its_failure() {
    let rt = runtime();
    let yaml = step("minimax.generate", "{ prompt: a wave }");
    let ok = vec![
        json!({"code": "success", "data": {"status": "IN_PROGRESS", "progress": "30%", "data": {"status": "Processing"}}}),
        json!({"code": "success", "data": {"status": "SUCCESS", "progress": "100%",
               "data": {"status": "Success", "file": {"download_url": "http://{host}/cdn/wave.mp4"}}}}),
    ];
    let (base, script) = minimax(ok).serve(&rt);
    // Kept: dropping the case deletes its folder and the downloaded file.
    let (_t, out) = against(&base, &yaml);
    let outputs = succeeded(&out);
    assert_eq!(file_len(&outputs["video"]), FILE.len() as u64);
    assert_eq!(script.auth_of("/cdn/wave.mp4"), vec![String::new()], "the key went to the file host");
    let failure = vec![
        json!({"code": "success", "data": {"status": "FAILURE", "fail_reason": "no credits on upstream", "data": {}}}),
    ];
    let (base, _script) = minimax(failure).serve(&rt);
    let error = failed(&against(&base, &yaml).1);
    assert!(error.starts_with("minimax task T1 failed (FAILURE): no credits on upstream"), "{error}");
}

#[test]
fn simulated_minimax_wrapped_succeeds_and_fails_as_told() {
    let yaml = step("minimax.generate", "{ prompt: a wave }");
    let (_t, out) = simulated(&yaml, "alt_shapes");
    assert!(file_len(&succeeded(&out)["video"]) > 0);
    let (_t, out) = simulated(&yaml, "alt_shapes,fail_tasks");
    let error = failed(&out);
    assert!(error.contains("failed (FAILURE): content moderation"), "{error}");
}

// 5. Midjourney code 21 and a young task ---------------------------------------------------

#[test]
fn midjourney_code_21_is_polled_and_a_young_task_not_found_is_waited_on() {
    let rt = runtime();
    let mut script = Script::new(
        "/mj/submit/imagine",
        "/mj/task/T1/fetch",
        json!({"code": 21, "description": "任务已存在", "result": "T1"}),
        vec![json!({"id": "T1", "status": "SUCCESS", "progress": "100%",
                    "imageUrl": "http://{host}/cdn/grid.png", "buttons": []})],
    );
    script.polls.insert(
        0,
        (StatusCode::NOT_FOUND, json!({"code": 4, "description": "task_no_found", "result": null})),
    );
    let (base, script) = script.serve(&rt);
    let (_t, out) = against(&base, &step("midjourney.imagine", "{ prompt: a fox }"));
    let outputs = succeeded(&out);
    assert_eq!(outputs["task_id"], "T1");
    assert_eq!(file_len(&outputs["image"]), FILE.len() as u64);
    assert_eq!(script.submits(), 1);
}

#[test]
fn simulated_midjourney_code_21_and_task_no_found_are_handled() {
    let (_t, out) = simulated(&step("midjourney.imagine", "{ prompt: a fox }"), "alt_shapes");
    assert!(file_len(&succeeded(&out)["image"]) > 0);
}

// 6. An empty balance on a task submit -----------------------------------------------------

#[test]
fn an_empty_balance_on_a_task_submit_is_final_and_names_the_balance_command() {
    let rt = runtime();
    let quota = json!({"error": {"code": "insufficient_user_quota", "message": "user quota is not enough", "type": "comet_api_error"}});
    for status in [StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS] {
        let mut script = runway(vec![json!({})]);
        script.accepted = (status, quota.clone());
        let (base, script) = script.serve(&rt);
        let (t, out) = against(&base, &step("runway.image2video", RUNWAY));
        let error = failed(&out);
        assert!(
            error.starts_with("your CometAPI balance is used up: `POST /runwayml/v1/image_to_video`"),
            "{error}"
        );
        assert!(error.contains("`cometflow balance`"), "{error}");
        assert_eq!(script.submits(), 1, "{status}: an empty balance is never asked again");
        // Refused before it was accepted: nothing is left in the submit window.
        let show = t.then(&["runs", "show", "last"]);
        assert!(!show.stdout.contains("without a recorded task id"), "{}", show.stdout);
    }
}

#[test]
fn simulated_empty_balance_stops_a_task_step() {
    let (_t, out) = simulated(&step("suno.music", "{ prompt: la, tags: pop }"), "quota_exhausted");
    let error = failed(&out);
    assert!(
        error.starts_with("your CometAPI balance is used up: `POST /suno/submit/music` was refused"),
        "{error}"
    );
}

// 7. Tasks that never finish ---------------------------------------------------------------

fn never_done(out: &Output, family: &str, id: &str) {
    let error = failed(out);
    let start = format!("{family} task {id} did not finish within 1.0s (last status: ON_HOLD)");
    assert!(error.starts_with(&start), "{error}");
    assert!(error.contains("--resume") && error.contains("CometAPI logs"), "{error}");
    assert_eq!(out.stderr.matches("which cometflow does not know").count(), 1, "{}", out.stderr);
}

#[test]
fn a_task_that_never_finishes_fails_at_the_timeout_naming_its_id_and_last_status() {
    let rt = runtime();
    let (base, _script) = runway(vec![json!({"id": "T1", "status": "ON_HOLD"})]).serve(&rt);
    let yaml = step("runway.image2video", RUNWAY).replace("    with:", "    timeout: 1s\n    with:");
    let (_t, out) = against(&base, &yaml);
    never_done(&out, "runway", "T1");
}

#[test]
fn a_task_past_its_deadline_is_kept_and_a_resume_polls_it_without_paying_again() {
    let rt = runtime();
    let mut script = runway(vec![
        json!({"id": "T1", "status": "RUNNING"}),
        json!({"id": "T1", "status": "SUCCEEDED", "output": ["http://{host}/cdn/clip.mp4"]}),
    ]);
    script.released = Some(false.into());
    let (base, script) = script.serve(&rt);
    let yaml = step("runway.image2video", RUNWAY).replace("    with:", "    timeout: 1s\n    with:");
    let (t, out) = against(&base, &yaml);
    let error = failed(&out);
    assert!(error.starts_with("runway task T1 did not finish within 1.0s (last status: RUNNING)"), "{error}");
    assert!(!out.stderr.contains("does not know"), "RUNNING is a known word: {}", out.stderr);
    if let Some(released) = &script.released {
        released.store(true, Ordering::SeqCst);
    }
    let out = t.then(&["run", "pipeline.yaml", "--resume", "last", "--json"]);
    assert_eq!(succeeded(&out)["task_id"], "T1");
    assert_eq!(script.submits(), 1, "the kept task was submitted again");
}

#[test]
fn a_simulated_stuck_task_fails_at_the_timeout() {
    for (uses, family) in [("sora.generate", "sora"), ("kling.text2video", "kling"), ("suno.music", "suno")] {
        let yaml = step(uses, "{ prompt: a boat }").replace("    with:", "    timeout: 1s\n    with:");
        let (_t, out) = simulated(&yaml, "stuck_status=ON_HOLD");
        let error = failed(&out);
        let id = error.split_whitespace().nth(2).unwrap_or_default().to_owned();
        assert!(!id.is_empty(), "{error}");
        never_done(&out, family, &id);
    }
}

// 8. The submit window ---------------------------------------------------------------------

/// After a first run whose submit got no answer: `runs show` lists it, a plain resume
/// stops the step without sending it again, `--resubmit-unknown` pays again.
fn resume_after_a_lost_submit(t: &Test, env: &[(&str, &str)], extra: &[&str], submits: impl Fn() -> usize) {
    let show = t.then(&["runs", "show", "last"]);
    assert!(show.stdout.contains("submits sent without a recorded task id"), "{}", show.stdout);
    assert!(show.stdout.contains("  job  "), "{}", show.stdout);
    let args = |more: &[&str]| {
        let mut a = vec!["run", "pipeline.yaml", "--resume", "last", "--json"];
        a.extend_from_slice(extra);
        a.extend_from_slice(more);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let plain = args(&[]);
    let out = t.then_env(env, &plain.iter().map(String::as_str).collect::<Vec<_>>());
    let error = failed(&out);
    assert!(error.starts_with("step `job` sent a "), "{error}");
    assert!(error.contains("may have been charged, so it was not sent again"), "{error}");
    assert!(error.contains("--resubmit-unknown"), "{error}");
    assert_eq!(submits(), 1, "a plain resume sent the submit again");
    let again = args(&["--resubmit-unknown"]);
    let out = t.then_env(env, &again.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(file_len(&succeeded(&out)["video"]) > 0);
    assert_eq!(submits(), 2);
    let show = t.then(&["runs", "show", "last"]);
    assert!(!show.stdout.contains("without a recorded task id"), "{}", show.stdout);
}

#[test]
fn a_submit_whose_answer_was_lost_is_not_paid_again_without_resubmit_unknown() {
    let rt = runtime();
    let mut script =
        runway(vec![json!({"id": "T1", "status": "SUCCEEDED", "output": ["http://{host}/cdn/clip.mp4"]})]);
    script.hang = Some(Duration::from_secs(30));
    let (base, script) = script.serve(&rt);
    let yaml = step("runway.image2video", RUNWAY).replace("    with:", "    timeout: 1s\n    with:");
    let (t, out) = against(&base, &yaml);
    assert!(failed(&out).starts_with("timed out after 1.0s"));
    assert_eq!(script.submits(), 1);
    resume_after_a_lost_submit(&t, &[], &[], || script.submits());
}

#[test]
fn a_simulated_hung_submit_is_listed_and_resubmitted_only_when_asked() {
    let yaml = step("sora.generate", "{ prompt: a boat }").replace("    with:", "    timeout: 2s\n    with:");
    let (t, out) = simulated(&yaml, "hang_submits");
    assert!(failed(&out).starts_with("timed out after 2.0s"));
    // Each resume starts a fresh simulator: count what was sent from the journal instead.
    let runs_dir = t.state_dir();
    let submits = move || {
        let db = rusqlite::Connection::open(runs_dir.join("state.db")).unwrap();
        let tasks: i64 = db.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0)).unwrap();
        1 + tasks as usize
    };
    resume_after_a_lost_submit(&t, &[("COMETFLOW_SIM", "task_time=300ms")], &["--simulate"], submits);
}
