//! Whether a `run:` script is one plain command that can be executed without a shell, as
//! make does: starting bash costs more than most commands a pipeline runs (`true`,
//! `touch x`, `python3 tool.py`).
//!
//! Only a script the shell would split into words and nothing else qualifies: no quoting,
//! no expansion of any kind (`$`, backticks, globs, braces, `~`), no redirection,
//! pipeline, list or comment, one line, and a first word that is neither a shell keyword
//! nor a builtin whose behaviour differs from the program of the same name. A script
//! holding `{{ }}` values never qualifies: they were rewritten into `"${CF_n}"`.
//! It must not know how the command is then run.

/// Characters that make the shell do more than split words.
const SHELL_SYNTAX: &[char] = &[
    '#', ';', '"', '\'', '*', '?', '[', ']', '&', '|', '<', '>', '(', ')', '{', '}', '$', '`', '~', '!',
    '\\', '\n', '\r',
];

/// Words the shell treats itself: keywords, and builtins that either have no program of
/// their name or behave differently from it.
const SHELL_WORDS: &[&str] = &[
    ".",
    ":",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "case",
    "cd",
    "command",
    "compgen",
    "complete",
    "continue",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "then",
    "time",
    "times",
    "trap",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
];

/// The program and its arguments, when `script` is one plain command.
pub(crate) fn plain_command(script: &str) -> Option<Vec<&str>> {
    let script = script.trim_end_matches(['\n', '\r', ' ', '\t']);
    if script.contains(SHELL_SYNTAX) {
        return None;
    }
    let words: Vec<&str> = script.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    let program = *words.first()?;
    // `NAME=value command` sets a variable for the command: the shell's job.
    (!SHELL_WORDS.contains(&program) && !program.contains('=')).then_some(words)
}

#[cfg(test)]
mod tests {
    use super::plain_command;

    #[test]
    fn a_plain_command_is_split_into_words() {
        assert_eq!(plain_command("true"), Some(vec!["true"]));
        assert_eq!(plain_command("touch  a.txt\tb.txt\n"), Some(vec!["touch", "a.txt", "b.txt"]));
        assert_eq!(plain_command("date +%Y --x=1"), Some(vec!["date", "+%Y", "--x=1"]));
    }

    #[test]
    fn anything_the_shell_would_interpret_goes_to_the_shell() {
        for script in [
            "echo \"${CF_1}\"",
            "echo $HOME",
            "ls *.txt",
            "a && b",
            "a | b",
            "echo hi > out",
            "echo `date`",
            "cd /tmp",
            "exit 3",
            "X=1 env",
            "echo a\necho b",
            "ls ~",
            "echo {a,b}",
            "echo 'quoted'",
            "echo a # comment",
            "",
            "   ",
        ] {
            assert_eq!(plain_command(script), None, "{script:?}");
        }
    }
}
