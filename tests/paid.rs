//! A simulator started in this process for tests that count what reached the API (resume,
//! cache, runs, request shapes, limits): it accepts only [`KEY`], gives its base URL for
//! `COMETAPI_BASE_URL`, and reads back what its `/_sim/stats` counted.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::harness::Test;

pub const KEY: &str = "sk-test-store-5e1b";

pub struct Sim {
    rt: tokio::runtime::Runtime,
    pub base_url: String,
    _handle: cometflow::sim::SimHandle,
}

impl Sim {
    pub fn start(spec: &str) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let spec = format!("key={KEY},{spec}");
        let handle = rt.block_on(cometflow::sim::start(spec.parse().unwrap())).unwrap();
        Sim { base_url: handle.base_url.clone(), _handle: handle, rt }
    }

    /// `Test` pointed at this simulator.
    pub fn test(&self, yaml: &str) -> Test {
        Test::new()
            .pipeline(yaml)
            .env("COMETAPI_BASE_URL", &self.base_url)
            .env("COMETAPI_KEY", KEY)
            .env("COMETFLOW_HTTP_BACKOFF", "10ms")
    }

    pub fn stats(&self) -> Json {
        let url = format!("{}/_sim/stats", self.base_url);
        self.rt.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
    }

    /// Clears the counters and the request log (tasks stay pollable).
    pub fn reset(&self) {
        let url = format!("{}/_sim/reset", self.base_url);
        self.rt.block_on(async { reqwest::Client::new().post(url).send().await.unwrap() });
    }

    /// The requests the simulator logged: method, path, shaping headers, body.
    pub fn requests(&self) -> Vec<Json> {
        self.stats()["requests_log"].as_array().cloned().unwrap_or_default()
    }

    pub fn submits(&self, family: &str) -> u64 {
        self.stats()["families"][family]["submits"].as_u64().unwrap_or(0)
    }

    /// Every task id the simulator handed out, in submission order.
    pub fn task_ids(&self) -> Vec<String> {
        let stats = self.stats();
        stats["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
    }

    /// Waits until `n` tasks have been submitted in all.
    pub fn wait_for_tasks(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.task_ids().len() < n {
            assert!(Instant::now() < deadline, "fewer than {n} tasks within {within:?}: {}", self.stats());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
