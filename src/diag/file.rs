//! The errors people hit first: the pipeline file is missing, is a folder, or cannot be
//! read. Each message says what was found and what to pass instead.

use std::io::ErrorKind;
use std::path::Path;

use super::{suggest, Diagnostic};

/// Reads a pipeline file's text, or explains why it cannot be.
pub fn read_pipeline(path: &Path) -> Result<String, Diagnostic> {
    let shown = path.display();
    if path.is_dir() {
        let files = yaml_files(path);
        let help = match files.first() {
            Some(first) => format!(
                "pass one pipeline file, e.g. `cometflow validate {}` ({} in that folder: {})",
                path.join(first).display(),
                files.len(),
                files.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
            ),
            None => {
                "pass a pipeline's YAML file; that folder holds none, and `cometflow init` writes a starter"
                    .into()
            }
        };
        return Err(Diagnostic::new(format!("`{shown}` is a folder, not a pipeline file")).help(help));
    }
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let files = yaml_files(dir);
            // Compare stems: every candidate ends in `.yaml`, which would make anything look close.
            let stem = |n: &str| n.rsplit_once('.').map_or(n.to_owned(), |(s, _)| s.to_owned());
            let stems: Vec<String> = files.iter().map(|f| stem(f)).collect();
            let near = suggest(&stem(&name), stems.iter().map(String::as_str))
                .and_then(|s| files.iter().find(|f| stem(f) == s));
            let help = match near {
                Some(near) => format!("did you mean `{}`?", path.with_file_name(near).display()),
                None => "check the path (relative paths start at the current folder); \
                         `cometflow init` writes a starter pipeline"
                    .into(),
            };
            Diagnostic::new(format!("`{shown}` does not exist")).help(help)
        }
        ErrorKind::PermissionDenied => Diagnostic::new(format!("cannot read `{shown}`: permission denied"))
            .help("check the file's permissions, e.g. `chmod u+r` it"),
        ErrorKind::InvalidData => Diagnostic::new(format!("`{shown}` is not UTF-8 text"))
            .help("a pipeline is a YAML text file; save it as UTF-8"),
        _ => Diagnostic::new(format!("cannot read `{shown}`: {e}"))
            .help("check the path and the file's permissions"),
    })
}

/// The `.yaml`/`.yml` files in a folder, sorted; empty when it cannot be read.
fn yaml_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    files.sort();
    files
}
