//! Resolves what each step reads: `needs`, and every `steps.<id>` / `inputs.<name>` /
//! `env.<NAME>` / `run.<field>` reference in its templates. References become dependencies.

use super::Checker;
use crate::diag::did_you_mean;
use crate::model::{Cond, Pipeline};
use crate::path;
use crate::source::{KeyPath, Seg, Span};
use crate::template::{condition_ref, TemplateRef};

const SCOPE: &[&str] = &["inputs", "steps", "env", "run"];
const RUN_FIELDS: &[&str] = &["id", "dir", "started_at"];

/// Where a template sits, which decides what it may read.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    With,
    If,
    ForEach,
    Outputs,
}

/// Past this many problems, a bad step id gets no suggestion: comparing every bad reference
/// with every step id made validation quadratic (50,000 bad steps never finished).
const SUGGESTIONS: usize = 20;

fn suggest_step(c: &Checker, id: &str, p: &Pipeline) -> String {
    if c.diags.len() < SUGGESTIONS {
        did_you_mean(id, p.index.keys().map(String::as_str))
    } else {
        "check the step id against the pipeline's `steps:`".into()
    }
}

pub(super) fn resolve(c: &mut Checker, p: &mut Pipeline) {
    for idx in 0..p.steps.len() {
        let mut deps: Vec<usize> = Vec::new();
        let mut status_deps: Vec<usize> = Vec::new();
        let pipeline: &Pipeline = p;
        let step = &pipeline.steps[idx];
        // Key paths are built only where a diagnostic may need them: a few allocations
        // each, for every step of a valid pipeline too.
        let at = || path!["steps", step.id.as_str()];

        for (i, need) in step.needs.iter().enumerate() {
            let np = || {
                let mut np = at();
                np.extend([Seg::Key("needs".into()), Seg::Index(i)]);
                np
            };
            match pipeline.index.get(need) {
                Some(&d) if d == idx => {
                    c.error(&np(), format!("step `{need}` needs itself"), "remove it from `needs`")
                }
                Some(&d) => deps.push(d),
                None => {
                    let help = suggest_step(c, need, pipeline);
                    c.error(&np(), format!("`needs` names `{need}`, which is not a step"), help);
                }
            }
        }

        // Each template is checked as it is visited, with the path it sits at.
        let mut check = |c: &mut Checker, path: &KeyPath, place: Place, t: TemplateRef| {
            let refs = match t.references() {
                Ok(r) => r,
                Err(msg) => {
                    c.error(path, msg, "fix the template; see the minijinja syntax in the README");
                    return;
                }
            };
            let mut refs: Vec<String> = refs.into_iter().collect();
            refs.sort();
            for r in refs {
                let found = check_ref(c, pipeline, Some(idx), path, place, &r);
                if let Some((dep, reads_status)) = found {
                    deps.push(dep);
                    if reads_status && place == Place::If {
                        status_deps.push(dep);
                    }
                }
            }
        };
        if !step.with.is_literal() {
            let mut with_at = at();
            with_at.push("with".into());
            step.with.visit(&mut with_at, &mut |path, t| check(c, path, Place::With, t));
        }
        if let Some(Cond::Expr(e)) = &step.cond {
            let mut ip = at();
            ip.push("if".into());
            check(c, &ip, Place::If, condition_ref(e));
        }
        if let Some(fe) = &step.for_each {
            let mut fp = at();
            fp.push("for_each".into());
            fe.visit(&mut fp, &mut |path, t| check(c, path, Place::ForEach, t));
        }
        deps.sort_unstable();
        deps.dedup();
        status_deps.sort_unstable();
        status_deps.dedup();
        p.steps[idx].deps = deps;
        p.steps[idx].status_deps = status_deps;
    }

    let outputs: Vec<_> = p.outputs.clone();
    for (name, t) in &outputs {
        let at = path!["outputs", name.as_str()];
        t.visit(&mut at.clone(), &mut |path, tr| match tr.references() {
            Ok(refs) => {
                let mut refs: Vec<String> = refs.into_iter().collect();
                refs.sort();
                for r in refs {
                    check_ref(c, p, None, path, Place::Outputs, &r);
                }
            }
            Err(msg) => c.error(path, msg, "fix the template"),
        });
    }
}

/// Checks one dotted reference; returns the step it reads (and whether only its status).
fn check_ref(
    c: &mut Checker,
    p: &Pipeline,
    me: Option<usize>,
    path: &KeyPath,
    place: Place,
    r: &str,
) -> Option<(usize, bool)> {
    let segs: Vec<&str> = r.split('.').collect();
    let suggest = c.diags.len() < SUGGESTIONS;
    // The span is looked up only for an error: a valid pipeline never builds the index.
    let mut err = |msg: String, help: String| {
        let span = ref_span(c, path, r);
        let d = crate::diag::Diagnostic::new(msg).with_span(c.source, span).help(help);
        c.diags.push(d);
    };
    match segs[0] {
        "steps" => {
            let Some(&id) = segs.get(1) else {
                err(
                    "`steps` must be followed by a step id".into(),
                    "write `steps.<id>.outputs.<name>` or `steps.<id>.status`".into(),
                );
                return None;
            };
            let Some(&dep) = p.index.get(id) else {
                let help = if suggest {
                    did_you_mean(id, p.index.keys().map(String::as_str))
                } else {
                    "check the step id against the pipeline's `steps:`".into()
                };
                err(format!("unknown step `{id}` in `{r}`"), help);
                return None;
            };
            if Some(dep) == me {
                err(
                    format!("step `{id}` reads its own outputs"),
                    "a step can read only steps that run before it".into(),
                );
                return None;
            }
            match segs.get(2).copied() {
                None | Some("outputs") | Some("status") => {}
                Some(other) => {
                    err(
                        format!("`steps.{id}` has no `{other}`"),
                        format!(
                            "{}; a step has `outputs` and `status`",
                            did_you_mean(other, ["outputs", "status"])
                        ),
                    );
                    return None;
                }
            }
            let target = &p.steps[dep];
            if let (Some("outputs"), Some(name)) = (segs.get(2).copied(), segs.get(3).copied()) {
                if target.for_each.is_some() {
                    err(
                        format!("step `{id}` runs `for_each`, so `steps.{id}.outputs` is a list, with no `{name}`"),
                        format!("take one item's output with `steps.{id}.outputs[0].{name}`, or all of them with `steps.{id}.outputs | map(attribute='{name}') | list`"),
                    );
                    return None;
                }
                if let Some(names) = &target.outputs {
                    if !names.iter().any(|n| n == name) {
                        let help = did_you_mean(name, names.iter().map(String::as_str));
                        err(format!("step `{id}` ({}) has no output `{name}`", target.uses), help);
                        return None;
                    }
                }
            }
            Some((dep, segs.get(2) == Some(&"status")))
        }
        "inputs" => {
            if let Some(&name) = segs.get(1) {
                if !p.inputs.contains_key(name) {
                    let help = did_you_mean(name, p.inputs.keys().map(String::as_str));
                    err(format!("unknown input `{name}`"), format!("{help}; declare it under `inputs:`"));
                }
            }
            None
        }
        "env" => {
            if let Some(&name) = segs.get(1) {
                if !p.env.contains_key(name) && !name.starts_with("COMETFLOW_") {
                    err(format!("`env.{name}` is not listed under the pipeline's `env:`"), format!("add `env: [{name}]` at the top of the pipeline; templates see only listed variables and those starting with COMETFLOW_"));
                }
            }
            None
        }
        "run" => {
            if let Some(&field) = segs.get(1) {
                if !RUN_FIELDS.contains(&field) {
                    err(format!("`run` has no `{field}`"), did_you_mean(field, RUN_FIELDS.iter().copied()));
                }
            }
            None
        }
        "item" | "index" if place == Place::With && me.is_some_and(|i| p.steps[i].for_each.is_some()) => None,
        "item" | "index" => {
            err(
                format!("`{}` exists only inside a `for_each` step's `with`", segs[0]),
                "add `for_each:` to the step, or remove the reference".into(),
            );
            None
        }
        other => {
            let mut names: Vec<&str> = SCOPE.to_vec();
            if me.is_some_and(|i| p.steps[i].for_each.is_some()) {
                names.extend(["item", "index"]);
            }
            let help = did_you_mean(other, names.iter().copied());
            err(
                format!("unknown name `{other}` in a template"),
                format!(
                    "{help}; templates can read {}",
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
            );
            None
        }
    }
}

/// The reference's own position inside the template's text when it can be found there.
fn ref_span(c: &Checker, path: &KeyPath, r: &str) -> Span {
    let base = c.source.value_span(path);
    let segs: Vec<&str> = r.split('.').collect();
    let needle = segs[..segs.len().min(2)].join(".");
    let text = &c.source.text;
    let window_end = text.len().min(base.offset + base.len.max(4096));
    let found = text[base.offset.min(text.len())..window_end].find(&needle).map(|i| base.offset + i);
    match found {
        Some(offset) => Span { offset, len: r.len().min(text.len() - offset) },
        None => base,
    }
}
