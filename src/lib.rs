//! cometflow: run YAML pipelines of generative-AI calls as a concurrent DAG.
pub mod media;
