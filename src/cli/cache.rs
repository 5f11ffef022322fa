//! `cometflow cache` lists the step cache's entries with their size and age; `cache prune
//! [--older-than 30d] [--max-size 5GB]` removes entries, and the files only they hold.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::error::{Failure, Outcome};
use crate::store::prune::{self, Entry};
use crate::store::Db;

pub const EXAMPLES: &str = "\
Examples:
  cometflow cache                           every entry: kind, size, age, the run that made it
  cometflow cache --json
  cometflow cache prune --older-than 30d    drop entries older than 30 days
  cometflow cache prune --max-size 5GB      drop the oldest until the rest hold at most 5 GB
  cometflow cache prune --older-than 7d --dry-run

A pruned entry's files are deleted only when no run (and no kept entry) points at them; a
file a run still shows stays. Sizes: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB.

Exit status: 0 done, 1 the state database cannot be read, 2 invalid arguments.";

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: Option<CacheCommand>,
    /// Print the entries as a JSON array, newest first
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove entries by age and total size, and the files only they hold
    Prune {
        /// Remove entries older than this, e.g. 30d, 12h
        #[arg(long, value_name = "DURATION", value_parser = crate::model::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Then remove the oldest entries until the rest hold at most this, e.g. 5GB, 500MB
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Say what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn cache(args: CacheArgs) -> Outcome {
    let db = Db::open(&crate::store::state_dir()).map_err(|e| Failure::Environment(e.to_string()))?;
    let now = jiff::Timestamp::now();
    let failed = |e: crate::store::StoreError| Failure::Failed(e.to_string());
    match args.command {
        None => {
            let entries = prune::entries(&db).map_err(failed)?;
            if args.json {
                let list: Vec<_> = entries.iter().map(|e| entry_json(e, now)).collect();
                println!("{}", serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into()));
            } else {
                print!("{}", table(&entries, now));
            }
            Ok(())
        }
        Some(CacheCommand::Prune { older_than: None, max_size: None, .. }) => Err(Failure::Invalid(
            "`cache prune` needs `--older-than DURATION` or `--max-size SIZE`, e.g. `cometflow cache prune --older-than 30d`"
                .into(),
        )),
        Some(CacheCommand::Prune { older_than, max_size, dry_run }) => {
            let p = prune::prune(&db, older_than, max_size, now, dry_run).map_err(failed)?;
            let verb = if dry_run { "would remove" } else { "removed" };
            let bytes: u64 = p.entries.iter().map(|e| e.bytes).sum();
            println!(
                "{verb} {} cache entries ({}); {} {} files ({}) only they held; {} files stay because runs point at them",
                p.entries.len(),
                size(bytes),
                if dry_run { "would delete" } else { "deleted" },
                p.deleted.len(),
                size(p.freed),
                p.kept
            );
            Ok(())
        }
    }
}

fn entry_json(e: &Entry, now: jiff::Timestamp) -> serde_json::Value {
    json!({
        "key": e.key, "kind": e.kind, "run_id": e.run_id, "step_dir": e.step_dir,
        "created_at": e.created_at.to_string(),
        "age_seconds": now.duration_since(e.created_at).as_secs().max(0),
        "bytes": e.bytes,
        "files": e.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
    })
}

fn table(entries: &[Entry], now: jiff::Timestamp) -> String {
    if entries.is_empty() {
        return "the cache is empty; provider steps fill it as they succeed\n".into();
    }
    let kind_w = entries.iter().map(|e| e.kind.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:12}  {:kind_w$}  {:>9}  {:>8}  RUN\n", "KEY", "KIND", "SIZE", "AGE");
    for e in entries {
        let age = now.duration_since(e.created_at).unsigned_abs();
        out.push_str(&format!(
            "{:12}  {:kind_w$}  {:>9}  {:>8}  {}\n",
            &e.key[..e.key.len().min(12)],
            e.kind,
            size(e.bytes),
            crate::engine::human_duration(age),
            e.run_id
        ));
    }
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    out.push_str(&format!("{} entries, {}\n", entries.len(), size(total)));
    out
}

/// `5GB`, `500MB`, `1.5G`, `64KiB`, `1024` (bytes).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a size; write e.g. 5GB or 500MB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`; use B, KB, MB, GB, TB, KiB, MiB or GiB"
            ))
        }
    };
    Ok((number * scale).round() as u64)
}

/// `1.2 MB`, `340 B`.
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} KB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_decimal_and_binary_units() {
        assert_eq!(parse_size("5GB").unwrap(), 5_000_000_000);
        assert_eq!(parse_size("1.5m").unwrap(), 1_500_000);
        assert_eq!(parse_size("64KiB").unwrap(), 65_536);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("5 parsecs").unwrap_err().contains("unknown size unit"));
        assert_eq!(size(1_234_567), "1.2 MB");
    }
}
