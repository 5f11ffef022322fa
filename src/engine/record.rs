//! The result of a run: what `--json` prints and `run.json` holds. It reads back too, so
//! `cometflow report` can draw a finished run; fields added later default when absent.

use std::time::Duration;

use indexmap::IndexMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::events::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub status: Status,
    pub kind: String,
    pub attempts: u32,
    pub cached: bool,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    #[serde(serialize_with = "millis", deserialize_with = "from_millis")]
    pub duration_ms: Duration,
    pub outputs: Json,
    pub error: Option<String>,
    /// The ids of the steps this one waited for: the run's DAG, for reports.
    #[serde(default)]
    pub needs: Vec<String>,
    /// It failed for want of a usable environment (`ErrorKind::Environment`).
    #[serde(skip)]
    pub environment: bool,
}

impl StepRecord {
    pub fn not_run(kind: &str, needs: Vec<String>, status: Status, reason: Option<String>) -> Self {
        StepRecord {
            status,
            kind: kind.to_owned(),
            attempts: 0,
            cached: false,
            started_at: None,
            finished_at: None,
            duration_ms: Duration::ZERO,
            outputs: Json::Object(Default::default()),
            error: reason,
            needs,
            environment: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    /// The pipeline file's absolute path.
    #[serde(default)]
    pub pipeline_file: String,
    pub status: RunStatus,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    #[serde(serialize_with = "millis", deserialize_with = "from_millis")]
    pub duration_ms: Duration,
    pub run_dir: String,
    pub inputs: IndexMap<String, Json>,
    pub outputs: IndexMap<String, Json>,
    pub steps: IndexMap<String, StepRecord>,
    /// This run finished what an interrupted run of the same id had started (`--resume`).
    #[serde(default)]
    pub resumed: bool,
    /// Paid provider calls made by this invocation (a resumed task or a cached step is none).
    #[serde(default)]
    pub paid_calls: u64,
}

impl RunRecord {
    /// A step failed because the environment could not run it (no key, an unwritable
    /// folder) rather than on its own account.
    pub fn environment_failed(&self) -> bool {
        self.steps.values().any(|s| s.status == Status::Failed && s.environment)
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn from_millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_what_it_wrote() {
        let mut steps = IndexMap::new();
        let mut step = StepRecord::not_run("shell", vec!["a".into()], Status::Skipped, Some("why".into()));
        step.duration_ms = Duration::from_millis(1500);
        steps.insert("b".to_string(), step);
        let record = RunRecord {
            run_id: "r".into(),
            pipeline: "p".into(),
            pipeline_file: "/x/p.yaml".into(),
            status: RunStatus::Failed,
            started_at: Timestamp::UNIX_EPOCH,
            finished_at: Timestamp::UNIX_EPOCH,
            duration_ms: Duration::from_millis(2),
            run_dir: "/s/runs/r".into(),
            inputs: IndexMap::new(),
            outputs: IndexMap::new(),
            steps,
            resumed: false,
            paid_calls: 0,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["steps"]["b"]["needs"], serde_json::json!(["a"]));
        assert_eq!(json["steps"]["b"]["duration_ms"], 1500);
        let back: RunRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }

    #[test]
    fn a_record_from_before_needs_and_pipeline_file_still_reads() {
        let old = r#"{"run_id": "r", "pipeline": "p", "status": "succeeded",
            "started_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T00:00:01Z",
            "duration_ms": 1000, "run_dir": "/s/runs/r", "inputs": {}, "outputs": {},
            "steps": {"a": {"status": "succeeded", "kind": "value", "attempts": 1, "cached": false,
                "started_at": null, "finished_at": null, "duration_ms": 0, "outputs": {}, "error": null}}}"#;
        let record: RunRecord = serde_json::from_str(old).unwrap();
        assert!(record.pipeline_file.is_empty() && record.steps["a"].needs.is_empty());
    }
}
