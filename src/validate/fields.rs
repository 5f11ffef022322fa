//! Checks a step's `with` against its kind's field list: unknown, missing, wrong type,
//! value not among those the API takes. Templated values are checked when they render.

use serde_json::Value as Json;

use super::Checker;
use crate::contract::KindSpec;
use crate::diag::did_you_mean;
use crate::source::{KeyPath, Seg};
use crate::template::Tmpl;

pub(super) fn check(c: &mut Checker, spec: &KindSpec, with: &Tmpl, at: &KeyPath, run_shorthand: bool) {
    let path_of = |key: &str| -> KeyPath {
        let mut p = if run_shorthand && key == "run" { at[..2.min(at.len())].to_vec() } else { at.clone() };
        p.push(Seg::Key(key.to_owned()));
        p
    };
    let keys = match with {
        Tmpl::Map(_) | Tmpl::Lit(Json::Object(_)) => with.keys(),
        Tmpl::Expr(_) => return, // the whole `with` is computed: checked when it renders
        _ => {
            c.error(
                at,
                format!("`with` of a `{}` step must be a map of field names to values", spec.name),
                "write `with:` followed by indented `field: value` lines",
            );
            return;
        }
    };
    let names: Vec<&str> = spec.fields.iter().map(|f| f.name.as_str()).collect();
    if !spec.open {
        for key in &keys {
            if !names.contains(&key.as_str()) {
                let help = did_you_mean(key, names.iter().copied());
                c.error_at_key(
                    &path_of(key),
                    format!("`{}` has no field `{key}`", spec.name),
                    format!("{help}; `cometflow kinds {}` lists its fields", spec.name),
                );
            }
        }
    }
    for field in &spec.fields {
        let Some(value) = with.get(&field.name) else {
            if field.required {
                let hint = if field.name == "run" && spec.name == "shell" {
                    "add `run: <command>` to the step".to_string()
                } else {
                    format!("add `{}:` under `with:` ({})", field.name, field.description)
                };
                c.error_at_key(at, format!("`{}` needs the field `{}`", spec.name, field.name), hint);
            }
            continue;
        };
        let Tmpl::Lit(value) = value else { continue };
        if value.is_null() && !field.required {
            continue;
        }
        if !field.types.is_empty() && !field.types.iter().any(|t| t.accepts(&value)) {
            let want: Vec<&str> = field.types.iter().map(|t| t.name()).collect();
            c.error(
                &path_of(&field.name),
                format!("`{}` must be a {}, not {}", field.name, want.join(" or "), describe(&value)),
                format!("{}: {}", field.name, field.description),
            );
            continue;
        }
        if !field.values.is_empty() && !field.values.iter().any(|v| loosely_equal(v, &value)) {
            let mut allowed: Vec<String> = Vec::new();
            for v in &field.values {
                let text = format!("`{}`", plain(v));
                if !allowed.contains(&text) {
                    allowed.push(text);
                }
            }
            let text = plain(&value);
            let suggestion = crate::diag::suggest(&text, field.values.iter().filter_map(Json::as_str));
            let help = match suggestion {
                Some(s) => format!("did you mean `{s}`? allowed: {}", allowed.join(", ")),
                None => format!("allowed: {}", allowed.join(", ")),
            };
            c.error(&path_of(&field.name), format!("`{text}` is not a valid `{}`", field.name), help);
        }
    }
}

/// `"5"` and `5` are the same choice: APIs differ in which they document.
fn loosely_equal(a: &Json, b: &Json) -> bool {
    a == b || plain(a) == plain(b)
}

fn plain(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn describe(v: &Json) -> String {
    match v {
        Json::Null => "empty".into(),
        Json::Bool(b) => format!("the boolean `{b}`"),
        Json::Number(n) => format!("the number `{n}`"),
        Json::String(s) => format!("the text `{s}`"),
        Json::Array(_) => "a list".into(),
        Json::Object(_) => "a map".into(),
    }
}
