//! What `/_sim/stats` reports: route families, request and submit counts, the most
//! requests and tasks in flight at once, every submitted task, and injected faults.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};

/// Route families, as reported by `/_sim/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Family {
    Chat,
    Models,
    Embeddings,
    Images,
    Audio,
    Suno,
    Kling,
    Midjourney,
    Videos,
    Balance,
    Files,
    Other,
}

impl Family {
    const ALL: [Family; 12] = [
        Family::Chat,
        Family::Models,
        Family::Embeddings,
        Family::Images,
        Family::Audio,
        Family::Suno,
        Family::Kling,
        Family::Midjourney,
        Family::Videos,
        Family::Balance,
        Family::Files,
        Family::Other,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::Chat => "chat",
            Family::Models => "models",
            Family::Embeddings => "embeddings",
            Family::Images => "images",
            Family::Audio => "audio",
            Family::Suno => "suno",
            Family::Kling => "kling",
            Family::Midjourney => "midjourney",
            Family::Videos => "videos",
            Family::Balance => "balance",
            Family::Files => "files",
            Family::Other => "other",
        }
    }

    /// Task families report concurrency as tasks alive; the others as concurrent requests.
    fn has_tasks(self) -> bool {
        matches!(self, Family::Suno | Family::Kling | Family::Midjourney | Family::Videos)
    }

    /// Which family a request path belongs to; `None` for the simulator's control routes.
    pub(crate) fn classify(path: &str) -> Option<Family> {
        let family = match path {
            p if p.starts_with("/_sim/files/") || p.starts_with("/mj/image/") => Family::Files,
            p if p.starts_with("/_sim/") || p == "/_sim" => return None,
            "/v1/chat/completions" | "/v1/responses" | "/v1/messages" => Family::Chat,
            "/v1/models" => Family::Models,
            "/v1/embeddings" => Family::Embeddings,
            p if p.starts_with("/v1/images/") => Family::Images,
            p if p.starts_with("/v1/audio/") => Family::Audio,
            p if p == "/v1/videos" || p.starts_with("/v1/videos/") => Family::Videos,
            p if p.starts_with("/suno/") => Family::Suno,
            p if p.starts_with("/kling/") => Family::Kling,
            p if p.starts_with("/mj/") => Family::Midjourney,
            "/user/quota" => Family::Balance,
            _ => Family::Other,
        };
        Some(family)
    }
}

#[derive(Debug, Default, Clone)]
struct FamilyStats {
    requests: u64,
    submits: u64,
    concurrent: u64,
    max_concurrent_requests: u64,
    max_tasks_alive: u64,
}

struct TaskRecord {
    id: String,
    family: Family,
    route: String,
    submitted_ms: u64,
    ends: Instant,
}

#[derive(Default)]
pub(crate) struct Stats {
    families: BTreeMap<Family, FamilyStats>,
    tasks: Vec<TaskRecord>,
    faults: BTreeMap<&'static str, u64>,
    /// Up to `requests::CAP` requests, as `requests::capture` shows them.
    log: Vec<Value>,
}

impl Stats {
    /// A task is alive from its submit until `ends`; the maximum is taken at submits,
    /// the only moments the count can grow.
    pub(crate) fn record_submit(
        &mut self,
        id: &str,
        family: Family,
        route: &str,
        submitted_ms: u64,
        now: Instant,
        ends: Instant,
    ) {
        self.tasks.push(TaskRecord {
            id: id.to_owned(),
            family,
            route: route.to_owned(),
            submitted_ms,
            ends,
        });
        let alive = self.tasks.iter().filter(|t| t.family == family && t.ends > now).count();
        let stats = self.families.entry(family).or_default();
        stats.submits += 1;
        stats.max_tasks_alive = stats.max_tasks_alive.max(alive as u64);
    }

    pub(crate) fn begin_request(&mut self, family: Family) {
        let stats = self.families.entry(family).or_default();
        stats.requests += 1;
        stats.concurrent += 1;
        stats.max_concurrent_requests = stats.max_concurrent_requests.max(stats.concurrent);
    }

    pub(crate) fn end_request(&mut self, family: Family) {
        if let Some(stats) = self.families.get_mut(&family) {
            // A reset while the request ran may have zeroed it already.
            stats.concurrent = stats.concurrent.saturating_sub(1);
        }
    }

    pub(crate) fn log_request(&mut self, entry: Value) {
        if self.log.len() < super::requests::CAP {
            self.log.push(entry);
        }
    }

    pub(crate) fn count_fault(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
    }

    pub(crate) fn to_json(&self) -> Value {
        let families: serde_json::Map<String, Value> = Family::ALL
            .iter()
            .map(|&family| {
                let s = self.families.get(&family).cloned().unwrap_or_default();
                let max_in_flight =
                    if family.has_tasks() { s.max_tasks_alive } else { s.max_concurrent_requests };
                let value = json!({
                    "requests": s.requests,
                    "submits": s.submits,
                    "max_in_flight": max_in_flight,
                    "max_concurrent_requests": s.max_concurrent_requests,
                });
                (family.name().to_owned(), value)
            })
            .collect();
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .map(|t| {
                json!({"id": t.id, "family": t.family.name(), "route": t.route,
                       "submitted_ms": t.submitted_ms})
            })
            .collect();
        let requests: u64 = self.families.values().map(|f| f.requests).sum();
        json!({"requests": requests, "families": families, "tasks": tasks, "faults": self.faults,
               "requests_log": self.log})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_families_and_control_routes_to_none() {
        assert_eq!(Family::classify("/v1/chat/completions"), Some(Family::Chat));
        assert_eq!(Family::classify("/suno/fetch/abc"), Some(Family::Suno));
        assert_eq!(Family::classify("/mj/image/1"), Some(Family::Files));
        assert_eq!(Family::classify("/_sim/files/x/video.mp4"), Some(Family::Files));
        assert_eq!(Family::classify("/_sim/stats"), None);
        assert_eq!(Family::classify("/v1/videos/task_1"), Some(Family::Videos));
    }
}
