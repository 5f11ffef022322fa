//! Hostile servers and hostile URLs: the key goes to `COMETAPI_BASE_URL`'s exact origin and
//! nowhere else, is never stored or printed even when a server echoes it, a paid body never
//! follows a redirect off that origin, and no answer can hang a step or fill the memory.

use super::*;

const ASK: &str = "name: c\nsteps:\n  ask:\n    uses: chat\n    with: { model: m, messages: [{ role: user, content: hi }] }\n";

/// A server that records every request and answers `answer` to all of them.
fn recorder(seen: Arc<Seen>, answer: Response) -> Router {
    let answer = Arc::new(Mutex::new(Some(answer)));
    Router::new().fallback(move |headers: HeaderMap, uri: axum::http::Uri, body: Bytes| {
        let (seen, answer) = (seen.clone(), answer.clone());
        async move {
            seen.record(uri.path(), &headers, &body);
            answer.lock().unwrap().take().unwrap_or_else(|| StatusCode::GONE.into_response())
        }
    })
}

fn ok_json() -> Response {
    axum::Json(json!({"ok": true})).into_response()
}

#[test]
fn the_key_goes_to_no_url_that_only_looks_like_the_base() {
    let rt = runtime();
    let (home, other) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let base = serve(&rt, recorder(home.clone(), ok_json()));
    let elsewhere = serve(&rt, recorder(other.clone(), ok_json()));
    let (base_host, other_host) = (&base["http://".len()..], &elsewhere["http://".len()..]);
    let base_port = base_host.rsplit(':').next().unwrap();
    // Each URL names the base's host somewhere, but reqwest connects to `elsewhere`.
    let tricks = [
        format!("http://{other_host}\\@{base_host}/a"),
        format!("http://{other_host}/@{base_host}/b"),
        format!("http://{base_host}@{other_host}/c"),
        format!("{elsewhere}/d?{base_host}"),
        format!("{elsewhere}/{base}/e"),
    ];
    let mut yaml = "name: h\nsteps:\n".to_owned();
    for (i, url) in tricks.iter().enumerate() {
        yaml.push_str(&format!("  t{i}: {{ uses: http, with: {{ url: '{url}' }} }}\n"));
    }
    // Same host, other scheme-port pair: no key either.
    yaml.push_str(&format!("  port: {{ uses: http, with: {{ url: 'http://localhost:{base_port}/f' }} }}\n"));
    let case = case(&yaml).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY);
    let run = case.run();
    let others = other.requests.lock().unwrap().clone();
    assert_eq!(others.len(), tricks.len(), "{others:?}\n{}", run.stderr);
    // (`base@other` sends `base` as Basic credentials: a URL's own userinfo, not the key.)
    assert!(others.iter().all(|r| !r.1.starts_with("Bearer")), "the key left its origin: {others:?}");
    let homes = home.requests.lock().unwrap().clone();
    assert!(homes.iter().all(|r| r.1.is_empty()), "`localhost` is not the base's host: {homes:?}");
}

#[test]
fn an_http_url_on_an_https_base_gets_no_key_and_a_path_call_off_the_origin_is_refused() {
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    let base = serve(&rt, recorder(seen.clone(), ok_json()));
    let host = &base["http://".len()..];
    let yaml = format!("name: h\nsteps:\n  plain: {{ uses: http, with: {{ url: 'http://{host}/x' }} }}\n");
    let run = case(&yaml).env("COMETAPI_BASE_URL", &format!("https://{host}")).env("COMETAPI_KEY", KEY).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen.requests.lock().unwrap()[0].1, "", "the key went in clear text");
}

#[test]
fn a_key_echoed_by_the_server_is_stored_and_printed_nowhere() {
    let rt = runtime();
    let echo = || async move {
        let body = json!({"id": "c", "model": format!("echo {KEY}"), "choices": [{"index": 0,
            "message": {"role": "assistant", "content": format!("your key is {KEY}")}}]});
        ([("x-echo", format!("Bearer {KEY}"))], axum::Json(body)).into_response()
    };
    let router = Router::new().route("/v1/chat/completions", post(echo)).route("/echo", get(echo));
    let base = serve(&rt, router);
    let yaml = format!(
        "{ASK}  headers: {{ uses: http, with: {{ url: '{base}/echo' }} }}\n  \
         show: {{ run: 'echo \"{{{{ steps.ask.outputs.text }}}}\"; echo \"{{{{ steps.headers.outputs.headers }}}}\" >&2; exit 3' }}\n"
    );
    let case = case(&yaml).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY);
    let run = case.run_with(&["-v"]);
    assert!(run.stdout.contains("your key is ***"), "{}", run.stdout);
    let mut seen_text = format!("{}{}", run.stdout, run.stderr);
    for f in files_under(case.path()) {
        seen_text.push_str(&String::from_utf8_lossy(&std::fs::read(&f).unwrap()));
    }
    let show = case.then(&["runs", "show", "last"]);
    seen_text.push_str(&show.stdout);
    seen_text.push_str(&show.stderr);
    assert!(!seen_text.contains(KEY), "the key was stored or printed");
}

#[test]
fn a_paid_call_does_not_follow_a_redirect_to_another_origin() {
    let rt = runtime();
    let other = Arc::new(Seen::default());
    let elsewhere = serve(&rt, recorder(other.clone(), ok_json()));
    let target = format!("{elsewhere}/v1/chat/completions");
    let redirect = move || {
        let target = target.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", target)]).into_response() }
    };
    let base = serve(&rt, Router::new().route("/v1/chat/completions", post(redirect)));
    let run = case(ASK).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY).run();
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(other.requests.lock().unwrap().is_empty(), "the paid body followed the redirect");
}

#[test]
fn a_too_large_answer_is_a_clear_step_error() {
    let rt = runtime();
    let big = move || async move {
        let text = "x".repeat(300_000);
        axum::Json(
            json!({"id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}),
        )
    };
    let base = serve(&rt, Router::new().route("/v1/chat/completions", post(big)));
    let run = case(ASK)
        .env("COMETAPI_BASE_URL", &base)
        .env("COMETAPI_KEY", KEY)
        .env("COMETFLOW_MAX_ANSWER_BYTES", "100000")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = run.json()["steps"]["ask"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("more than 100000 bytes") && error.contains("COMETFLOW_MAX_ANSWER_BYTES"),
        "{error}"
    );
}

#[test]
fn a_server_that_trickles_its_answer_hits_the_request_deadline() {
    let rt = runtime();
    let trickle = || async {
        // One byte every 200 ms: never idle long enough for a read timeout (bounded: 50 bytes).
        let stream = futures::stream::unfold(0u32, |n| async move {
            (n < 50).then_some(())?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), n + 1))
        });
        ([("content-type", "application/json")], axum::body::Body::from_stream(stream)).into_response()
    };
    let base = serve(&rt, Router::new().route("/v1/chat/completions", post(trickle)));
    let started = Instant::now();
    let run = case(ASK)
        .env("COMETAPI_BASE_URL", &base)
        .env("COMETAPI_KEY", KEY)
        .env("COMETFLOW_HTTP_TIMEOUT", "1s")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    let error = run.json()["steps"]["ask"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("timed out"), "{error}");
}

#[test]
fn a_provider_call_to_a_full_url_off_the_base_is_refused_before_it_is_sent() {
    let rt = runtime();
    let (home, other) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let base = serve(&rt, recorder(home.clone(), ok_json()));
    let elsewhere = serve(&rt, recorder(other.clone(), ok_json()));
    let yaml = format!(
        "name: t\nsteps:\n  render:\n    uses: comet.task\n    poll: {{ interval: 10ms }}\n    with:\n      \
         submit: {{ method: POST, path: '{elsewhere}/submit', body: {{ prompt: x }} }}\n      id: id\n      \
         fetch: {{ method: GET, path: '/fetch/{{id}}' }}\n      status: status\n      success: [OK]\n"
    );
    let run = case(&yaml).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = run.json()["steps"]["render"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("is not on `COMETAPI_BASE_URL`"), "{error}");
    assert!(other.requests.lock().unwrap().is_empty() && home.requests.lock().unwrap().is_empty());
}
