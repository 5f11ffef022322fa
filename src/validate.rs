//! `RawPipeline` -> `Pipeline`: every check that needs no I/O, all problems gathered.
//!
//! Durations are parsed, templates compiled, kinds resolved, references and `needs`
//! resolved to dependencies. Each problem becomes a diagnostic at its position in the file.

mod fields;
mod refs;
mod triggers;

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::diag::{did_you_mean, Diagnostic};
use crate::model::{
    parse_duration, Cond, InputSpec, InputType, Limit, Pipeline, PollPolicy, RetryPolicy, Step,
};
use crate::path;
use crate::source::{KeyPath, Seg, Source};
use crate::steps::Registry;
use crate::syntax::{self, RawDefaults, RawEnv, RawPipeline, RawPoll, RawRetry, RawStep};
use crate::template::Tmpl;

/// Reads, parses and checks a pipeline file.
pub fn load(path: &Path, registry: &Registry) -> Result<Pipeline, Vec<Diagnostic>> {
    let text = crate::diag::read_pipeline(path).map_err(|d| vec![d])?;
    let source = Source::new(path, text);
    let raw = syntax::parse_unique(&source)?;
    check(raw, &source, registry)
}

/// Parses and checks pipeline text that travelled with a queued run, as if read from `path`
/// (relative paths in it are relative to `path`'s folder).
pub fn load_text(path: &Path, text: String, registry: &Registry) -> Result<Pipeline, Vec<Diagnostic>> {
    let source = Source::new(path, text);
    let raw = syntax::parse_unique(&source)?;
    check(raw, &source, registry)
}

/// Gathers problems; only a pipeline without any is returned.
pub(crate) struct Checker<'a> {
    pub source: &'a Arc<Source>,
    pub diags: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub fn error(&mut self, path: &[Seg], message: impl Into<String>, help: impl Into<String>) {
        self.diags.push(Diagnostic::at(self.source, path, message).help(help));
    }

    pub fn error_at_key(&mut self, path: &[Seg], message: impl Into<String>, help: impl Into<String>) {
        self.diags.push(Diagnostic::at_key(self.source, path, message).help(help));
    }

    fn duration(&mut self, value: Option<&Yaml>, path: KeyPath) -> Option<std::time::Duration> {
        let text = match value? {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            _ => {
                self.error(&path, "expected a duration", "write e.g. `500ms`, `2s`, `15m` or `1h`");
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(msg) => {
                let help = if msg.contains("longest") {
                    "write a shorter duration, e.g. `30m` or `2h`"
                } else {
                    "durations take a unit: ms, s, m, h"
                };
                self.error(&path, msg, help);
                None
            }
        }
    }
}

/// Valid step ids: `[a-z0-9_]+`, so they read as template attributes.
fn valid_step_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn valid_pipeline_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

pub fn check(
    raw: RawPipeline,
    source: &Arc<Source>,
    registry: &Registry,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let mut c = Checker { source, diags: Vec::new() };

    let name = match raw.name {
        Some(n) if valid_pipeline_name(&n) => n,
        Some(n) => {
            c.error(
                &path!["name"],
                format!("pipeline name `{n}` may use only a-z, 0-9, `_` and `-`"),
                format!("rename it, e.g. `{}`", slug(&n, true)),
            );
            n
        }
        None => {
            c.error(&[], "the pipeline has no `name:`", "add e.g. `name: my-pipeline` at the top");
            String::new()
        }
    };

    let inputs = check_inputs(&mut c, raw.inputs);
    let listed = matches!(raw.env, RawEnv::Names(_));
    let env: IndexMap<String, Option<String>> = match raw.env {
        RawEnv::None => IndexMap::new(),
        RawEnv::Names(names) => names.into_iter().map(|n| (n, None)).collect(),
        RawEnv::Defaults(map) => map,
    };
    if let Some(i) = env.get_index_of("COMETAPI_KEY") {
        // A listed name reaches templates, scripts and their stored outputs.
        let at = if listed { path!["env", i] } else { path!["env", "COMETAPI_KEY"] };
        c.error(
            &at,
            "`COMETAPI_KEY` cannot be listed under `env:`: the key is for cometflow's own calls and would reach templates, scripts and stored outputs",
            "remove it; provider steps and `http` calls to `COMETAPI_BASE_URL` already send the key",
        );
    }
    let defaults = Defaults::check(&mut c, &raw.defaults);
    let concurrency = raw.concurrency.as_ref().and_then(|v| match v.as_u64() {
        Some(n) if n >= 1 => Some(n as usize),
        _ => {
            c.error(
                &path!["concurrency"],
                "`concurrency` must be a whole number of at least 1",
                "e.g. `concurrency: 8`",
            );
            None
        }
    });

    // Exactly the families `cometflow kinds` shows: each kind's spec names its own. Only
    // asked for when there are limits: listing every kind reads the whole catalog.
    let families: Vec<String> = if raw.limits.is_empty() {
        Vec::new()
    } else {
        let mut f: Vec<String> = registry.iter().map(|k| k.spec().family.clone()).collect();
        f.sort();
        f.dedup();
        f
    };
    let mut limits = IndexMap::new();
    for (family, l) in raw.limits {
        if !families.contains(&family) {
            let help = match registry.get(&family) {
                Some(kind) => format!(
                    "`{family}` is a kind of the `{}` family: write `{}`",
                    kind.spec().family,
                    kind.spec().family
                ),
                None => did_you_mean(&family, families.iter().map(String::as_str)),
            };
            c.error_at_key(
                &path!["limits", family.as_str()],
                format!("`{family}` is not a provider family"),
                format!(
                    "limits are keyed by the families `cometflow kinds` shows ({}); {help}",
                    families.join(", ")
                ),
            );
        }
        if l.concurrency == Some(0) {
            c.error(
                &path!["limits", family.as_str(), "concurrency"],
                "a concurrency limit of 0 would never run anything",
                "use 1 or more",
            );
        }
        limits.insert(family, Limit { concurrency: l.concurrency, per_minute: l.per_minute });
    }

    let triggers = triggers::check(&mut c, raw.on, &inputs);

    let raw_steps = match raw.steps {
        Some(s) if !s.is_empty() => s,
        Some(_) => {
            c.error(
                &path!["steps"],
                "`steps` is empty",
                "add at least one step, e.g. `hello: { run: echo hello }`",
            );
            IndexMap::new()
        }
        None => {
            c.error(&[], "the pipeline has no `steps:`", "add a `steps:` map of step ids to steps");
            IndexMap::new()
        }
    };
    let index: rustc_hash::FxHashMap<String, usize> =
        raw_steps.keys().enumerate().map(|(i, k)| (k.clone(), i)).collect();
    let mut steps = Vec::with_capacity(raw_steps.len());
    for (id, raw_step) in raw_steps {
        if let Some(step) = check_step(&mut c, registry, &defaults, id, *raw_step) {
            steps.push(step);
        }
    }

    let outputs: Vec<(String, Tmpl)> =
        raw.outputs.iter().map(|(k, v)| (k.clone(), Tmpl::from_yaml(v))).collect();

    let mut pipeline = Pipeline {
        name,
        description: raw.description,
        source: source.clone(),
        inputs,
        steps,
        index,
        concurrency,
        limits,
        budget: raw.budget.and_then(|b| b.calls),
        triggers,
        env,
        outputs,
    };
    // References need every step; with all of them built, check them even when other
    // problems were found, so one pass reports everything.
    if pipeline.steps.len() == pipeline.index.len() {
        refs::resolve(&mut c, &mut pipeline);
    }
    if c.diags.is_empty() {
        Ok(pipeline)
    } else {
        Err(c.diags)
    }
}

fn check_inputs(c: &mut Checker, raw: IndexMap<String, syntax::RawInput>) -> IndexMap<String, InputSpec> {
    let mut inputs = IndexMap::new();
    for (name, input) in raw {
        let at = path!["inputs", name.as_str()];
        let default = input.default.as_ref().map(yaml_to_json);
        let ty = match (&input.ty, &default) {
            (Some(t), _) => InputType::parse(t).unwrap_or_else(|| {
                let mut p = at.clone();
                p.push("type".into());
                c.error(&p, format!("unknown input type `{t}`"), did_you_mean(t, InputType::NAMES));
                InputType::Any
            }),
            (None, Some(d)) => InputType::of(d),
            (None, None) => InputType::String,
        };
        if let Some(d) = &default {
            if !ty.accepts(d) && !d.is_null() {
                let mut p = at.clone();
                p.push("default".into());
                c.error(
                    &p,
                    format!("the default of `{name}` is not a {}", ty.name()),
                    "make the default match the input's `type:`",
                );
            }
        }
        let required = input.required.unwrap_or(default.is_none());
        inputs.insert(name, InputSpec { ty, default, description: input.description, required });
    }
    inputs
}

/// Step settings from `defaults:`, already checked.
struct Defaults {
    retry: Option<RawRetry>,
    timeout: Option<std::time::Duration>,
    poll: Option<RawPoll>,
    cache: Option<bool>,
}

impl Defaults {
    fn check(c: &mut Checker, raw: &RawDefaults) -> Self {
        let timeout = c.duration(raw.timeout.as_ref(), path!["defaults", "timeout"]);
        let d = Defaults { retry: raw.retry.clone(), timeout, poll: raw.poll.clone(), cache: raw.cache };
        // Check the durations once here; steps that inherit them then need no report.
        if let Some(r) = &d.retry {
            retry(c, Some(r), None, path!["defaults", "retry"]);
        }
        if let Some(p) = &d.poll {
            poll(c, Some(p), None, path!["defaults", "poll"]);
        }
        d
    }
}

fn retry(c: &mut Checker, raw: Option<&RawRetry>, base: Option<&RawRetry>, at: KeyPath) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    for (r, at) in [(base, path!["defaults", "retry"]), (raw, at)] {
        let Some(r) = r else { continue };
        if let Some(a) = r.attempts {
            if a == 0 {
                let mut p = at.clone();
                p.push("attempts".into());
                c.error(
                    &p,
                    "`attempts` counts the first try too, so it must be at least 1",
                    "use `attempts: 1` for no retries",
                );
            }
            policy.attempts = a.max(1);
        }
        let mut p = at.clone();
        p.push("backoff".into());
        if let Some(b) = c.duration(r.backoff.as_ref(), p.clone()) {
            policy.backoff = b;
        }
        p.pop();
        p.push("max_backoff".into());
        if let Some(b) = c.duration(r.max_backoff.as_ref(), p) {
            policy.max_backoff = b;
        }
    }
    policy
}

fn poll(c: &mut Checker, raw: Option<&RawPoll>, base: Option<&RawPoll>, at: KeyPath) -> PollPolicy {
    let mut policy = PollPolicy::default();
    for (r, at) in [(base, path!["defaults", "poll"]), (raw, at)] {
        let Some(r) = r else { continue };
        let mut p = at.clone();
        p.push("interval".into());
        if let Some(d) = c.duration(r.interval.as_ref(), p.clone()) {
            policy.interval = d;
            policy.max_interval = policy.max_interval.max(d);
        }
        p.pop();
        p.push("max_interval".into());
        if let Some(d) = c.duration(r.max_interval.as_ref(), p) {
            policy.max_interval = d.max(policy.interval);
        }
    }
    policy
}

fn check_step(
    c: &mut Checker,
    registry: &Registry,
    defaults: &Defaults,
    id: String,
    raw: RawStep,
) -> Option<Step> {
    let at = path!["steps", id.as_str()];
    let sub = |k: &str| {
        let mut p = at.clone();
        p.push(k.into());
        p
    };
    if !valid_step_id(&id) {
        c.error_at_key(
            &at,
            format!("step id `{id}` may use only a-z, 0-9 and `_`"),
            format!("rename it, e.g. `{}`; ids are read in templates as `steps.<id>`", slug(&id, false)),
        );
    }

    let uses = match (&raw.uses, &raw.run) {
        (Some(u), None) => u.clone(),
        (None, Some(_)) => "shell".to_owned(),
        (Some(u), Some(_)) if u == "shell" => "shell".to_owned(),
        (Some(u), Some(_)) => {
            c.error_at_key(
                &sub("run"),
                format!("`run:` belongs to shell steps, but this step uses `{u}`"),
                "remove `run:`, or remove `uses:` to make it a shell step",
            );
            return None;
        }
        (None, None) => {
            c.error_at_key(
                &at,
                format!("step `{id}` has no `uses:`"),
                "say which kind of step it is, e.g. `uses: chat`, or give a shell command with `run:`",
            );
            return None;
        }
    };
    let Some(kind) = registry.get(&uses).cloned() else {
        let help = did_you_mean(&uses, registry.names());
        c.error(
            &sub("uses"),
            format!("unknown step kind `{uses}`"),
            format!("{help}; `cometflow kinds` lists them all"),
        );
        return None;
    };

    let mut with =
        raw.with.as_ref().map(Tmpl::from_yaml).unwrap_or(Tmpl::Lit(Json::Object(Default::default())));
    if let Some(run) = &raw.run {
        with = match with {
            Tmpl::Lit(Json::Object(mut m))
                if !m.contains_key("run") && !crate::template::is_template(run) =>
            {
                m.insert("run".into(), Json::String(run.clone()));
                Tmpl::Lit(Json::Object(m))
            }
            other => {
                let mut entries = match other {
                    Tmpl::Map(e) => e,
                    Tmpl::Lit(Json::Object(m)) => m.into_iter().map(|(k, v)| (k, Tmpl::Lit(v))).collect(),
                    _ => Vec::new(),
                };
                entries.retain(|(k, _)| k != "run");
                entries.insert(0, ("run".into(), Tmpl::parse_str(run)));
                Tmpl::Map(entries)
            }
        };
    }
    let with_at = if raw.run.is_some() && raw.with.is_none() { at.clone() } else { sub("with") };
    // Field problems are reported but keep the step, so its references are checked too.
    fields::check(c, kind.spec(), &with, &with_at, raw.run.is_some());
    for p in kind.check(&with) {
        push_problem(c, &with_at, p, raw.run.is_some());
    }
    let with = match kind.prepare(with) {
        Ok(w) => w,
        Err(problems) => {
            for p in problems {
                push_problem(c, &with_at, p, raw.run.is_some());
            }
            return None;
        }
    };

    let cond = match raw.cond.as_deref() {
        None => None,
        Some(Yaml::Bool(b)) => Some(Cond::Const(*b)),
        Some(Yaml::String(s)) => Some(Cond::Expr(s.trim().into())),
        Some(_) => {
            c.error(
                &sub("if"),
                "`if` must be an expression or true/false",
                "e.g. `if: \"{{ inputs.clips > 1 }}\"`",
            );
            None
        }
    };
    let for_each = match raw.for_each.as_deref() {
        None => None,
        Some(v @ Yaml::Sequence(_)) => Some(Tmpl::from_yaml(v)),
        Some(Yaml::String(s)) if crate::template::single_expression(s).is_some() => Some(Tmpl::parse_str(s)),
        Some(_) => {
            c.error(
                &sub("for_each"),
                "`for_each` must be a list or a `{{ expression }}` that yields one",
                "e.g. `for_each: \"{{ range(inputs.clips) }}\"` or `for_each: [a, b]`",
            );
            None
        }
    };

    let spec = kind.spec();
    let outputs = kind.output_names(&with);
    Some(Step {
        // Paths are built only for a step that sets or inherits the field: each is a few
        // allocations, and most steps set none of these.
        retry: match (raw.retry.as_deref(), defaults.retry.as_ref()) {
            (None, None) => RetryPolicy::default(),
            (r, base) => retry(c, r, base, sub("retry")),
        },
        timeout: match raw.timeout.as_deref() {
            None => defaults.timeout,
            t => c.duration(t, sub("timeout")).or(defaults.timeout),
        },
        poll: match (raw.poll.as_deref(), defaults.poll.as_ref()) {
            (None, None) => PollPolicy::default(),
            (r, base) => poll(c, r, base, sub("poll")),
        },
        cache: raw.cache.or(defaults.cache.filter(|_| spec.paid)).unwrap_or(spec.paid),
        continue_on_error: raw.continue_on_error.unwrap_or(false),
        id,
        uses,
        // The engine sees only the run-time contract; the load-time hooks are done with.
        kind: kind.clone(),
        outputs,
        description: raw.description,
        with,
        needs: raw_needs(&raw.needs),
        deps: Vec::new(),
        status_deps: Vec::new(),
        cond,
        for_each,
    })
}

fn raw_needs(n: &Option<syntax::OneOrMany>) -> Vec<String> {
    match n {
        None => Vec::new(),
        Some(syntax::OneOrMany::One(s)) => vec![s.clone()],
        Some(syntax::OneOrMany::Many(v)) => v.clone(),
    }
}

fn push_problem(c: &mut Checker, with_at: &KeyPath, p: crate::steps::Problem, run_shorthand: bool) {
    let mut path = with_at.clone();
    // `run:` written on the step itself lives at the step, not under `with`.
    if run_shorthand && p.path.first() == Some(&Seg::Key("run".into())) {
        path.truncate(2);
    }
    path.extend(p.path);
    let help = p.help.unwrap_or_else(|| "see `cometflow kinds` for this kind's fields".into());
    c.error(&path, p.message, help);
}

/// Turns a YAML value into JSON (keys become strings).
pub fn yaml_to_json(v: &Yaml) -> Json {
    match v {
        Yaml::Mapping(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    (k.as_str().map(str::to_owned).unwrap_or_else(|| yaml_scalar_text(k)), yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Sequence(s) => Json::Array(s.iter().map(yaml_to_json).collect()),
        Yaml::Tagged(t) => yaml_to_json(&t.value),
        other => serde_json::to_value(other).unwrap_or(Json::Null),
    }
}

fn yaml_scalar_text(v: &Yaml) -> String {
    serde_yaml::to_string(v).map(|s| s.trim().to_owned()).unwrap_or_default()
}

fn slug(s: &str, dashes: bool) -> String {
    let mut out: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || (dashes && c == '-') { c } else { '_' })
        .collect();
    if out.is_empty() {
        out.push_str("step");
    }
    out
}

/// Converts `-i name=value` overrides to typed inputs, falling back to defaults.
pub fn resolve_inputs(
    pipeline: &Pipeline,
    overrides: &[(String, String)],
) -> Result<IndexMap<String, Json>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut values = IndexMap::new();
    for (name, text) in overrides {
        match pipeline.inputs.get(name) {
            None => {
                let help = did_you_mean(name, pipeline.inputs.keys().map(String::as_str));
                diags.push(
                    Diagnostic::new(format!("`-i {name}=...`: the pipeline has no input `{name}`"))
                        .help(help),
                );
            }
            Some(spec) => match spec.ty.convert(text) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(msg) => diags.push(
                    Diagnostic::new(format!("`-i {name}=...`: {msg}"))
                        .help(format!("input `{name}` is a {}", spec.ty.name())),
                ),
            },
        }
    }
    for (name, spec) in &pipeline.inputs {
        if values.contains_key(name) {
            continue;
        }
        match &spec.default {
            Some(d) => {
                values.insert(name.clone(), d.clone());
            }
            None if spec.required => diags.push(
                Diagnostic::at_key(
                    &pipeline.source,
                    &path!["inputs", name.as_str()],
                    format!("input `{name}` is required and has no default"),
                )
                .help(format!("pass it with `-i {name}=...`")),
            ),
            None => {
                values.insert(name.clone(), Json::Null);
            }
        }
    }
    if diags.is_empty() {
        Ok(values)
    } else {
        Err(diags)
    }
}
