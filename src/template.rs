//! Templates: minijinja with strict undefined, typed single expressions, and references.
//!
//! Every string in a step's `with` may be a template. A string that is exactly one
//! `{{ expression }}` keeps the expression's type (a list stays a list); any other
//! template renders to a string. This module knows the scope's shape (`inputs`, `steps`,
//! `env`, `run`, `item`, `index`) but not where the values come from.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use minijinja::value::{Enumerator, Object, ObjectExt, Value};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value as Json;

use crate::source::{KeyPath, Seg};

/// A JSON value as templates read it: what `Value::from_serialize` gives (the same numbers,
/// strings and lists; an object's keys in sorted order), but an object is one exact-size
/// slice of entries instead of a B-tree whose first node takes 544 bytes. A run keeps every
/// finished step's outputs for templates: 100,000 one-key objects were 54 MB.
pub fn json_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            (None, None) => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(json_value).collect::<Vec<_>>()),
        Json::Object(map) => {
            let mut entries: Vec<(Value, Value)> =
                map.iter().map(|(k, v)| (Value::from(k.as_str()), json_value(v))).collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Value::from_object(SortedMap(entries.into_boxed_slice()))
        }
    }
}

/// A map sorted by key, as minijinja's own maps iterate.
#[derive(Debug)]
struct SortedMap(Box<[(Value, Value)]>);

impl Object for SortedMap {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.binary_search_by(|(k, _)| k.cmp(key)).ok().map(|i| self.0[i].1.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_rev_key_value_enumerator(|this| {
            Box::new(this.0.iter().map(|(k, v)| (k.clone(), v.clone())))
        })
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A value from the pipeline file, with its templates found once at load time.
#[derive(Debug, Clone, PartialEq)]
pub enum Tmpl {
    /// No template inside: used as it is.
    Lit(Json),
    /// Exactly one `{{ expr }}`: evaluates to the expression's own type.
    Expr(Arc<str>),
    /// Any other template: renders to a string.
    Text(Arc<str>),
    List(Vec<Tmpl>),
    Map(Vec<(String, Tmpl)>),
}

/// Names a template may use besides the scope: minijinja's global functions.
const GLOBALS: &[&str] = &["range", "dict", "namespace", "lipsum", "cycler", "joiner", "debug"];

/// Instructions one render may run (`COMETFLOW_TEMPLATE_FUEL`): a few hundred milliseconds at
/// most, so a template like nested `range(100000)` loops fails instead of freezing the engine
/// (rendering runs on the engine's threads; a step's `timeout` and Ctrl-C wait for it).
pub const DEFAULT_FUEL: u64 = 10_000_000;
/// The most text one template may render (`COMETFLOW_TEMPLATE_MAX_BYTES`).
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;

static MAX_OUTPUT: LazyLock<usize> = LazyLock::new(|| {
    std::env::var("COMETFLOW_TEMPLATE_MAX_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_OUTPUT)
});

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A typo in a template must be an error, never an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let fuel = std::env::var("COMETFLOW_TEMPLATE_FUEL").ok().and_then(|v| v.trim().parse().ok());
    env.set_fuel(Some(fuel.unwrap_or(DEFAULT_FUEL)));
    env.add_filter("fromjson", fromjson);
    env.add_filter("basename", |p: String| {
        std::path::Path::new(&p).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    });
    env
});

fn fromjson(s: String) -> Result<Value, minijinja::Error> {
    serde_json::from_str::<Json>(&s).map(|v| Value::from_serialize(&v)).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("fromjson: not JSON: {e}"))
    })
}

/// Whether a string holds template syntax at all.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression inside a string that is exactly `{{ expr }}` (surrounding space allowed).
pub fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.trim_start_matches('-').trim_end_matches('-');
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

impl Tmpl {
    /// Converts a YAML value, classifying each string once.
    pub fn from_yaml(value: &serde_yaml::Value) -> Tmpl {
        use serde_yaml::Value as Y;
        let tmpl = match value {
            Y::String(s) => return Tmpl::parse_str(s),
            // Exact capacities: collecting from these iterators reserved four entries at
            // least (a step's one-key `with` took 384 bytes; 38 MB for 100,000 steps).
            Y::Sequence(items) => {
                let mut list = Vec::with_capacity(items.len());
                list.extend(items.iter().map(Tmpl::from_yaml));
                Tmpl::List(list)
            }
            Y::Mapping(map) => {
                let mut entries = Vec::with_capacity(map.len());
                entries.extend(map.iter().map(|(k, v)| (yaml_key(k), Tmpl::from_yaml(v))));
                Tmpl::Map(entries)
            }
            Y::Tagged(t) => return Tmpl::from_yaml(&t.value),
            other => return Tmpl::Lit(serde_json::to_value(other).unwrap_or(Json::Null)),
        };
        tmpl.collapse()
    }

    pub fn parse_str(s: &str) -> Tmpl {
        if !is_template(s) {
            Tmpl::Lit(Json::String(s.to_owned()))
        } else if let Some(expr) = single_expression(s) {
            Tmpl::Expr(expr.into())
        } else {
            Tmpl::Text(s.into())
        }
    }

    /// A collection without templates becomes one literal, so rendering it is a clone.
    fn collapse(self) -> Tmpl {
        match self {
            Tmpl::List(items) if items.iter().all(|i| matches!(i, Tmpl::Lit(_))) => {
                Tmpl::Lit(Json::Array(items.into_iter().map(Tmpl::into_lit).collect()))
            }
            Tmpl::Map(entries) if entries.iter().all(|(_, v)| matches!(v, Tmpl::Lit(_))) => {
                Tmpl::Lit(Json::Object(entries.into_iter().map(|(k, v)| (k, v.into_lit())).collect()))
            }
            other => other,
        }
    }

    fn into_lit(self) -> Json {
        match self {
            Tmpl::Lit(v) => v,
            _ => Json::Null,
        }
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, Tmpl::Lit(_))
    }

    /// Whether rendering may take long: a `{% %}` block (a loop) somewhere inside. Plain
    /// `{{ }}` substitutions are cheap; such templates render off the engine's threads.
    pub fn has_blocks(&self) -> bool {
        match self {
            Tmpl::Text(src) => src.contains("{%"),
            Tmpl::List(items) => items.iter().any(Tmpl::has_blocks),
            Tmpl::Map(entries) => entries.iter().any(|(_, v)| v.has_blocks()),
            Tmpl::Lit(_) | Tmpl::Expr(_) => false,
        }
    }

    /// The entry `key` of a mapping, template or literal.
    pub fn get(&self, key: &str) -> Option<Tmpl> {
        match self {
            Tmpl::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            Tmpl::Lit(Json::Object(map)) => map.get(key).map(|v| Tmpl::Lit(v.clone())),
            _ => None,
        }
    }

    /// The keys of a mapping, in order.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Tmpl::Map(entries) => entries.iter().map(|(k, _)| k.clone()).collect(),
            Tmpl::Lit(Json::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Visits every template string with its key path (relative to this value).
    pub fn visit<'a>(&'a self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, TemplateRef<'a>)) {
        match self {
            Tmpl::Lit(_) => {}
            Tmpl::Expr(e) => f(path, TemplateRef::Expr(e)),
            Tmpl::Text(t) => f(path, TemplateRef::Text(t)),
            Tmpl::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    item.visit(path, f);
                    path.pop();
                }
            }
            Tmpl::Map(entries) => {
                for (k, v) in entries {
                    path.push(Seg::Key(k.clone()));
                    v.visit(path, f);
                    path.pop();
                }
            }
        }
    }

    /// Renders to a JSON value. The error names the key path of the failing template.
    pub fn render(&self, scope: &Value) -> Result<Json, RenderError> {
        let mut path = Vec::new();
        self.render_at(scope, &mut path)
    }

    fn render_at(&self, scope: &Value, path: &mut KeyPath) -> Result<Json, RenderError> {
        let fail =
            |path: &KeyPath, e: minijinja::Error| RenderError { path: path.clone(), message: describe(&e) };
        match self {
            Tmpl::Lit(v) => Ok(v.clone()),
            Tmpl::Expr(src) => eval_expression(src, scope).map_err(|e| fail(path, e)),
            Tmpl::Text(src) => {
                let tmpl = ENV.template_from_str(src).map_err(|e| fail(path, e))?;
                let mut out = Capped { bytes: Vec::new(), max: *MAX_OUTPUT };
                match tmpl.render_captured_to(scope, &mut out) {
                    Ok(_) => Ok(Json::String(String::from_utf8_lossy(&out.bytes).into_owned())),
                    Err(_) if out.bytes.len() >= out.max => Err(RenderError {
                        path: path.clone(),
                        message: format!(
                            "the template renders more than {} bytes; raise `COMETFLOW_TEMPLATE_MAX_BYTES` \
                             if that much text is expected",
                            out.max
                        ),
                    }),
                    Err(e) => Err(fail(path, e)),
                }
            }
            Tmpl::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    out.push(item.render_at(scope, path)?);
                    path.pop();
                }
                Ok(Json::Array(out))
            }
            Tmpl::Map(entries) => {
                let mut out = serde_json::Map::with_capacity(entries.len());
                for (k, v) in entries {
                    path.push(Seg::Key(k.clone()));
                    out.insert(k.clone(), v.render_at(scope, path)?);
                    path.pop();
                }
                Ok(Json::Object(out))
            }
        }
    }
}

/// A render's output, refused past `max` bytes.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            self.bytes.resize(self.max, 0);
            return Err(std::io::Error::other("template output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn yaml_key(k: &serde_yaml::Value) -> String {
    match k {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).map(|s| s.trim().to_owned()).unwrap_or_default(),
    }
}

/// A template string found in the pipeline, by its form.
#[derive(Debug, Clone, Copy)]
pub enum TemplateRef<'a> {
    Expr(&'a str),
    Text(&'a str),
}

impl TemplateRef<'_> {
    /// Compiles the template and returns the dotted variable paths it reads
    /// (`steps.a.outputs.text`), or minijinja's syntax error.
    pub fn references(&self) -> Result<HashSet<String>, String> {
        let vars = match self {
            TemplateRef::Expr(src) => ENV.compile_expression(src).map(|e| e.undeclared_variables(true)),
            TemplateRef::Text(src) => ENV.template_from_str(src).map(|t| t.undeclared_variables(true)),
        };
        vars.map(|v| v.into_iter().filter(|name| !GLOBALS.contains(&name.as_str())).collect())
            .map_err(|e| describe(&e))
    }
}

/// Evaluates one expression (the source of an `if`, or a single-expression value).
pub fn eval_expression(src: &str, scope: &Value) -> Result<Json, minijinja::Error> {
    let value = ENV.compile_expression(src)?.eval(scope)?;
    if value.is_undefined() {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::UndefinedError,
            format!("`{src}` is undefined"),
        ));
    }
    serde_json::to_value(&value)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string()))
}

/// Evaluates a condition; `{{ }}` around it is allowed.
pub fn eval_condition(src: &str, scope: &Value) -> Result<bool, RenderError> {
    let expr = single_expression(src).unwrap_or(src);
    let value = ENV
        .compile_expression(expr)
        .and_then(|e| e.eval(scope))
        .map_err(|e| RenderError { path: Vec::new(), message: describe(&e) })?;
    if value.is_undefined() {
        return Err(RenderError { path: Vec::new(), message: format!("`{expr}` is undefined") });
    }
    Ok(value.is_true())
}

/// The expression of a condition, for reference extraction.
pub fn condition_ref(src: &str) -> TemplateRef<'_> {
    TemplateRef::Expr(single_expression(src).unwrap_or(src))
}

/// minijinja's message without its internal template names.
fn describe(err: &minijinja::Error) -> String {
    let mut msg = match err.detail() {
        Some(detail) => format!("{}: {detail}", kind_text(err.kind())),
        None => kind_text(err.kind()).to_string(),
    };
    if let Some(line) = err.line().filter(|&l| l > 1) {
        msg.push_str(&format!(" (template line {line})"));
    }
    msg
}

fn kind_text(kind: minijinja::ErrorKind) -> &'static str {
    use minijinja::ErrorKind as K;
    match kind {
        K::UndefinedError => "undefined value",
        K::SyntaxError => "template syntax error",
        K::UnknownFilter => "unknown filter",
        K::UnknownFunction => "unknown function",
        K::UnknownTest => "unknown test",
        K::InvalidOperation => "invalid operation",
        K::MissingArgument => "missing argument",
        K::TooManyArguments => "too many arguments",
        K::CannotUnpack => "cannot unpack",
        K::OutOfFuel => "the template ran too long (out of fuel; `COMETFLOW_TEMPLATE_FUEL` sets the limit)",
        _ => "template error",
    }
}

/// A template failed while rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderError {
    pub path: KeyPath,
    pub message: String,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", display_path(&self.path), self.message)
        }
    }
}

/// `with.messages[0].content`
pub fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// What a step's templates can see. Shared by every step of a run; `item`/`index` added per item.
#[derive(Debug)]
pub struct Scope {
    pub inputs: Value,
    pub env: Value,
    pub run: Value,
    pub steps: Value,
    pub item: Option<(Value, usize)>,
}

impl Scope {
    /// The same scope with `item` and `index` bound, for one `for_each` item.
    pub fn with_item(self: &Arc<Self>, item: &Json, index: usize) -> Value {
        Value::from_object(Scope {
            inputs: self.inputs.clone(),
            env: self.env.clone(),
            run: self.run.clone(),
            steps: self.steps.clone(),
            item: Some((Value::from_serialize(item), index)),
        })
    }
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "inputs" => Some(self.inputs.clone()),
            "steps" => Some(self.steps.clone()),
            "env" => Some(self.env.clone()),
            "run" => Some(self.run.clone()),
            "item" => self.item.as_ref().map(|(v, _)| v.clone()),
            "index" => self.item.as_ref().map(|(_, i)| Value::from(*i)),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["inputs", "steps", "env", "run"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(inputs: Json) -> Value {
        Value::from_object(Scope {
            inputs: Value::from_serialize(&inputs),
            env: Value::from_serialize(json!({})),
            run: Value::from_serialize(json!({"id": "r1"})),
            steps: Value::from_serialize(
                json!({"a": {"outputs": {"list": [1, 2], "text": "hi"}, "status": "succeeded"}}),
            ),
            item: None,
        })
    }

    fn yaml(s: &str) -> Tmpl {
        Tmpl::from_yaml(&serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn a_single_expression_keeps_its_type() {
        let t = yaml("x: '{{ steps.a.outputs.list }}'\ny: '{{ inputs.n + 1 }}'");
        assert_eq!(t.render(&scope(json!({"n": 2}))).unwrap(), json!({"x": [1, 2], "y": 3}));
    }

    #[test]
    fn anything_else_renders_to_a_string() {
        let t = yaml("x: 'n={{ inputs.n }}'");
        assert_eq!(t.render(&scope(json!({"n": 2}))).unwrap(), json!({"x": "n=2"}));
    }

    #[test]
    fn collections_without_templates_are_literals() {
        assert_eq!(yaml("{a: [1, b], c: {d: true}}"), Tmpl::Lit(json!({"a": [1, "b"], "c": {"d": true}})));
    }

    #[test]
    fn a_typo_is_an_error_not_an_empty_string() {
        let t = yaml("x: 'hello {{ steps.a.outputs.txet }}'");
        let err = t.render(&scope(json!({}))).unwrap_err();
        assert_eq!(err.path, crate::path!["x"]);
        assert!(err.message.contains("undefined"), "{}", err.message);
        let t = yaml("x: '{{ steps.a.outputs.txet }}'");
        assert!(t.render(&scope(json!({}))).is_err());
    }

    #[test]
    fn references_are_found_by_parsing_not_grepping() {
        let r = TemplateRef::Text(
            "{# steps.c #}{{ steps.a.outputs.text | upper }} {{ range(inputs.n) | list }} 'steps.b'",
        )
        .references()
        .unwrap();
        let mut r: Vec<_> = r.into_iter().collect();
        r.sort();
        assert_eq!(r, ["inputs.n", "steps.a.outputs.text"]);
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let t =
            yaml("x: '{% for a in range(100000) %}{% for b in range(100000) %}.{% endfor %}{% endfor %}'");
        let started = std::time::Instant::now();
        let err = t.render(&scope(json!({}))).unwrap_err();
        assert!(err.message.contains("out of fuel"), "{}", err.message);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
        let big = yaml("x: '{% for a in range(100000) %}{{ \"y\" * 1000 }}{% endfor %}'");
        let err = big.render(&scope(json!({}))).unwrap_err();
        assert!(err.message.contains("out of fuel") || err.message.contains("bytes"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(TemplateRef::Text("{{ a + }}").references().unwrap_err().contains("syntax"));
    }

    #[test]
    fn conditions_accept_braces_or_bare_expressions() {
        let s = scope(json!({"n": 2}));
        assert!(eval_condition("{{ inputs.n > 1 }}", &s).unwrap());
        assert!(!eval_condition("inputs.n > 5", &s).unwrap());
    }
}
