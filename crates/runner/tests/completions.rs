//! The completion scripts committed in `completions/` are what `hardal completions` prints, and
//! each loads in its shell and completes `hardal se` to the commands `send` and `serve`. The
//! shells are needed (`.ci/run` and `cargo xtask ci` install them from Debian when missing).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `script` with `shell`, from the workspace root; its stdout, or a panic that says why.
fn run_in(shell: &str, args: &[&str], script: &str) -> String {
    let output = Command::new(shell)
        .args(args)
        .arg(script)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| {
            panic!("{shell} could not start ({e}); install it: apt-get install {shell}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{shell} {script:?}: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn committed_completions_are_fresh() {
    let mut stale = Vec::new();
    for shell in ["bash", "zsh", "fish"] {
        let generated = Command::new(env!("CARGO_BIN_EXE_hardal"))
            .args(["completions", shell])
            .output()
            .expect("hardal runs");
        assert!(generated.status.success(), "{generated:?}");
        let path = root().join(format!("completions/hardal.{shell}"));
        if std::fs::read(&path).unwrap_or_default() != generated.stdout {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale completions {stale:?}: run `cargo xtask completions`"
    );
}

#[test]
fn bash_loads_the_script_and_completes_commands() {
    let completed = run_in(
        "bash",
        &["--norc", "-c"],
        r#"source completions/hardal.bash
complete -p hardal
COMP_WORDS=(hardal se); COMP_CWORD=1; _hardal hardal se hardal; echo "${COMPREPLY[*]}"
COMP_WORDS=(hardal completions ''); COMP_CWORD=2; _hardal hardal '' completions; echo "${COMPREPLY[*]}""#,
    );
    assert_eq!(
        completed,
        "complete -o bashdefault -o default -o nosort -F _hardal hardal\n\
         send serve\n\
         -h --log-format --help bash elvish fish powershell zsh\n"
    );
}

#[test]
fn zsh_parses_the_script_and_registers_it() {
    run_in("zsh", &["-n"], "completions/hardal.zsh");
    let registered = run_in(
        "zsh",
        &["-f", "-c"],
        "autoload -U compinit && compinit -u -D && source completions/hardal.zsh && print $_comps[hardal]",
    );
    assert_eq!(registered, "_hardal\n");
}

#[test]
fn fish_loads_the_script_and_completes_commands() {
    run_in("fish", &["--no-execute"], "completions/hardal.fish");
    let completed = run_in(
        "fish",
        &["--no-config", "-c"],
        "source completions/hardal.fish; complete -C 'hardal se'",
    );
    let commands: Vec<&str> = completed
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    assert_eq!(commands, ["send", "serve"]);
}
