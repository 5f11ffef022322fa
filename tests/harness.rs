//! A builder for one invocation of the binary in a fresh temporary folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value as Json;

pub const BIN: &str = env!("CARGO_BIN_EXE_cometflow");

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

impl Test {
    pub fn new() -> Self {
        Test { dir: tempfile::tempdir().unwrap(), args: Vec::new(), env: Vec::new() }
    }

    /// Writes `pipeline.yaml`, the file most tests run.
    pub fn pipeline(self, yaml: &str) -> Self {
        self.file("pipeline.yaml", yaml)
    }

    pub fn file(self, name: &str, content: &str) -> Self {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn command(&self) -> Command {
        self.command_with(&self.args)
    }

    fn command_with(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("COMETFLOW_STATE_DIR", self.state_dir())
            .env("NO_COLOR", "1")
            .env_remove("COMETAPI_KEY")
            .env_remove("COMETAPI_BASE_URL")
            .env_remove("COMETFLOW_SIM")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self) -> Output {
        Self::output(self.command())
    }

    /// Runs with `extra` after the builder's arguments, in the same folder.
    pub fn run_with(&self, extra: &[&str]) -> Output {
        let args: Vec<String> =
            self.args.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect();
        Self::output(self.command_with(&args))
    }

    /// Runs another command in the same folder, with the same state directory.
    pub fn then(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Self::output(self.command_with(&args))
    }

    /// Like [`Test::then`], with more environment for this command only.
    pub fn then_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut cmd = self.command_with(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::output(cmd)
    }

    fn output(mut cmd: Command) -> Output {
        let out = cmd.output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and requires an exit code, showing stderr when it differs.
    pub fn expect(&self, code: i32) -> Output {
        let out = self.run();
        assert_eq!(out.code, code, "exit code\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
        out
    }
}
