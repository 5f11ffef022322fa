//! The errors a new user hits first, read as they would read them: no key, a wrong key,
//! an empty balance, a model name that does not exist, and CometAPI out of reach. Each
//! message names what is wrong and ends with what to do (often: try `--simulate`).

use super::*;

const CHAT: &str = "name: first\nsteps:\n  ask:\n    uses: chat\n    with: { model: gpt-4o-mini, messages: [{ role: user, content: hi }] }\n";

fn failed(run: &Output) -> String {
    assert_eq!(run.code, 1, "{}", run.stderr);
    error_of(run)
}

fn error_of(run: &Output) -> String {
    run.json()["steps"]["ask"]["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn without_a_key_the_variable_how_to_set_it_and_simulate_are_named() {
    let run = case(CHAT).run();
    // The run is recorded like any failed run, but exits as the environment's failure.
    assert_eq!(run.code, 3, "{}", run.stderr);
    let error = error_of(&run);
    assert_eq!(
        error,
        "no CometAPI key: set `COMETAPI_KEY` in the environment (export COMETAPI_KEY=sk-...) or in a \
         `.env` file in the current folder; `cometflow run --simulate` needs no key"
    );
}

#[test]
fn a_wrong_key_says_to_check_the_variable_or_simulate() {
    let rt = runtime();
    let sim = rt.block_on(cometflow::sim::start("key=sk-right".parse().unwrap())).unwrap();
    let run = case(CHAT).env("COMETAPI_BASE_URL", &sim.base_url).env("COMETAPI_KEY", KEY).run();
    let error = failed(&run);
    assert!(error.starts_with("CometAPI rejected the key (invalid token (request id: "), "{error}");
    assert!(error.contains("check `COMETAPI_KEY`"), "{error}");
    assert!(error.ends_with("or use `--simulate` to run without one"), "{error}");
    assert_eq!(run.json()["steps"]["ask"]["attempts"], 1);
}

#[test]
fn an_empty_balance_says_top_up_or_simulate_and_is_not_retried() {
    let run = case(CHAT).env("COMETFLOW_SIM", "quota_exhausted").run_with(&["--simulate"]);
    let error = failed(&run);
    assert!(
        error.starts_with("your CometAPI balance is used up: `POST /v1/chat/completions` was refused ("),
        "{error}"
    );
    assert!(error.contains("top up at https://www.cometapi.com"), "{error}");
    assert!(error.ends_with("or use `--simulate` to try the pipeline without spending"), "{error}");
}

/// The shapes gateways use for an empty account: 403 or 429, English or Chinese.
#[test]
fn quota_answers_in_any_shape_get_the_same_message_after_one_call() {
    let bodies = [
        (
            StatusCode::FORBIDDEN,
            json!({"error": {"code": "insufficient_user_quota", "message": "user quota is not enough", "type": "comet_api_error"}}),
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"code": "", "message": "quota exhausted (request id: 9)", "type": "comet_api_error"}}),
        ),
        (
            StatusCode::FORBIDDEN,
            json!({"error": {"code": "", "message": "用户余额不足", "type": "comet_api_error"}}),
        ),
    ];
    let rt = runtime();
    for (status, body) in bodies {
        let seen = Arc::new(Seen::default());
        let answer = body.clone();
        let router = Router::new()
            .route(
                "/v1/chat/completions",
                post(move |State(seen): State<Arc<Seen>>, headers: HeaderMap, bytes: Bytes| {
                    let answer = answer.clone();
                    async move {
                        seen.record("/v1/chat/completions", &headers, &bytes);
                        (status, axum::Json(answer)).into_response()
                    }
                }),
            )
            .with_state(seen.clone());
        let base = serve(&rt, router);
        let run = case(CHAT).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY).run();
        let error = failed(&run);
        assert!(error.starts_with("your CometAPI balance is used up"), "{body}: {error}");
        assert_eq!(seen.count(), 1, "{body}: an empty balance is not worth asking again");
    }
}

#[test]
fn a_model_that_does_not_exist_is_named_with_where_to_look() {
    let yaml = CHAT.replace("gpt-4o-mini", "unknown-gpt-7");
    let error = failed(&case(&yaml).run_with(&["--simulate"]));
    assert!(error.starts_with("model `unknown-gpt-7` does not exist on CometAPI"), "{error}");
    assert!(error.ends_with("check the `model` name at https://api.cometapi.com/api/models"), "{error}");
}

#[test]
fn a_refused_connection_names_the_host_and_the_base_url_variable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let run = case(CHAT).env("COMETAPI_BASE_URL", &base).env("COMETAPI_KEY", KEY).run();
    let error = failed(&run);
    let start = format!(
        "cannot reach CometAPI for `POST /v1/chat/completions`: `127.0.0.1:{port}` refused the connection"
    );
    assert!(error.starts_with(&start), "{error}");
    assert!(error.contains(&format!("`COMETAPI_BASE_URL` (now `{base}`) is wrong")), "{error}");
    assert!(error.contains("use `--simulate` to run offline"), "{error}");
}

#[test]
fn a_host_that_does_not_resolve_says_offline_or_wrong_base_url() {
    // `.invalid` never resolves (RFC 2606), online or not.
    let base = "https://api.cometapi.invalid";
    let run = case(CHAT).env("COMETAPI_BASE_URL", base).env("COMETAPI_KEY", KEY).run();
    let error = failed(&run);
    assert!(error.contains("the name `api.cometapi.invalid` does not resolve"), "{error}");
    assert!(error.contains("you may be offline"), "{error}");
}
