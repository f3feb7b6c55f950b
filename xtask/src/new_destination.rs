//! `cargo xtask new-destination NAME`: writes a destination crate that builds, validates, renders
//! and passes its tests as generated, from the templates in `xtask/templates/new-destination/`
//! (a tree laid out like the workspace; `{{kind}}`, `{{crate}}`, `{{Type}}` and `{{ENV}}` in file
//! names and contents are replaced, `.tmpl` is dropped). Then it links the crate with one line in
//! `crates/destinations/Cargo.toml`, formats it, regenerates `schemas/` and writes the rendering
//! snapshot of its example configuration.
//!
//! `cargo xtask new-destination --check [NAME]` proves that promise: it copies the workspace
//! (the files git tracks or would track, so without `target/`) to a temporary directory, generates
//! NAME (`demo_kind` by default) there and runs what `cargo xtask ci` runs for the crates the new
//! kind touches, sharing this workspace's target directory so that dependencies are not built again.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str =
    "usage: cargo xtask new-destination NAME | cargo xtask new-destination --check [NAME]";

/// The names one kind goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The registered kind and the Rust crate name after `hardal_`: `demo_kind`.
    pub kind: String,
    /// The directory under `crates/` and the package name after `hardal-`: `demo-kind`.
    pub krate: String,
    /// The Rust type of the destination: `DemoKind`.
    pub type_name: String,
    /// The prefix of its environment variables: `DEMO_KIND`.
    pub env: String,
}

impl Names {
    /// The names of `name` (`demo_kind` or `demo-kind`): lower-case ASCII letters and digits in
    /// words joined by `_`, starting with a letter.
    pub fn new(name: &str) -> Result<Names> {
        let kind = name.replace('-', "_");
        let words: Vec<&str> = kind.split('_').collect();
        let valid = kind.len() <= 40
            && kind.starts_with(|c: char| c.is_ascii_lowercase())
            && words.iter().all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !valid {
            bail!(
                "`{name}` cannot name a kind: use lower-case letters and digits in words joined by `_`, starting with a letter (e.g. `acme_events`)"
            );
        }
        if ["core", "destinations", "runner", "fuzz", "conformance"].contains(&kind.as_str())
            || kind.ends_with("simulator")
        {
            bail!("`{kind}` is the name of one of hardal's own crates");
        }
        let type_name = words
            .iter()
            .map(|w| {
                let mut chars = w.chars();
                let first = chars.next().expect("words are not empty");
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
            .collect();
        Ok(Names {
            krate: kind.replace('_', "-"),
            env: kind.to_ascii_uppercase(),
            kind,
            type_name,
        })
    }

    /// `text` with every placeholder replaced; an unknown `{{…}}` left over is an error (a typo
    /// in a template).
    pub fn fill(&self, text: &str) -> Result<String> {
        let filled = text
            .replace("{{kind}}", &self.kind)
            .replace("{{crate}}", &self.krate)
            .replace("{{Type}}", &self.type_name)
            .replace("{{ENV}}", &self.env);
        if let Some(at) = filled.find("{{") {
            let rest: String = filled[at..].chars().take(20).collect();
            bail!("an unknown placeholder in a template: `{rest}…`");
        }
        Ok(filled)
    }
}

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    match args {
        [flag] if flag == "--check" => check(root, "demo_kind"),
        [flag, name] if flag == "--check" => check(root, name),
        [name] if !name.starts_with('-') => {
            let names = Names::new(name)?;
            let written = generate(root, &names)?;
            finish(root, &names, &[])?;
            eprintln!("\nwrote:");
            for path in &written {
                eprintln!("  {}", path.strip_prefix(root).unwrap_or(path).display());
            }
            eprintln!(
                "\nnext: replace the invented API in crates/{}/ with the real one (docs/writing-a-destination.md), then\n  cargo test -p hardal-{}\n  cargo run -p hardal-runner --bin hardal -- render --config examples/{}.json examples/events.ndjson",
                names.krate, names.krate, names.krate
            );
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

/// The template tree.
fn templates(root: &Path) -> PathBuf {
    root.join("xtask/templates/new-destination")
}

/// Writes every template file under `root`, refusing to overwrite anything, and adds the linking
/// line. Returns the files written.
pub fn generate(root: &Path, names: &Names) -> Result<Vec<PathBuf>> {
    let crate_dir = root.join("crates").join(&names.krate);
    if crate_dir.exists() {
        bail!("{} exists already", crate_dir.display());
    }
    let mut files = Vec::new();
    collect_files(&templates(root), &mut files)?;
    files.sort();
    let mut written = Vec::new();
    for template in files {
        let relative = template
            .strip_prefix(templates(root))
            .expect("collected under the template tree")
            .to_str()
            .context("template paths are UTF-8")?;
        let relative = names.fill(relative.strip_suffix(".tmpl").unwrap_or(relative))?;
        let target = root.join(relative);
        if target.exists() {
            bail!("{} exists already", target.display());
        }
        let text = std::fs::read_to_string(&template)
            .with_context(|| format!("reading {}", template.display()))?;
        let text = names
            .fill(&text)
            .with_context(|| format!("in {}", template.display()))?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
        written.push(target);
    }
    let manifest = root.join("crates/destinations/Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    std::fs::write(&manifest, link(&text, names)?)
        .with_context(|| format!("writing {}", manifest.display()))?;
    written.push(manifest);
    Ok(written)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// `manifest` (crates/destinations/Cargo.toml) with the crate's line added to `[dependencies]`,
/// in name order among the others.
pub fn link(manifest: &str, names: &Names) -> Result<String> {
    let line = format!(
        "hardal-{krate} = {{ path = \"../{krate}\" }}",
        krate = names.krate
    );
    let key = format!("hardal-{}", names.krate);
    let lines: Vec<&str> = manifest.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "[dependencies]")
        .context("crates/destinations/Cargo.toml has no [dependencies]")?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |i| start + 1 + i);
    let mut at = end;
    for (i, existing) in lines.iter().enumerate().take(end).skip(start + 1) {
        let name = existing.split(['=', '.']).next().unwrap_or_default().trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if name == key {
            bail!("{key} is linked already");
        }
        if name > key.as_str() {
            at = i;
            break;
        }
    }
    // Past trailing blank lines, so the line joins its table rather than the next one.
    while at > start + 1 && at == end && lines[at - 1].trim().is_empty() {
        at -= 1;
    }
    let mut out: Vec<&str> = lines.clone();
    out.insert(at, &line);
    Ok(out.join("\n") + "\n")
}

/// What needs the new crate compiled: formatting it, `schemas/` (by a fresh build of xtask, which
/// then links the new kind) and the rendering snapshot of its example configuration.
fn finish(root: &Path, names: &Names, env: &[(&str, &str)]) -> Result<()> {
    let package = format!("hardal-{}", names.krate);
    cargo(root, &["fmt", "-p", &package], env)?;
    cargo(root, &["run", "-q", "-p", "xtask", "--", "schemas"], env)?;
    let mut update = env.to_vec();
    update.push(("UPDATE_EXPECT", "1"));
    cargo(
        root,
        &["test", "-q", "-p", "hardal-runner", "--test", "examples"],
        &update,
    )
}

fn cargo(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!(
            "cargo {} failed ({status}) in {}",
            args.join(" "),
            dir.display()
        );
    }
    Ok(())
}

/// Generates `name` in a copy of the workspace and runs there what `cargo xtask ci` runs for the
/// crates a new kind touches.
fn check(root: &Path, name: &str) -> Result<()> {
    let names = Names::new(name)?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let copy = std::env::temp_dir().join(format!("hardal-new-destination-{}", std::process::id()));
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    eprintln!("copying the workspace to {}", copy.display());
    copy_workspace(root, &copy)?;
    let result = (|| -> Result<()> {
        // Every cargo below builds into the shared target directory.
        let shared = [(
            "CARGO_TARGET_DIR",
            target_dir
                .to_str()
                .context("the target directory is not UTF-8")?,
        )];
        let package = format!("hardal-{}", names.krate);
        generate(&copy, &names)?;
        finish(&copy, &names, &shared)?;
        // What `cargo xtask ci` runs, for the crates the new kind touches.
        cargo(&copy, &["fmt", "--all", "--check"], &shared)?;
        cargo(
            &copy,
            &[
                "clippy",
                "-p",
                &package,
                "-p",
                "hardal-destinations",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &shared,
        )?;
        cargo(&copy, &["test", "-p", &package], &shared)?;
        cargo(
            &copy,
            &[
                "test",
                "-p",
                "hardal-runner",
                "--test",
                "schemas",
                "--test",
                "cli",
                "--test",
                "validate",
                "--test",
                "examples",
            ],
            &shared,
        )?;
        cargo(&copy, &["test", "-p", "hardal-fuzz"], &shared)?;
        // The binary as a user runs it on the generated example configuration.
        let hardal = target_dir.join("debug/hardal");
        let config = format!("examples/{}.json", names.krate);
        let key = format!("{}_API_KEY", names.env);
        hardal_ok(
            &copy,
            &hardal,
            &["validate", "--config", &config],
            &[(&key, "check-key")],
            &format!("destinations: {} ({})", names.krate, names.kind),
        )?;
        hardal_ok(
            &copy,
            &hardal,
            &["render", "--config", &config, "examples/events.ndjson"],
            &[],
            "{\"events\":[{",
        )?;
        hardal_ok(&copy, &hardal, &["list"], &[], &format!("{}  ", names.kind))?;
        Ok(())
    })();
    // Removed also after a failure: the shared target directory's records point into the copy,
    // and only a copy that is gone makes the next build here redo what the copy changed.
    std::fs::remove_dir_all(&copy).with_context(|| format!("removing {}", copy.display()))?;
    if result.is_ok() {
        eprintln!(
            "\nnew-destination --check: `{}` generated, linked, formatted, linted, tested, validated and rendered",
            names.kind
        );
    }
    result
}

/// Runs `hardal` in `dir`, which must succeed with `expected` in its output.
fn hardal_ok(
    dir: &Path,
    hardal: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    expected: &str,
) -> Result<()> {
    eprintln!("$ hardal {}", args.join(" "));
    let output = Command::new(hardal)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {}", hardal.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !(stdout.contains(expected) || stderr.contains(expected)) {
        bail!(
            "`hardal {}` ({}) did not say {expected:?}:\n{stdout}{stderr}",
            args.join(" "),
            output.status
        );
    }
    Ok(())
}

/// Copies the files git tracks or would track (so not `target/` or other ignored files).
fn copy_workspace(root: &Path, copy: &Path) -> Result<()> {
    let output = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output()
        .context("running git ls-files")?;
    if !output.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for name in output.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).context("file names are UTF-8")?;
        let from = root.join(name);
        // A file deleted in the work tree but still in the index is not there to copy.
        if !from.is_file() {
            continue;
        }
        let to = copy.join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_kind() {
        let names = Names::new("demo_kind").unwrap();
        assert_eq!(
            names,
            Names {
                kind: "demo_kind".into(),
                krate: "demo-kind".into(),
                type_name: "DemoKind".into(),
                env: "DEMO_KIND".into(),
            }
        );
        assert_eq!(Names::new("acme-2").unwrap().type_name, "Acme2");
        for bad in [
            "",
            "Demo",
            "2fa",
            "a__b",
            "a_",
            "x y",
            "runner",
            "meta_simulator",
        ] {
            assert!(Names::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn placeholders_are_filled_and_typos_refused() {
        let names = Names::new("acme").unwrap();
        assert_eq!(
            names
                .fill("{{Type}}Config for {{kind}} in crates/{{crate}} (${{{ENV}}_KEY})")
                .unwrap(),
            "AcmeConfig for acme in crates/acme (${ACME_KEY})"
        );
        assert!(names.fill("{{Kind}}").is_err());
    }

    #[test]
    fn the_linking_line_goes_in_name_order() {
        let manifest = "[package]\nname = \"x\"\n\n# note\n[dependencies]\nhardal-custom-api.workspace = true\nhardal-insider.workspace = true\n";
        let names = Names::new("demo_kind").unwrap();
        assert_eq!(
            link(manifest, &names).unwrap(),
            "[package]\nname = \"x\"\n\n# note\n[dependencies]\nhardal-custom-api.workspace = true\nhardal-demo-kind = { path = \"../demo-kind\" }\nhardal-insider.workspace = true\n"
        );
        let last = Names::new("zeta").unwrap();
        assert!(
            link(manifest, &last).unwrap().ends_with(
                "hardal-insider.workspace = true\nhardal-zeta = { path = \"../zeta\" }\n"
            )
        );
        let linked = link(manifest, &names).unwrap();
        assert!(link(&linked, &names).is_err(), "linked twice");
    }

    /// Generating into a tree holding only the templates and the linking crate's manifest writes
    /// the crate, the example and the line, and a second run refuses to overwrite.
    #[test]
    fn generate_writes_the_crate_and_links_it_once() {
        let root = crate::workspace_root();
        let scratch = std::env::temp_dir().join(format!(
            "hardal-new-destination-test-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&scratch);
        let mut files = Vec::new();
        collect_files(&templates(&root), &mut files).unwrap();
        for file in files.iter().map(|f| f.strip_prefix(&root).unwrap()) {
            let to = scratch.join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root.join(file), to).unwrap();
        }
        let manifest = "crates/destinations/Cargo.toml";
        std::fs::create_dir_all(scratch.join("crates/destinations")).unwrap();
        std::fs::copy(root.join(manifest), scratch.join(manifest)).unwrap();

        let names = Names::new("demo_kind").unwrap();
        let written = generate(&scratch, &names).unwrap();
        let mut relative: Vec<String> = written
            .iter()
            .map(|p| p.strip_prefix(&scratch).unwrap().display().to_string())
            .collect();
        relative.sort();
        assert!(relative.contains(&"crates/demo-kind/src/destination.rs".to_owned()));
        assert!(relative.contains(&"examples/demo-kind.json".to_owned()));
        assert!(relative.contains(&manifest.to_owned()));
        let linked = std::fs::read_to_string(scratch.join(manifest)).unwrap();
        assert!(linked.contains("hardal-demo-kind = { path = \"../demo-kind\" }\n"));
        let example = std::fs::read_to_string(scratch.join("examples/demo-kind.json")).unwrap();
        assert!(example.contains(r#""api_key": "${DEMO_KIND_API_KEY}""#));

        let again = generate(&scratch, &names).unwrap_err().to_string();
        assert!(
            again.ends_with("crates/demo-kind exists already"),
            "{again}"
        );
        std::fs::remove_dir_all(&scratch).unwrap();
    }

    /// Every template fills without a leftover placeholder.
    #[test]
    fn every_template_fills() {
        let root = crate::workspace_root();
        let mut files = Vec::new();
        collect_files(&templates(&root), &mut files).unwrap();
        assert!(files.len() > 5);
        let names = Names::new("demo_kind").unwrap();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            names
                .fill(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
}
