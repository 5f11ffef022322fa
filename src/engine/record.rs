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
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn from_millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}
