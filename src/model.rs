//! The checked pipeline: what `validate` produces and everything after it consumes.
//!
//! Values here are already interpreted (durations parsed, templates classified, kinds
//! resolved, dependencies known), so the planner and the engine never re-check input.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::contract::StepKind;
pub use crate::contract::{PollPolicy, StepIdx};
use crate::source::Source;
use crate::template::Tmpl;
use crate::trigger::Trigger;

#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    pub source: Arc<Source>,
    pub inputs: IndexMap<String, InputSpec>,
    pub steps: Vec<Step>,
    /// Step ids to positions; read on every template that names a step, so a fast hash.
    pub index: rustc_hash::FxHashMap<String, StepIdx>,
    pub concurrency: Option<usize>,
    pub limits: IndexMap<String, Limit>,
    pub budget: Option<u64>,
    pub triggers: Triggers,
    /// Variables templates may read as `env.NAME`, with defaults for unset ones.
    pub env: IndexMap<String, Option<String>>,
    pub outputs: Vec<(String, Tmpl)>,
}

impl Pipeline {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.index.get(id).map(|&i| &self.steps[i])
    }
}

pub struct Step {
    pub id: String,
    pub uses: String,
    pub kind: Arc<dyn StepKind>,
    /// The outputs it will have, when known before it runs (checked by references).
    pub outputs: Option<Vec<String>>,
    pub description: Option<String>,
    pub with: Tmpl,
    /// `needs:` as written; resolved into `deps`.
    pub needs: Vec<String>,
    /// Every step this one waits for: `needs` plus every `steps.<id>` its templates read.
    pub deps: Vec<StepIdx>,
    /// Dependencies whose `status` the `if` reads: their skip or failure does not skip this step.
    pub status_deps: Vec<StepIdx>,
    pub cond: Option<Cond>,
    pub for_each: Option<Tmpl>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub poll: PollPolicy,
    pub cache: bool,
    pub continue_on_error: bool,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("id", &self.id)
            .field("uses", &self.uses)
            .field("deps", &self.deps)
            .finish()
    }
}

impl Step {
    /// The provider family a kind belongs to, as `limits:` names it (from its spec).
    pub fn family(&self) -> &str {
        &self.kind.spec().family
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Const(bool),
    Expr(Arc<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 1, backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: a random wait up to `backoff * 2^(n-1)`, capped.
    pub fn delay(&self, failed_attempt: u32) -> Duration {
        let exp = self.backoff.saturating_mul(1u32 << failed_attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_backoff);
        // Half fixed, half random: never zero, never a thundering herd.
        cap / 2 + cap.mul_f64(fastrand::f64() / 2.0)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limit {
    pub concurrency: Option<usize>,
    pub per_minute: Option<u32>,
}

/// `on:`, checked: parsed crons with their zones, policies and the inputs each fire's run
/// gets, and compiled watch globs.
#[derive(Debug, Clone, Default)]
pub struct Triggers {
    pub schedule: Vec<Trigger>,
    pub watch: Vec<globset::Glob>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub ty: InputType,
    pub default: Option<Json>,
    pub description: Option<String>,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Object,
    Any,
}

impl InputType {
    pub const NAMES: [&'static str; 6] = ["string", "integer", "number", "boolean", "list", "object"];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" | "str" => InputType::String,
            "integer" | "int" => InputType::Integer,
            "number" | "float" => InputType::Number,
            "boolean" | "bool" => InputType::Boolean,
            "list" | "array" => InputType::List,
            "object" | "map" => InputType::Object,
            _ => return None,
        })
    }

    /// The type a default value implies when no `type:` is given.
    pub fn of(value: &Json) -> Self {
        match value {
            Json::String(_) => InputType::String,
            Json::Number(n) if n.is_i64() || n.is_u64() => InputType::Integer,
            Json::Number(_) => InputType::Number,
            Json::Bool(_) => InputType::Boolean,
            Json::Array(_) => InputType::List,
            Json::Object(_) => InputType::Object,
            Json::Null => InputType::Any,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::List => "list",
            InputType::Object => "object",
            InputType::Any => "any",
        }
    }

    /// Converts a command-line `-i name=value` text to this type.
    pub fn convert(self, text: &str) -> Result<Json, String> {
        let t = text.trim();
        match self {
            InputType::String => Ok(Json::String(text.to_owned())),
            InputType::Integer => {
                t.parse::<i64>().map(Json::from).map_err(|_| format!("`{text}` is not an integer"))
            }
            InputType::Number => t
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Json::Number)
                .ok_or_else(|| format!("`{text}` is not a number")),
            InputType::Boolean => match t.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Json::Bool(true)),
                "false" | "no" | "off" | "0" => Ok(Json::Bool(false)),
                _ => Err(format!("`{text}` is not a boolean (use true or false)")),
            },
            InputType::List | InputType::Object => {
                let v: Json = serde_yaml::from_str(text)
                    .map_err(|e| format!("`{text}` is not valid YAML/JSON: {e}"))?;
                if self.accepts(&v) {
                    Ok(v)
                } else {
                    Err(format!("`{text}` is not a {}", self.name()))
                }
            }
            InputType::Any => {
                Ok(serde_yaml::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned())))
            }
        }
    }

    pub fn accepts(self, v: &Json) -> bool {
        match self {
            InputType::Any => true,
            InputType::Number => v.is_number(),
            other => InputType::of(v) == other,
        }
    }
}

/// The longest duration anything accepts: longer ones are typos, and timers of centuries
/// overflow the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86400);

/// Parses `500ms`, `2s`, `15m`, `1h`, `1h30m`, or a bare number of seconds, up to
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let too_long = || format!("`{text}` is longer than the longest duration allowed (366 days)");
    let checked = |secs: f64| {
        if secs.is_finite() && secs >= 0.0 && secs <= MAX_DURATION.as_secs_f64() {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(too_long())
        }
    };
    if let Ok(secs) = t.parse::<f64>() {
        if secs >= 0.0 && !secs.is_nan() {
            return checked(secs);
        }
    }
    let bad = || format!("`{text}` is not a duration; write e.g. `500ms`, `2s`, `15m` or `1h`");
    let mut total = 0.0;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_end = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = tail;
    }
    checked(total)
}

/// A duration as people read it: `850ms`, `2.5s`, `3m07s`, `1h05m`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
        for huge in ["1e20", "99999999999999999999s", "1e25", "inf", "367d", "99999999999999999999999h"] {
            assert!(parse_duration(huge).unwrap_err().contains("longest duration"), "{huge}");
        }
        assert_eq!(parse_duration("366d").unwrap(), MAX_DURATION);
    }

    #[test]
    fn command_line_inputs_take_their_declared_type() {
        assert_eq!(InputType::Integer.convert("3").unwrap(), json!(3));
        assert!(InputType::Integer.convert("three").is_err());
        assert_eq!(InputType::Boolean.convert("yes").unwrap(), json!(true));
        assert_eq!(InputType::List.convert("[a, 2]").unwrap(), json!(["a", 2]));
        assert_eq!(InputType::String.convert("42").unwrap(), json!("42"));
        assert_eq!(InputType::Number.convert("2.5").unwrap(), json!(2.5));
    }

    #[test]
    fn backoff_grows_and_stays_under_its_cap() {
        let p =
            RetryPolicy { attempts: 5, backoff: Duration::from_secs(2), max_backoff: Duration::from_secs(5) };
        assert!(p.delay(1) >= Duration::from_secs(1) && p.delay(1) <= Duration::from_secs(2));
        assert!(p.delay(2) >= Duration::from_secs(2) && p.delay(2) <= Duration::from_secs(4));
        assert!(p.delay(9) <= Duration::from_secs(5));
    }
}
