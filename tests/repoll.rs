//! A run that failed because polling broke off (the provider kept answering 502) is
//! resumed by polling the same task again, never by paying for a new one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::harness::Test;

#[derive(Default)]
struct Counts {
    submits: AtomicUsize,
    polls: AtomicUsize,
}

/// The first 6 polls fail (more than the client's read retries), later ones succeed.
fn provider(counts: Arc<Counts>) -> Router {
    async fn submit(State(c): State<Arc<Counts>>) -> Response {
        c.submits.fetch_add(1, Ordering::SeqCst);
        axum::Json(json!({"id": "T1"})).into_response()
    }
    async fn fetch(State(c): State<Arc<Counts>>, headers: HeaderMap) -> Response {
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
        if c.polls.fetch_add(1, Ordering::SeqCst) < 6 {
            return (StatusCode::BAD_GATEWAY, "<html>upstream down</html>").into_response();
        }
        axum::Json(json!({"id": "T1", "status": "DONE", "url": format!("http://{host}/out.bin")}))
            .into_response()
    }
    Router::new()
        .route("/submit", post(submit))
        .route("/tasks/T1", get(fetch))
        .route("/out.bin", get(|| async { "result bytes" }))
        .with_state(counts)
}

#[test]
fn a_run_whose_polling_failed_resumes_by_polling_the_same_task() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let counts = Arc::new(Counts::default());
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = provider(counts.clone());
    rt.spawn(async move { axum::serve(listener, router).await.unwrap() });

    let t = Test::new()
        .pipeline(
            r#"name: repoll
steps:
  render:
    uses: comet.task
    poll: { interval: 10ms, max_interval: 10ms }
    with:
      submit: { path: /submit, body: { prompt: hi } }
      id: id
      fetch: { path: "/tasks/{id}" }
      status: status
      success: [DONE]
      failure: [FAILED]
      files: [url]
"#,
        )
        .env("COMETAPI_BASE_URL", &base)
        .env("COMETAPI_KEY", "sk-repoll-test")
        .env("COMETFLOW_HTTP_BACKOFF", "5ms");
    let failed = t.then(&["run", "pipeline.yaml", "--json"]);
    assert_eq!(failed.code, 1, "polling should have failed for good: {}", failed.stderr);
    assert_eq!(counts.submits.load(Ordering::SeqCst), 1);

    let resumed = t.then(&["run", "pipeline.yaml", "--resume", "last", "--json"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let json = resumed.json();
    assert_eq!(json["steps"]["render"]["outputs"]["task_id"], "T1");
    assert_eq!(counts.submits.load(Ordering::SeqCst), 1, "the task was paid for twice");
    let file = json["steps"]["render"]["outputs"]["files"][0].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(file).unwrap(), "result bytes");
}
