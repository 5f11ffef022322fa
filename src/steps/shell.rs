//! `shell`: runs a local command. Template values reach the script as environment
//! variables, never as shell code (see `script`). Output lines stream to the log; lines
//! appended to `$COMETFLOW_OUTPUT` as `key=value` become outputs.

mod direct;
mod script;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use futures::future::BoxFuture;
use serde_json::{Map, Value as Json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::{Kind, Problem};
use crate::contract::{FieldSpec, FieldType, KindSpec, StepCtx, StepError, StepKind, Stream};
use crate::template::Tmpl;

/// Keeps this much of each stream in the outputs; the log still sees every line.
const CAPTURE_LIMIT: usize = 4 << 20;
/// The hidden `with` entry holding the script's template expressions.
const VARS: &str = "__vars";
/// Outputs that only cometflow sets.
const BUILT_INS: &[&str] = &["stdout", "stderr", "exit_code"];

pub struct Shell {
    spec: KindSpec,
}

impl Shell {
    pub fn new() -> Self {
        Shell {
            spec: KindSpec {
                name: "shell".into(),
                family: "local".into(),
                summary: "Runs a local command with bash (sh where bash is missing). A step may write `run:` directly.".into(),
                fields: vec![
                    FieldSpec::new("run", &[FieldType::String], "the script; each `{{ }}` value reaches it as an environment variable, never as code").required(),
                    FieldSpec::new("env", &[FieldType::Object], "extra environment variables (values are templates)"),
                    FieldSpec::new("cwd", &[FieldType::String], "working directory, relative to the pipeline file (default: the pipeline file's folder)"),
                ],
                outputs: vec![
                    ("stdout".into(), "standard output, trailing newlines removed".into()),
                    ("stderr".into(), "standard error, trailing newlines removed".into()),
                    ("exit_code".into(), "the command's exit status".into()),
                ],
                dynamic_outputs: true,
                idempotent: true,
                makes_folder: true,
                ..KindSpec::default()
            },
        }
    }
}

impl Default for Shell {
    fn default() -> Self {
        Self::new()
    }
}

impl StepKind for Shell {
    fn spec(&self) -> &KindSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>> {
        Box::pin(run(ctx, with))
    }
}

impl Kind for Shell {
    fn prepare(&self, with: Tmpl) -> Result<Tmpl, Vec<Problem>> {
        let Tmpl::Map(mut entries) = with.clone() else {
            return match &with {
                Tmpl::Lit(_) => Ok(with), // no templates anywhere: nothing to rewrite
                _ => Err(vec![Problem::new(vec![], "`with` must be a map with `run:`")]),
            };
        };
        let Some(pos) = entries.iter().position(|(k, _)| k == "run") else { return Ok(Tmpl::Map(entries)) };
        let source: String = match &entries[pos].1 {
            Tmpl::Lit(Json::String(_)) => return Ok(Tmpl::Map(entries)),
            Tmpl::Expr(e) => format!("{{{{ {e} }}}}"),
            Tmpl::Text(t) => t.to_string(),
            _ => return Err(vec![Problem::new(crate::path!["run"], "`run` must be a string")]),
        };
        let rewritten = script::rewrite(&source).map_err(|m| vec![Problem::new(crate::path!["run"], m)])?;
        entries[pos].1 = Tmpl::Lit(Json::String(rewritten.script));
        let vars = rewritten.vars.into_iter().map(|(name, expr)| (name, Tmpl::Expr(expr.into()))).collect();
        entries.push((VARS.into(), Tmpl::Map(vars)));
        Ok(Tmpl::Map(entries))
    }
}

async fn run(ctx: &StepCtx, with: Json) -> Result<Json, StepError> {
    let script = with.get("run").and_then(Json::as_str).unwrap_or_default();
    let dir = ctx.step_dir.as_path();
    let output_file = dir.join("cometflow_output");
    let cwd = match with.get("cwd").and_then(Json::as_str) {
        Some(c) => ctx.resolve(c),
        None => ctx.pipeline_dir.to_path_buf(),
    };
    // Every value a template gave, as the script's environment: data that must not forge an
    // output line, nor run where bash evaluates text as code.
    let env = template_env(&with)?;
    let values: Vec<String> = env.iter().map(|(_, v)| v.clone()).collect();
    let setup = Setup { ctx, env: &env, dir, output_file: &output_file, cwd: &cwd };
    let direct = direct::plain_command(script).map(|argv| {
        let mut cmd = setup.command(argv[0], &argv[1..]);
        // The shell would have set it to the folder it runs in.
        cmd.env("PWD", &cwd);
        cmd
    });
    let (program, args) = shell_command();
    let mut shell = setup.command(program, args);
    shell.arg(script);
    let start =
        Start { dir: dir.to_path_buf(), output_file: output_file.clone(), direct, shell, program, cwd };
    // Making the folder and starting the process block the calling thread (the parent
    // waits until the child has started the program). While other commands run, that is
    // done on the blocking pool, so steps start side by side instead of one after another
    // on the engine's thread; a command that runs alone (a chain) starts here, saving two
    // hand-overs between threads.
    let live = Live::new();
    let mut child = if live.alone {
        start.spawn()?
    } else {
        tokio::task::spawn_blocking(move || start.spawn())
            .await
            .map_err(|e| StepError::fatal(format!("starting the command failed: {e}")))??
    };
    let _group = child.id().map(GroupGuard);
    let stdout = child.stdout.take().map(|s| capture(ctx, Stream::Stdout, s));
    let stderr = child.stderr.take().map(|s| capture(ctx, Stream::Stderr, s));
    let wait = async {
        tokio::select! {
            // Interrupted: kill the whole group now rather than after the engine's grace.
            _ = ctx.cancel.cancelled() => {
                let _ = child.start_kill();
                drop(_group);
                None
            }
            status = child.wait() => Some(status),
        }
    };
    let (status, out, err) = tokio::join!(wait, opt(stdout), opt(stderr));
    let Some(status) = status else { return Err(StepError::fatal("cancelled")) };
    let status = status.map_err(|e| StepError::fatal(format!("waiting for the command failed: {e}")))?;

    let mut outputs = Map::new();
    outputs.insert("stdout".into(), Json::String(out));
    outputs.insert("stderr".into(), Json::String(err.clone()));
    outputs.insert("exit_code".into(), status.code().map_or(Json::Null, Json::from));
    let extra = std::fs::read_to_string(&output_file).unwrap_or_default();
    for (k, v) in parse_outputs(&extra, &values) {
        // Built-ins are the command's own: a script (or a value it echoes) cannot forge them.
        if !BUILT_INS.contains(&k.as_str()) {
            outputs.insert(k, Json::String(v));
        }
    }
    let outputs = Json::Object(outputs);
    if status.success() {
        return Ok(outputs);
    }
    let code = status.code().map_or_else(|| "a signal".to_string(), |c| format!("exit code {c}"));
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!(": {l}")).unwrap_or_default();
    Err(StepError::retryable(format!("the command failed with {code}{last}")).with_outputs(outputs))
}

/// A step's command, ready to start.
struct Start {
    dir: PathBuf,
    output_file: PathBuf,
    /// The command without a shell, when the script is one plain command.
    direct: Option<Command>,
    shell: Command,
    program: &'static str,
    cwd: PathBuf,
}

impl Start {
    fn spawn(self) -> Result<Child, StepError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            StepError::fatal(format!("cannot create the step folder `{}`: {e}", self.dir.display()))
        })?;
        // Not created beforehand: a script that appends to it creates it, and one that
        // does not costs no file. One left by an earlier attempt (a retry, a resumed run)
        // must not lend this one its lines.
        match std::fs::remove_file(&self.output_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StepError::fatal(format!("cannot clear `{}`: {e}", self.output_file.display())));
            }
            _ => {}
        }
        // A program that is missing or cannot run goes to the shell, which says so in its
        // own words (exit 127 or 126), as it always has.
        if let Some(child) = self.direct.and_then(|mut cmd| cmd.spawn().ok()) {
            return Ok(child);
        }
        let (mut shell, program, cwd) = (self.shell, self.program, self.cwd);
        shell
            .spawn()
            .map_err(|e| StepError::fatal(format!("cannot start `{program}` in `{}`: {e}", cwd.display())))
    }
}

/// What every way of starting the step's command shares.
struct Setup<'a> {
    ctx: &'a StepCtx,
    env: &'a [(String, String)],
    dir: &'a Path,
    output_file: &'a Path,
    cwd: &'a Path,
}

impl Setup<'_> {
    /// `program args...` in the step's folder and environment, in its own process group.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(self.cwd);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // The API key is for cometflow's own calls: a script that prints its environment must not leak it.
        cmd.env_remove("COMETAPI_KEY");
        cmd.env("COMETFLOW_OUTPUT", self.output_file)
            .env("COMETFLOW_STEP_DIR", self.dir)
            .env("COMETFLOW_RUN_DIR", &*self.ctx.run_dir)
            .env("COMETFLOW_RUN_ID", &*self.ctx.run_id);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        // Its own process group, so cancelling kills the script's children too.
        cmd.process_group(0);
        cmd.kill_on_drop(true);
        cmd
    }
}

/// The template values (`VARS`) and `env:` of a step as environment variables. A value
/// standing where bash evaluates arithmetic must be a plain number.
fn template_env(with: &Json) -> Result<Vec<(String, String)>, StepError> {
    let mut env = Vec::new();
    for (key, value) in with.get(VARS).and_then(Json::as_object).into_iter().flatten() {
        let text = env_text(value);
        if key.starts_with(script::NUMERIC_PREFIX) {
            if !script::plain_number(&text) {
                return Err(StepError::fatal(format!(
                    "a `{{{{ }}}}` value stands where bash evaluates text as code (arithmetic: `$(( ))`, \
                     `(( ))`, `[[ x -ge n ]]`, an array subscript, `let`), and it is not a plain number: \
                     `{}`; compare it as data instead, e.g. `[ \"{{{{ x }}}}\" -ge 7 ]` (test does not evaluate)",
                    snippet(&text)
                )));
            }
            env.push((key.clone(), text.trim().to_owned()));
        } else {
            env.push((key.clone(), text));
        }
    }
    for (key, value) in with.get("env").and_then(Json::as_object).into_iter().flatten() {
        env.push((key.clone(), env_text(value)));
    }
    Ok(env)
}

async fn opt(f: Option<impl std::future::Future<Output = String>>) -> String {
    match f {
        Some(f) => f.await,
        None => String::new(),
    }
}

/// Streams lines to the log and keeps the first `CAPTURE_LIMIT` bytes.
async fn capture(ctx: &StepCtx, stream: Stream, reader: impl AsyncRead + Unpin) -> String {
    let mut reader = BufReader::new(reader);
    let mut kept = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                if kept.len() < CAPTURE_LIMIT {
                    kept.push_str(&text);
                }
                ctx.log(stream, text.trim_end_matches(['\n', '\r']));
            }
        }
    }
    let trimmed = kept.trim_end_matches(['\n', '\r']).len();
    kept.truncate(trimmed);
    kept
}

/// Strings as they are; everything else as JSON.
fn env_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn shell_command() -> (&'static str, &'static [&'static str]) {
    static BASH: OnceLock<bool> = OnceLock::new();
    let has_bash = *BASH.get_or_init(|| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| Path::new(&d).join("bash").is_file()))
    });
    if has_bash {
        ("bash", &["--noprofile", "--norc", "-eo", "pipefail", "-c"])
    } else {
        ("sh", &["-e", "-c"])
    }
}

/// At most this much of a refused value is shown.
fn snippet(text: &str) -> String {
    let t: String = text.chars().take(60).collect();
    let t = t.escape_debug().to_string();
    if text.chars().count() > 60 {
        format!("{t}...")
    } else {
        t
    }
}

/// `key=value` lines, and `key<<DELIM` ... `DELIM` blocks for multi-line values. A newline
/// inside one of `values` (what templates gave the script) never ends a line: a value that
/// holds `\nexit_code=0` or the delimiter stays inside the output that wrote it.
fn parse_outputs(text: &str, values: &[String]) -> Vec<(String, String)> {
    let mut protected = vec![false; text.len()];
    for v in values.iter().filter(|v| v.contains('\n')) {
        for (at, _) in text.match_indices(v.as_str()) {
            for (n, b) in v.bytes().enumerate() {
                if b == b'\n' {
                    protected[at + n] = true;
                }
            }
        }
    }
    let mut lines = Vec::new();
    let mut from = 0;
    for (at, b) in text.bytes().enumerate() {
        if b == b'\n' && !protected[at] {
            lines.push(text[from..at].trim_end_matches('\r'));
            from = at + 1;
        }
    }
    if from < text.len() {
        lines.push(&text[from..]);
    }
    let mut out = Vec::new();
    let mut lines = lines.into_iter();
    while let Some(line) = lines.next() {
        if let Some((key, delim)) = line.split_once("<<").filter(|(k, _)| !k.contains('=')) {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.push((key.trim().to_owned(), value.join("\n")));
        } else if let Some((key, value)) = line.split_once('=') {
            if !key.trim().is_empty() {
                out.push((key.trim().to_owned(), value.to_owned()));
            }
        }
    }
    out
}

/// Counts the commands being started or running in this process.
struct Live {
    /// No other command was running when this one was counted.
    alone: bool,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

impl Live {
    fn new() -> Self {
        Live { alone: LIVE.fetch_add(1, Ordering::Relaxed) == 0 }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Kills the script's whole process group when the step ends early (cancel, timeout).
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals a process group; it has no memory effects.
        // After a normal exit the group is gone and this is a harmless ESRCH.
        unsafe {
            libc::kill(-(self.0 as libc::pid_t), libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_key_value_lines_or_delimited_blocks() {
        let parsed = parse_outputs("a=1\nb=x=y\nnotes<<END\nline 1\nline 2\nEND\n", &[]);
        assert_eq!(
            parsed,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x=y".into()),
                ("notes".into(), "line 1\nline 2".into())
            ]
        );
    }

    #[test]
    fn a_value_with_newlines_cannot_forge_other_outputs() {
        let value = "fine\nexit_code=0\nverdict=approved\nEND\nx<<END".to_owned();
        let text = format!("summary={value}\nnotes<<END\n{value}\nEND\nok=1\n");
        let parsed = parse_outputs(&text, std::slice::from_ref(&value));
        assert_eq!(
            parsed,
            vec![("summary".into(), value.clone()), ("notes".into(), value), ("ok".into(), "1".into())]
        );
    }
}
