//! `value`: names values for later steps. No call at all; its outputs are its `with`.

use futures::future::BoxFuture;
use serde_json::Value as Json;

use crate::template::Tmpl;

use super::Kind;
use crate::contract::{KindSpec, StepCtx, StepError, StepKind};

pub struct Value {
    spec: KindSpec,
}

impl Value {
    pub fn new() -> Self {
        Value {
            spec: KindSpec {
                name: "value".into(),
                family: "local".into(),
                summary: "Names values for later steps: every key of `with` becomes an output.".into(),
                open: true,
                dynamic_outputs: true,
                idempotent: true,
                pure: true,
                ..KindSpec::default()
            },
        }
    }
}

impl Default for Value {
    fn default() -> Self {
        Self::new()
    }
}

impl Kind for Value {
    fn output_names(&self, with: &Tmpl) -> Option<Vec<String>> {
        matches!(with, Tmpl::Map(_) | Tmpl::Lit(Json::Object(_))).then(|| with.keys())
    }
}

impl StepKind for Value {
    fn spec(&self) -> &KindSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, _ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>> {
        Box::pin(async move {
            match with {
                Json::Object(_) => Ok(with),
                Json::Null => Ok(Json::Object(Default::default())),
                other => Err(StepError::fatal(format!(
                    "`with` must be a map of names to values, got {other}; write e.g. `with: {{ greeting: hello }}`"
                ))),
            }
        })
    }
}
