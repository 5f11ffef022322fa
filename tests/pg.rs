//! A throwaway PostgreSQL cluster for the tests that need one: `initdb` in a temporary
//! folder, a server on a free port of 127.0.0.1 (its socket in that folder too), stopped
//! when dropped. PostgreSQL refuses to run as root, so as root the cluster belongs to the
//! `postgres` user and its commands run through `runuser`. Without the server binaries,
//! [`Postgres::start`] prints a notice and returns `None`: the test then skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Postgres {
    pub url: String,
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<String>,
    _dir: tempfile::TempDir,
}

/// Where `initdb` and `pg_ctl` are: `$PG_BIN`, the Debian layout, or the PATH.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from).filter(|d| d.join("initdb").is_file()) {
        return Some(dir);
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort();
    if let Some(dir) = debian.into_iter().rev().find(|d| d.join("initdb").is_file()) {
        return Some(dir);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    /// Starts a cluster, or says why not and returns `None` (the caller skips).
    pub fn start() -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            eprintln!("skipped: no PostgreSQL server binaries (initdb, pg_ctl); install `postgresql` to run this test");
            return None;
        };
        // SAFETY: geteuid has no side effects.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new().prefix("cometflow-pg-").tempdir_in("/tmp").unwrap();
        let data = dir.path().join("data");
        if let Some(user) = &run_as {
            let ok = Command::new("chown").arg(user).arg(dir.path()).status().unwrap().success();
            assert!(ok, "cannot hand `{}` to `{user}`", dir.path().display());
        }
        let port = free_port();
        let url = format!("postgres://cometflow@127.0.0.1:{port}/postgres");
        let pg = Postgres { url, bin, data, run_as, _dir: dir };
        pg.run(
            "initdb",
            &["-D", pg.data.to_str().unwrap(), "-A", "trust", "-U", "cometflow", "--no-sync", "-E", "UTF8"],
        );
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c max_connections=200",
            pg._dir.path().display()
        );
        pg.ctl(&["-o", &options, "-l", pg.log().to_str().unwrap(), "-w", "start"]);
        Some(pg)
    }

    fn log(&self) -> PathBuf {
        self._dir.path().join("server.log")
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// Runs a server command. Its output goes to a file, not a pipe: the server started by
    /// `pg_ctl` inherits the pipe and would keep it open for as long as it runs.
    fn run(&self, program: &str, args: &[&str]) {
        let out_path = self._dir.path().join(format!("{program}.out"));
        let out = std::fs::File::create(&out_path).unwrap();
        let status = self
            .command(program)
            .args(args)
            .current_dir(Path::new("/tmp"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "`{program} {}` failed: {}",
            args.join(" "),
            std::fs::read_to_string(&out_path).unwrap_or_default()
        );
    }

    fn ctl(&self, args: &[&str]) {
        let mut all = vec!["-D", self.data.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    /// Stops the server (connections are cut) and starts it again on the same port.
    pub fn restart(&self) {
        self.ctl(&["-m", "fast", "-w", "restart"]);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .current_dir("/tmp")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
