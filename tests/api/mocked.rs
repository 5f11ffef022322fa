//! Against small local servers that check exact requests and misbehave on purpose.

use super::*;

const CLIP: &[u8] = b"not really an mp4, but 40 bytes of video";

/// A Kling stand-in: records requests, answers the submit, then `processing` once, then
/// `succeed` with a video URL on itself.
fn kling_mock(seen: Arc<Seen>) -> Router {
    async fn submit(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
        seen.record("/kling/v1/videos/text2video", &headers, &body);
        seen.submits.fetch_add(1, Ordering::SeqCst);
        axum::Json(json!({"code": 0, "message": "SUCCEED", "request_id": "r1",
                          "data": {"task_id": "T42", "task_status": "submitted"}}))
        .into_response()
    }
    async fn query(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
        seen.record("/kling/v1/videos/text2video/T42", &headers, b"");
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
        let polls = seen.requests.lock().unwrap().iter().filter(|r| r.0.ends_with("/T42")).count();
        let data = if polls < 2 {
            json!({"task_id": "T42", "task_status": "processing", "task_result": {}})
        } else {
            json!({"task_id": "T42", "task_status": "succeed",
                   "task_result": {"videos": [{"id": "v", "url": format!("http://{host}/cdn/clip.mp4?sig=1"), "duration": "5"}]}})
        };
        axum::Json(json!({"code": 0, "message": "SUCCEED", "data": data})).into_response()
    }
    async fn cdn(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
        seen.record("/cdn/clip.mp4", &headers, b"");
        ([("content-type", "video/mp4")], CLIP).into_response()
    }
    Router::new()
        .route("/kling/v1/videos/text2video", post(submit))
        .route("/kling/v1/videos/text2video/T42", get(query))
        .route("/cdn/clip.mp4", get(cdn))
        .with_state(seen)
}

#[test]
fn kling_sends_the_exact_body_and_bearer_and_never_the_key_to_the_file_host() {
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    let base = serve(&rt, kling_mock(seen.clone()));
    let yaml = "name: k\nsteps:\n  clip:\n    uses: kling.text2video\n    poll: { interval: 20ms, max_interval: 40ms }\n    with: { prompt: a cat, duration: 5, mode: std, cfg_scale: 0.5, external_task_id: mine }\n";
    // Kept in a variable: dropping the case deletes its folder and the downloaded video.
    let case = case(yaml).env("COMETAPI_BASE_URL", &format!("{base}/v1")).env("COMETAPI_KEY", KEY);
    let run = case.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = seen.requests.lock().unwrap().clone();
    let (path, auth, body) = &requests[0];
    assert_eq!(path, "/kling/v1/videos/text2video");
    assert_eq!(auth, &format!("Bearer {KEY}"));
    assert_eq!(
        body,
        &json!({"prompt": "a cat", "duration": "5", "mode": "std", "cfg_scale": 0.5, "external_task_id": "mine"})
    );
    assert!(requests.iter().filter(|r| r.0.ends_with("/T42")).all(|r| r.1 == format!("Bearer {KEY}")));
    let download = requests.iter().find(|r| r.0 == "/cdn/clip.mp4").expect("downloaded");
    assert_eq!(download.1, "", "the key went to the file host");
    let out = outputs(&run.json(), "clip").clone();
    assert_eq!(std::fs::read(out["video"].as_str().unwrap()).unwrap(), CLIP);
    assert!(out["video"].as_str().unwrap().ends_with("/clip/video.mp4"));
    assert_eq!(out["duration"], 5.0);
    assert_eq!(out["task_id"], "T42");
}

#[test]
fn chat_sends_the_exact_body_and_honours_retry_after() {
    async fn chat(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
        seen.record("/v1/chat/completions", &headers, &body);
        if seen.count() == 1 {
            let err = json!({"error": {"code": "", "message": "slow down", "type": "comet_api_error"}});
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], axum::Json(err)).into_response();
        }
        axum::Json(
            json!({"id": "c", "model": "gpt-x-2026", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "```json\n{\"ok\": true}\n```"}}], "usage": {"total_tokens": 3}}),
        )
        .into_response()
    }
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    let base = serve(&rt, Router::new().route("/v1/chat/completions", post(chat)).with_state(seen.clone()));
    let yaml = "name: c\nsteps:\n  ask:\n    uses: chat\n    with: { model: gpt-x, messages: [{ role: user, content: hi }], temperature: 0.2 }\n";
    let started = Instant::now();
    let run = case(yaml).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not waited for");
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].2,
        json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2, "stream": false})
    );
    let out = outputs(&run.json(), "ask").clone();
    assert_eq!(out["json"], json!({"ok": true}));
    assert_eq!(out["model"], "gpt-x-2026");
}

#[test]
fn without_a_key_the_step_fails_before_any_request() {
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    async fn any(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
        seen.record("any", &headers, &body);
        StatusCode::OK.into_response()
    }
    let base = serve(&rt, Router::new().fallback(any).with_state(seen.clone()));
    let yaml = "name: n\nsteps:\n  song:\n    uses: suno.music\n    with: { tags: jazz }\n";
    let run = case(yaml).env("COMETAPI_BASE_URL", &base).run();
    assert_eq!(run.code, 3, "no key is the environment's failure");
    assert!(run.stderr.contains("COMETAPI_KEY") && run.stderr.contains("--simulate"), "{}", run.stderr);
    assert_eq!(seen.count(), 0);
}

#[test]
fn a_key_in_dot_env_is_used() {
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    async fn chat(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
        seen.record("chat", &headers, &body);
        axum::Json(json!({"choices": [{"message": {"content": "hey"}}]})).into_response()
    }
    let base = serve(&rt, Router::new().route("/v1/chat/completions", post(chat)).with_state(seen.clone()));
    let yaml = "name: n\nsteps:\n  ask:\n    uses: chat\n    with: { model: m, messages: [{ role: user, content: hi }] }\n";
    let case = case(yaml).env("COMETAPI_BASE_URL", &base);
    std::fs::write(case.path().join(".env"), format!("# mine\nCOMETAPI_KEY=\"{KEY}\"\n")).unwrap();
    let run = case.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen.requests.lock().unwrap()[0].1, format!("Bearer {KEY}"));
}

#[test]
fn a_submit_that_times_out_after_sending_is_not_sent_again() {
    async fn slow(State(seen): State<Arc<Seen>>) -> Response {
        seen.submits.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(5)).await;
        StatusCode::OK.into_response()
    }
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    let base = serve(&rt, Router::new().route("/suno/submit/music", post(slow)).with_state(seen.clone()));
    let yaml = "name: s\nsteps:\n  song:\n    uses: suno.music\n    retry: { attempts: 3, backoff: 10ms }\n    with: { tags: jazz }\n";
    let run = case(yaml)
        .env("COMETAPI_BASE_URL", &base)
        .env("COMETAPI_KEY", KEY)
        .env("COMETFLOW_HTTP_READ_TIMEOUT", "300ms")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not sent again"), "{}", run.stderr);
    assert_eq!(seen.submits.load(Ordering::SeqCst), 1);
}

#[test]
fn a_submit_refused_by_the_gateway_with_503_is_retried_but_a_bare_502_is_not() {
    async fn flaky(State(seen): State<Arc<Seen>>) -> Response {
        let n = seen.submits.fetch_add(1, Ordering::SeqCst);
        match n {
            0 => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": {"code": "", "message": "busy", "type": "comet_api_error"}})),
            )
                .into_response(),
            _ => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
        }
    }
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    let base = serve(&rt, Router::new().route("/mj/submit/imagine", post(flaky)).with_state(seen.clone()));
    let yaml = "name: s\nsteps:\n  grid:\n    uses: midjourney.imagine\n    with: { prompt: boat }\n";
    let run = case(yaml).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY).run();
    assert_eq!(run.code, 1);
    assert_eq!(seen.submits.load(Ordering::SeqCst), 2, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 502"), "{}", run.stderr);
}

#[test]
fn family_envelope_errors_read_plainly() {
    async fn refuse() -> Response {
        axum::Json(json!({"code": 4, "description": "banned prompt detected", "result": null}))
            .into_response()
    }
    let rt = runtime();
    let base = serve(&rt, Router::new().route("/mj/submit/imagine", post(refuse)));
    let yaml = "name: s\nsteps:\n  grid:\n    uses: midjourney.imagine\n    with: { prompt: boat }\n";
    let run = case(yaml).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY).run();
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("midjourney refused the task") && run.stderr.contains("banned prompt detected"),
        "{}",
        run.stderr
    );
}

#[test]
fn validate_catches_bad_provider_fields_with_positions() {
    let yaml = "name: v\nsteps:\n  clip:\n    uses: kling.text2video\n    with: { prompt: a cat, mode: turbo, duration: 7 }\n";
    let out = case(yaml).then(&["validate", "pipeline.yaml"]);
    let stderr = out.stderr;
    assert_eq!(out.code, 2, "{stderr}");
    assert!(stderr.contains("turbo") && stderr.contains('7'), "{stderr}");
    assert!(stderr.contains("pipeline.yaml:5"), "{stderr}");
}

#[test]
fn polls_survive_a_task_not_yet_known_a_garbled_body_and_a_5xx_without_resubmitting() {
    async fn submit(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
        seen.record("submit", &headers, &body);
        seen.submits.fetch_add(1, Ordering::SeqCst);
        axum::Json(json!({"id": "R1"})).into_response()
    }
    async fn fetch(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
        seen.record("fetch", &headers, b"");
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
        let polls = seen.requests.lock().unwrap().iter().filter(|r| r.0 == "fetch").count();
        let error = json!({"error": {"code": "task_not_exist", "message": "task_not_exist", "type": "comet_api_error"}});
        match polls {
            1 => (StatusCode::BAD_REQUEST, axum::Json(error)).into_response(),
            2 => ([("content-type", "application/json")], "{\"status\": \"RUNN").into_response(),
            3 => (StatusCode::BAD_GATEWAY, "<html>upstream</html>").into_response(),
            4 => axum::Json(json!({"id": "R1", "status": "RUNNING", "progress": 0.5})).into_response(),
            _ => axum::Json(
                json!({"id": "R1", "status": "SUCCEEDED", "output": [format!("http://{host}/out.mp4")]}),
            )
            .into_response(),
        }
    }
    async fn file() -> Response {
        ([("content-type", "video/mp4")], CLIP).into_response()
    }
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    let router = Router::new()
        .route("/runwayml/v1/image_to_video", post(submit))
        .route("/runwayml/v1/tasks/R1", get(fetch))
        .route("/out.mp4", get(file))
        .with_state(seen.clone());
    let base = serve(&rt, router);
    let yaml = r#"
name: r
steps:
  video:
    uses: comet.task
    poll: { interval: 20ms, max_interval: 20ms }
    with:
      submit: { path: /runwayml/v1/image_to_video, body: { promptImage: "https://x/y.png", model: gen3a_turbo } }
      id: id
      fetch: { path: "/runwayml/v1/tasks/{id}" }
      status: status
      success: [SUCCEEDED]
      failure: [FAILED, CANCELLED]
      progress: progress
      files: [output.0]
"#;
    let case = case(yaml).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY);
    let run = case.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen.submits.load(Ordering::SeqCst), 1);
    let json = run.json();
    let out = outputs(&json, "video");
    assert_eq!(out["task_id"], "R1");
    assert_eq!(out["status"], "SUCCEEDED");
    assert_eq!(std::fs::read(out["files"][0].as_str().unwrap()).unwrap(), CLIP);
    assert_eq!(
        seen.requests.lock().unwrap()[0].2,
        json!({"promptImage": "https://x/y.png", "model": "gen3a_turbo"})
    );
}

#[test]
fn runway_sends_its_version_header_and_a_local_frame_as_a_data_uri() {
    async fn submit(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
        let version = headers.get("x-runway-version").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        seen.record(&format!("/runwayml/v1/image_to_video version={version}"), &headers, &body);
        axum::Json(json!({"id": "R1"})).into_response()
    }
    async fn task(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
        let version = headers.get("x-runway-version").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        seen.record(&format!("/runwayml/v1/tasks/R1 version={version}"), &headers, b"");
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
        axum::Json(json!({"id": "R1", "status": "SUCCEEDED", "output": [format!("http://{host}/cdn/r.mp4")]}))
            .into_response()
    }
    async fn cdn() -> Response {
        ([("content-type", "video/mp4")], CLIP).into_response()
    }
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    let router = Router::new()
        .route("/runwayml/v1/image_to_video", post(submit))
        .route("/runwayml/v1/tasks/R1", get(task))
        .route("/cdn/r.mp4", get(cdn))
        .with_state(seen.clone());
    let base = serve(&rt, router);
    let yaml = "name: r\nsteps:\n  clip:\n    uses: runway.image2video\n    poll: { interval: 20ms, max_interval: 40ms }\n    with: { image: frame.png, prompt: a boat, duration: 5, callback_url: \"https://me/hook\" }\n";
    let case = case(yaml).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY);
    std::fs::write(case.path().join("frame.png"), b"\x89PNG\r\n\x1a\nxy").unwrap();
    let run = case.run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests[0].0, "/runwayml/v1/image_to_video version=2024-11-06");
    assert_eq!(
        requests[0].2,
        json!({"promptImage": "data:image/png;base64,iVBORw0KGgp4eQ==", "promptText": "a boat", "duration": 5,
               "callback_url": "https://me/hook", "model": "gen3a_turbo"})
    );
    assert!(requests[1].0.ends_with("version=2024-11-06"));
    let out = outputs(&run.json(), "clip").clone();
    assert_eq!(std::fs::read(out["video"].as_str().unwrap()).unwrap(), CLIP);
    assert_eq!(out["task_id"], "R1");
}
