//! Step kinds: the implementations of the step contract and the registry `uses:` reads.
//!
//! The run-time side of a kind (its spec and `execute`) is `contract::StepKind`, all the
//! engine sees. [`Kind`] adds what `validate` needs at load time: rewriting and checking
//! `with` as templates, and naming outputs before the step runs. Provider kinds are
//! described by the catalog (`crate::catalog`) and reach CometAPI through the client they
//! are given when the registry is built.

pub mod media;
pub mod providers;
pub mod shell;
pub mod subtitle;
pub mod value;

use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;

use crate::api::Api;
use crate::contract::StepKind;
use crate::source::KeyPath;
use crate::template::Tmpl;

/// A step kind as `validate` sees it: the run-time contract plus load-time hooks.
pub trait Kind: StepKind {
    /// Rewrites `with` once at load time, before references are read from it.
    /// (`shell` turns template expressions in its script into environment variables.)
    fn prepare(&self, with: Tmpl) -> Result<Tmpl, Vec<Problem>> {
        Ok(with)
    }

    /// Checks beyond the spec's field list; paths are relative to `with`.
    fn check(&self, _with: &Tmpl) -> Vec<Problem> {
        Vec::new()
    }

    /// The outputs a step of this kind will have, when known before it runs.
    fn output_names(&self, _with: &Tmpl) -> Option<Vec<String>> {
        let spec = self.spec();
        (!spec.dynamic_outputs).then(|| spec.outputs.iter().map(|(n, _)| n.clone()).collect())
    }
}

/// A problem a kind found in its `with`, at a path relative to `with`.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: KeyPath,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(path: KeyPath, message: impl Into<String>) -> Self {
        Problem { path, message: message.into(), help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The kinds `uses:` can name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: IndexMap<String, Arc<dyn Kind>>,
    /// The catalog's kinds, built when first asked for: reading the catalog is about 3 ms,
    /// most of the start-up of a pipeline that uses only local kinds.
    catalog: Option<Arc<Catalog>>,
}

struct Catalog {
    api: Arc<Api>,
    kinds: OnceLock<IndexMap<String, Arc<dyn Kind>>>,
}

impl Catalog {
    fn kinds(&self) -> &IndexMap<String, Arc<dyn Kind>> {
        self.kinds.get_or_init(|| providers::kinds(&self.api))
    }
}

impl Registry {
    /// Every kind this build knows; provider kinds call CometAPI through `api`.
    pub fn new(api: Arc<Api>) -> Self {
        Registry { catalog: Some(Arc::new(Catalog { api, kinds: OnceLock::new() })), ..Registry::local() }
    }

    /// Every kind, calling CometAPI as the environment (or `.env`) configures it.
    pub fn from_env() -> Self {
        Registry::new(Arc::new(Api::new(crate::api::Endpoint::from_env())))
    }

    /// The local kinds, which need no network.
    pub fn local() -> Self {
        let mut r = Registry::default();
        r.add(Arc::new(value::Value::new()));
        r.add(Arc::new(shell::Shell::new()));
        r.add(Arc::new(media::Merge::new()));
        r.add(Arc::new(media::Concat::new()));
        r.add(Arc::new(subtitle::Subtitle::new()));
        r
    }

    pub fn add(&mut self, kind: Arc<dyn Kind>) {
        self.kinds.insert(kind.spec().name.clone(), kind);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Kind>> {
        self.kinds.get(name).or_else(|| self.catalog_kinds().get(name))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.entries().map(|(name, _)| name.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Kind>> {
        self.entries().map(|(_, kind)| kind)
    }

    /// Kinds added by name first, then the catalog's (a kind added under a catalog name
    /// replaces it).
    fn entries(&self) -> impl Iterator<Item = (&String, &Arc<dyn Kind>)> + Clone {
        let catalog = self.catalog_kinds().iter().filter(|(name, _)| !self.kinds.contains_key(*name));
        self.kinds.iter().chain(catalog)
    }

    fn catalog_kinds(&self) -> &IndexMap<String, Arc<dyn Kind>> {
        static NONE: OnceLock<IndexMap<String, Arc<dyn Kind>>> = OnceLock::new();
        match &self.catalog {
            Some(c) => c.kinds(),
            None => NONE.get_or_init(IndexMap::new),
        }
    }
}
