//! `tarfs man`: the man pages, from the clap definitions (clap_mangen). tarfs(1) lists the
//! commands as tarfs-COMMAND(1), and each of those pages exists: `tarfs man COMMAND` prints one,
//! and `tarfs man --out-dir DIR` writes them all. Every page ends with EXAMPLES (on tarfs(1))
//! and EXIT STATUS sections.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs, EXAMPLES, EXIT_STATUS};

/// Runs `tarfs man`.
pub fn run(a: &ManArgs) -> Result<()> {
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    if let Some(dir) = &a.out_dir {
        return write_all(&top, dir);
    }
    let mut out = io::stdout().lock();
    match &a.command {
        None => render(&top, true, &mut out)?,
        Some(name) => {
            let sub = top.find_subcommand(name).with_context(|| format!("no command {name:?}: tarfs(1) lists them"))?;
            render(sub, false, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Writes tarfs.1 and every tarfs-COMMAND.1 into `dir`.
fn write_all(top: &clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let pages = std::iter::once((top, true)).chain(top.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| (s, false)));
    for (cmd, is_top) in pages {
        let path = dir.join(clap_mangen::Man::new(cmd.clone()).get_filename());
        let mut buf = Vec::new();
        render(cmd, is_top, &mut buf)?;
        std::fs::write(&path, buf).with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}

/// A page: clap_mangen's sections, then EXAMPLES (tarfs(1) only) and EXIT STATUS.
fn render(cmd: &clap::Command, is_top: bool, w: &mut dyn Write) -> io::Result<()> {
    // The examples are rendered here, under their own heading, not as clap_mangen's EXTRA.
    let man = clap_mangen::Man::new(cmd.clone().after_help(None::<&str>).after_long_help(None::<&str>));
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(w)?;
    }
    if is_top {
        section(w, "EXAMPLES", EXAMPLES)?;
    }
    section(w, "EXIT STATUS", if cmd.get_name() == "report" { crate::cli::REPORT_EXIT_STATUS } else { EXIT_STATUS })?;
    if cmd.get_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// A section whose body is `text` without its first line (the "Heading:" of `--help`), kept
/// as laid out.
fn section(w: &mut dyn Write, heading: &str, text: &str) -> io::Result<()> {
    writeln!(w, ".SH \"{heading}\"")?;
    writeln!(w, ".nf")?;
    for line in text.lines().skip(1) {
        let line = line.strip_prefix("  ").unwrap_or(line);
        // roff: a leading dot or quote is a request; backslashes escape.
        let line = line.replace('\\', "\\e");
        let line = if line.starts_with('.') || line.starts_with('\'') { format!("\\&{line}") } else { line };
        writeln!(w, "{line}")?;
    }
    writeln!(w, ".fi")
}
