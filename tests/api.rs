//! The CometAPI client and provider kinds, end to end: the real binary against the
//! built-in simulator (`--simulate`, or one started here to read its `/_sim/stats`) and
//! against small local servers that check exact request bodies and headers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value as Json};

use crate::harness::{Output, Test};

const KEY: &str = "sk-test-4f1d9c2be7a85013";

/// `cometflow run pipeline.yaml --json` in a fresh folder, retrying fast; more arguments
/// go through `run_with`.
fn case(yaml: &str) -> Test {
    Test::new().pipeline(yaml).env("COMETFLOW_HTTP_BACKOFF", "10ms").args(&["run", "pipeline.yaml", "--json"])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Serves `router` on 127.0.0.1:0 in `rt`; returns its base URL.
fn serve(rt: &tokio::runtime::Runtime, router: Router) -> String {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// What a mock server saw: each request's path, authorization header and body.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(String, String, Json)>>,
    submits: AtomicUsize,
}

impl Seen {
    fn record(&self, path: &str, headers: &HeaderMap, body: &[u8]) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = serde_json::from_slice(body).unwrap_or(Json::Null);
        self.requests.lock().unwrap().push((path.to_owned(), auth, body));
    }
    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn outputs<'a>(json: &'a Json, step: &str) -> &'a Json {
    &json["steps"][step]["outputs"]
}

fn file_len(path: &Json) -> u64 {
    let p = path.as_str().unwrap_or_else(|| panic!("not a path: {path}"));
    assert!(Path::new(p).is_absolute(), "{p}");
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}")).len()
}

/// Every file under `dir`, recursively.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[path = "api/fidelity.rs"]
mod fidelity;
#[path = "api/first_errors.rs"]
mod first_errors;
#[path = "api/hostile.rs"]
mod hostile;
#[path = "api/mocked.rs"]
mod mocked;
#[path = "api/simulated.rs"]
mod simulated;
