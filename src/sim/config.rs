//! Simulator knobs: the compact `key=value,...` spec (used by `run --simulate` and tests)
//! and the `cometflow sim` command-line flags. Both produce one [`SimConfig`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How the simulator behaves: which key it accepts, how long tasks take, which faults it injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The only bearer key accepted; `None` accepts any non-empty key.
    pub key: Option<String>,
    /// Time from a task's submission to its terminal state.
    pub task_time: Duration,
    /// Delay added before every answer (API routes and downloads).
    pub latency: Duration,
    /// Deliberate misbehaviour, for testing a client's retry policy.
    pub faults: Faults,
}

/// Deliberate misbehaviour. Every `*_every` counter is `0` for "never"; requests are
/// counted in arrival order across all API routes (control routes are never counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults {
    /// Every Nth API request answers 429 with a `Retry-After` header.
    pub rate_limit_every: u64,
    /// Seconds announced in `Retry-After`.
    pub retry_after: u64,
    /// Every Nth API request answers a retryable 500 or 503 (alternating).
    pub server_error_every: u64,
    /// Every Nth API request answers HTTP 200 with a truncated JSON body.
    pub malformed_every: u64,
    /// The first N downloads of each result file are cut off mid-body.
    pub truncate_downloads: u64,
    /// Every task ends in its family's failure state.
    pub fail_tasks: bool,
    /// The reason reported by failed tasks.
    pub fail_reason: String,
    /// Every API request is refused as an empty account would be (403, insufficient quota).
    pub quota_exhausted: bool,
    /// Every realtime `response.create` is answered with an `error` event.
    pub realtime_error: bool,
    /// The first N realtime sessions are dropped in the middle of their response.
    pub realtime_drop: u64,
    /// The first N realtime sessions are dropped before `session.created`.
    pub realtime_drop_early: u64,
    /// The first N streamed chat answers are cut off before `data: [DONE]`.
    pub cut_streams: u64,
    /// Every family answers in its other documented shape: Runway's poll wrapped in
    /// `{code, data}`, Suno lyrics as a list, `/v1/videos` jobs without a URL, MiniMax wrapped
    /// like its peers, Midjourney submits with code 21 and a first fetch `task_no_found`.
    pub alt_shapes: bool,
    /// When not empty, tasks never finish and report this status word while running.
    pub stuck_status: String,
    /// Task submits are accepted (the task exists and counts) but never answered.
    pub hang_submits: bool,
}

pub(crate) const DEFAULT_FAIL_REASON: &str = "content moderation: the prompt was flagged";

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate_limit_every: 0,
            retry_after: 1,
            server_error_every: 0,
            malformed_every: 0,
            truncate_downloads: 0,
            fail_tasks: false,
            fail_reason: DEFAULT_FAIL_REASON.to_owned(),
            quota_exhausted: false,
            realtime_error: false,
            realtime_drop: 0,
            realtime_drop_early: 0,
            cut_streams: 0,
            alt_shapes: false,
            stuck_status: String::new(),
            hang_submits: false,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            key: None,
            task_time: Duration::from_secs(2),
            latency: Duration::ZERO,
            faults: Faults::default(),
        }
    }
}

/// Why a simulator spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SimSpecError(String);

const KEYS: &[&str] = &[
    "task_time",
    "latency",
    "rate_limit_every",
    "retry_after",
    "server_error_every",
    "malformed_every",
    "truncate_downloads",
    "fail_tasks",
    "fail_reason",
    "quota_exhausted",
    "realtime_error",
    "realtime_drop",
    "realtime_drop_early",
    "cut_streams",
    "alt_shapes",
    "stuck_status",
    "hang_submits",
    "key",
];

impl FromStr for SimConfig {
    type Err = SimSpecError;

    /// Reads `task_time=200ms,latency=5ms,rate_limit_every=3,...`. Starts from the defaults;
    /// an empty spec is the default. A segment without `=` continues the previous
    /// `fail_reason` (so reasons may contain commas), or sets a bare boolean key to true.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut config = SimConfig::default();
        let mut last_key = "";
        for segment in spec.split(',') {
            let Some((key, value)) = segment.split_once('=') else {
                let bare = segment.trim();
                if bare.is_empty() {
                    continue;
                }
                if last_key == "fail_reason" {
                    config.faults.fail_reason.push(',');
                    config.faults.fail_reason.push_str(segment);
                    continue;
                }
                // Bare boolean switches: `fail_tasks`, `quota_exhausted`, `alt_shapes`, `hang_submits`.
                let switch = match bare {
                    "fail_tasks" => Some(&mut config.faults.fail_tasks),
                    "quota_exhausted" => Some(&mut config.faults.quota_exhausted),
                    "realtime_error" => Some(&mut config.faults.realtime_error),
                    "alt_shapes" => Some(&mut config.faults.alt_shapes),
                    "hang_submits" => Some(&mut config.faults.hang_submits),
                    _ => None,
                };
                if let Some(on) = switch {
                    *on = true;
                    last_key = KEYS.iter().find(|k| **k == bare).copied().unwrap_or("");
                    continue;
                }
                return Err(SimSpecError(format!(
                    "simulator setting `{bare}` has no value; write `{bare}=VALUE` (known settings: {})",
                    KEYS.join(", ")
                )));
            };
            let (key, value) = (key.trim(), value.trim());
            let bad = |why: String| SimSpecError(format!("simulator setting `{key}={value}`: {why}"));
            let faults = &mut config.faults;
            match key {
                "task_time" => config.task_time = parse_duration(value).map_err(bad)?,
                "latency" => config.latency = parse_duration(value).map_err(bad)?,
                "rate_limit_every" => faults.rate_limit_every = parse_count(value).map_err(bad)?,
                "retry_after" => faults.retry_after = parse_seconds(value).map_err(bad)?,
                "server_error_every" => faults.server_error_every = parse_count(value).map_err(bad)?,
                "malformed_every" => faults.malformed_every = parse_count(value).map_err(bad)?,
                "truncate_downloads" => faults.truncate_downloads = parse_count(value).map_err(bad)?,
                "fail_tasks" => faults.fail_tasks = parse_bool(value).map_err(bad)?,
                "fail_reason" => faults.fail_reason = value.to_owned(),
                "quota_exhausted" => faults.quota_exhausted = parse_bool(value).map_err(bad)?,
                "realtime_error" => faults.realtime_error = parse_bool(value).map_err(bad)?,
                "realtime_drop" => faults.realtime_drop = parse_count(value).map_err(bad)?,
                "realtime_drop_early" => faults.realtime_drop_early = parse_count(value).map_err(bad)?,
                "cut_streams" => faults.cut_streams = parse_count(value).map_err(bad)?,
                "alt_shapes" => faults.alt_shapes = parse_bool(value).map_err(bad)?,
                "stuck_status" => faults.stuck_status = value.to_owned(),
                "hang_submits" => faults.hang_submits = parse_bool(value).map_err(bad)?,
                "key" => config.key = (!value.is_empty()).then(|| value.to_owned()),
                unknown => return Err(unknown_key(unknown)),
            }
            last_key = KEYS.iter().find(|k| **k == key).copied().unwrap_or("");
        }
        Ok(config)
    }
}

fn unknown_key(key: &str) -> SimSpecError {
    let closest = KEYS
        .iter()
        .map(|k| (strsim::jaro_winkler(k, key), *k))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.8)
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    SimSpecError(format!("unknown simulator setting `{key}`{closest}; known settings: {}", KEYS.join(", ")))
}

/// Parses `500ms`, `2s`, `1.5s`, `1m` or `0`. A unit is required otherwise, because a
/// bare `2` is ambiguous (milliseconds or seconds?).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` needs a unit, e.g. `{text}ms` or `{text}s`"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration like 500ms, 2s or 1m"))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`; use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d <= crate::model::MAX_DURATION)
        .ok_or_else(|| format!("`{text}` is not a duration from 0 to 366 days"))
}

fn parse_count(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("`{text}` is not a whole number (0 turns the fault off)"))
}

/// `Retry-After` is whole seconds; accept `2` and `2s` alike.
fn parse_seconds(text: &str) -> Result<u64, String> {
    text.parse::<u64>().or_else(|_| parse_duration(text).map(|d| d.as_secs()))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}

impl fmt::Display for SimConfig {
    /// The compact spec form, readable back with `FromStr` (the key is not printed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fl = &self.faults;
        write!(
            f,
            "task_time={}ms,latency={}ms,rate_limit_every={},retry_after={},server_error_every={},\
             malformed_every={},truncate_downloads={},fail_tasks={},quota_exhausted={},\
             realtime_error={},realtime_drop={},realtime_drop_early={},cut_streams={},alt_shapes={},\
             hang_submits={}",
            self.task_time.as_millis(),
            self.latency.as_millis(),
            fl.rate_limit_every,
            fl.retry_after,
            fl.server_error_every,
            fl.malformed_every,
            fl.truncate_downloads,
            fl.fail_tasks,
            fl.quota_exhausted,
            fl.realtime_error,
            fl.realtime_drop,
            fl.realtime_drop_early,
            fl.cut_streams,
            fl.alt_shapes,
            fl.hang_submits
        )?;
        if !fl.stuck_status.is_empty() {
            write!(f, ",stuck_status={}", fl.stuck_status)?;
        }
        Ok(())
    }
}

/// `cometflow sim`: a local stand-in for CometAPI, for offline runs and tests.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port to listen on (127.0.0.1 only). Use 0 to pick a free port.
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Accept only this API key. Without it any non-empty bearer key is accepted.
    #[arg(long)]
    pub key: Option<String>,
    /// How long each task (Suno, Kling, Midjourney, /v1/videos) takes from submit to its
    /// terminal state, e.g. 500ms, 2s, 1m. Its status moves through the family's states.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub task_time: Duration,
    /// Delay added before every answer, e.g. 50ms, to make concurrency visible.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub latency: Duration,
    /// Answer every Nth API request with 429 and a Retry-After header (0 = never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub rate_limit_every: u64,
    /// Seconds announced in the Retry-After header of simulated 429s.
    #[arg(long, default_value_t = 1, value_name = "SECONDS")]
    pub retry_after: u64,
    /// Answer every Nth API request with a retryable 500/503 (0 = never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub server_error_every: u64,
    /// Answer every Nth API request with HTTP 200 and truncated JSON (0 = never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub malformed_every: u64,
    /// Cut off the first N downloads of each result file mid-body (0 = never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub truncate_downloads: u64,
    /// Make every task end in its family's failure state (Suno FAILURE, Kling failed, ...).
    /// To fail only some tasks, put `[sim:fail]` in their prompt instead.
    #[arg(long)]
    pub fail_tasks: bool,
    /// The failure reason reported when --fail-tasks is on.
    #[arg(long, default_value = DEFAULT_FAIL_REASON)]
    pub fail_reason: String,
    /// Refuse every API request as CometAPI does when the balance is used up (403).
    #[arg(long)]
    pub quota_exhausted: bool,
    /// Answer every realtime `response.create` with an `error` event.
    #[arg(long)]
    pub realtime_error: bool,
    /// Drop the first N realtime sessions in the middle of their response (0 = never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub realtime_drop: u64,
    /// Drop the first N realtime sessions before `session.created` (0 = never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub realtime_drop_early: u64,
    /// Cut off the first N streamed chat answers before `data: [DONE]` (0 = never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub cut_streams: u64,
    /// Answer in each family's other documented shape (Runway wrapped, Suno lyrics as a
    /// list, /v1/videos without a URL, MiniMax wrapped, Midjourney code 21 and a young
    /// task's `task_no_found`).
    #[arg(long)]
    pub alt_shapes: bool,
    /// Tasks never finish and report this status word while running (e.g. ON_HOLD).
    #[arg(long, default_value = "", value_name = "WORD")]
    pub stuck_status: String,
    /// Accept task submits (the task exists) but never answer them.
    #[arg(long)]
    pub hang_submits: bool,
}

impl From<SimArgs> for SimConfig {
    fn from(args: SimArgs) -> Self {
        SimConfig {
            key: args.key.filter(|k| !k.is_empty()),
            task_time: args.task_time,
            latency: args.latency,
            faults: Faults {
                rate_limit_every: args.rate_limit_every,
                retry_after: args.retry_after,
                server_error_every: args.server_error_every,
                malformed_every: args.malformed_every,
                truncate_downloads: args.truncate_downloads,
                fail_tasks: args.fail_tasks,
                fail_reason: args.fail_reason,
                quota_exhausted: args.quota_exhausted,
                realtime_error: args.realtime_error,
                realtime_drop: args.realtime_drop,
                realtime_drop_early: args.realtime_drop_early,
                cut_streams: args.cut_streams,
                alt_shapes: args.alt_shapes,
                stuck_status: args.stuck_status,
                hang_submits: args.hang_submits,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_spec_is_the_default() {
        assert_eq!("".parse::<SimConfig>().unwrap(), SimConfig::default());
        assert_eq!(SimConfig::default().task_time, Duration::from_secs(2));
        assert_eq!(SimConfig::default().key, None);
    }

    #[test]
    fn every_documented_key_is_read() {
        let c: SimConfig = "task_time=200ms,latency=5ms,rate_limit_every=3,retry_after=1,\
                            server_error_every=4,fail_tasks=true,fail_reason=nope,malformed_every=5,\
                            truncate_downloads=1,key=sk-test"
            .parse()
            .unwrap();
        assert_eq!(c.task_time, Duration::from_millis(200));
        assert_eq!(c.latency, Duration::from_millis(5));
        assert_eq!(c.key.as_deref(), Some("sk-test"));
        let f = &c.faults;
        assert_eq!((f.rate_limit_every, f.retry_after, f.server_error_every), (3, 1, 4));
        assert_eq!((f.malformed_every, f.truncate_downloads), (5, 1));
        assert!(f.fail_tasks);
        assert_eq!(f.fail_reason, "nope");
    }

    #[test]
    fn durations_take_ms_s_and_m() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("2").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("2h").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn unknown_keys_are_named_with_a_suggestion() {
        let err = "task_tme=1s".parse::<SimConfig>().unwrap_err().to_string();
        assert!(err.contains("unknown simulator setting `task_tme`"), "{err}");
        assert!(err.contains("did you mean `task_time`"), "{err}");
        assert!(err.contains("known settings:"), "{err}");
    }

    #[test]
    fn bad_values_say_which_setting() {
        let err = "rate_limit_every=often".parse::<SimConfig>().unwrap_err().to_string();
        assert!(err.contains("rate_limit_every=often"), "{err}");
        assert!("fail_tasks=maybe".parse::<SimConfig>().is_err());
    }

    #[test]
    fn a_fail_reason_may_contain_commas_and_fail_tasks_may_be_bare() {
        let c: SimConfig = "fail_tasks,fail_reason=flagged, sorry,task_time=1s".parse().unwrap();
        assert!(c.faults.fail_tasks);
        assert_eq!(c.faults.fail_reason, "flagged, sorry");
        assert_eq!(c.task_time, Duration::from_secs(1));
    }

    #[test]
    fn answer_variants_are_chosen_per_run() {
        let c: SimConfig = "alt_shapes,stuck_status=ON_HOLD,hang_submits".parse().unwrap();
        assert!(c.faults.alt_shapes && c.faults.hang_submits);
        assert_eq!(c.faults.stuck_status, "ON_HOLD");
        let back: SimConfig = c.to_string().parse().unwrap();
        assert_eq!(back.faults, c.faults);
    }

    #[test]
    fn display_round_trips_everything_but_the_key() {
        let c: SimConfig =
            "task_time=300ms,rate_limit_every=2,fail_tasks=true,realtime_error,realtime_drop=1,\
                            realtime_drop_early=2,cut_streams=3"
                .parse()
                .unwrap();
        let back: SimConfig = c.to_string().parse().unwrap();
        assert_eq!(back.faults, c.faults);
        assert_eq!(back.task_time, c.task_time);
        assert_eq!(back.faults.rate_limit_every, 2);
        assert!(back.faults.fail_tasks);
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn command_line_flags_become_a_config() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["sim", "--task-time", "500ms", "--fail-tasks", "--key", "sk-x"]).unwrap();
        assert_eq!(cli.sim.port, 8765);
        let config = SimConfig::from(cli.sim);
        assert_eq!(config.task_time, Duration::from_millis(500));
        assert_eq!(config.key.as_deref(), Some("sk-x"));
        assert!(config.faults.fail_tasks);
        assert_eq!(config.faults.fail_reason, DEFAULT_FAIL_REASON);
        assert!(Cli::try_parse_from(["sim", "--latency", "5"]).is_err(), "durations need a unit");
    }
}
