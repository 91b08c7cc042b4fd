//! What the command line does not say: the environment and the config file, read once for
//! `config::lower`, which gives the command line precedence over them (flag > environment >
//! config file > built-in default).
//!
//! - `TARFS_INDEX_DIR`: the index directory, as `--index-dir`.
//! - `TARFS_CONFIG`: the config file to read (it must exist); else
//!   `$XDG_CONFIG_HOME/tarfs/config.toml`, or `~/.config/tarfs/config.toml`, if there is one.
//! - The config file's keys ([`FileSettings`]): `index-dir`, `jobs`, `or-sidecar`. An unknown
//!   key, a value of the wrong type or a file that is not TOML is an error naming the file, the
//!   line and the problem.
//! - The user's cache of sidecars: `$XDG_CACHE_HOME/tarfs/index`, or `~/.cache/tarfs/index`.
//!
//! An empty variable counts as unset, and a relative `XDG_*` one is ignored, as the XDG Base
//! Directory specification says. A config file in the default place that this user may not read
//! (a `HOME` that is another user's, after `setpriv` or `su`) is no config file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The config file's keys. Each is a default that the command line overrides.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    /// The index directory (`--index-dir`): an absolute path, or one starting with `~/`.
    pub index_dir: Option<PathBuf>,
    /// Worker threads of the batch commands (`-j`).
    pub jobs: Option<usize>,
    /// `embed` writes a sidecar where it cannot embed (`--or-sidecar`).
    pub or_sidecar: Option<bool>,
}

/// The environment and the config file.
#[derive(Debug, Default)]
pub struct Settings {
    /// `TARFS_INDEX_DIR`.
    pub env_index_dir: Option<PathBuf>,
    /// The config file's settings (all unset without one).
    pub file: FileSettings,
    /// The user's cache of sidecars, if `XDG_CACHE_HOME` or `HOME` says where.
    pub cache: Option<PathBuf>,
}

impl Settings {
    /// Reads the environment and the config file.
    pub fn load() -> Result<Settings> {
        let file = match config_path() {
            Some((path, must_exist)) => read_file(&path, must_exist)?,
            None => FileSettings::default(),
        };
        let cache = xdg_dir("XDG_CACHE_HOME", ".cache").map(|d| d.join("tarfs/index"));
        Ok(Settings { env_index_dir: var("TARFS_INDEX_DIR").map(PathBuf::from), file, cache })
    }

    /// The index directory of the environment, else of the config file.
    pub fn index_dir(&self) -> Option<&Path> {
        self.env_index_dir.as_deref().or(self.file.index_dir.as_deref())
    }
}

/// A variable's value, unless it is unset or empty.
fn var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// `$VAR` if it is an absolute path, else `$HOME/fallback`.
fn xdg_dir(name: &str, fallback: &str) -> Option<PathBuf> {
    match var(name).map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Some(dir),
        _ => var("HOME").map(|home| PathBuf::from(home).join(fallback)),
    }
}

/// The config file, and whether it must exist (named by `TARFS_CONFIG`).
fn config_path() -> Option<(PathBuf, bool)> {
    match var("TARFS_CONFIG") {
        Some(p) => Some((PathBuf::from(p), true)),
        None => xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| (d.join("tarfs/config.toml"), false)),
    }
}

/// The settings in the config file at `path`; none if it does not exist and need not.
fn read_file(path: &Path, must_exist: bool) -> Result<FileSettings> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !must_exist && matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory | std::io::ErrorKind::PermissionDenied) => return Ok(FileSettings::default()),
        // One in the default place that cannot be read (EIO): said, and not used, as git does
        // with its config files; no archive waits on it (recovery above all). One named by
        // TARFS_CONFIG, or one that does not parse, is the user's to fix first.
        Err(e) if !must_exist => {
            crate::warn(format!("warning: config file {}: {e}; it is not used", path.display()));
            return Ok(FileSettings::default());
        }
        Err(e) => {
            let named = if must_exist { " (named by TARFS_CONFIG)" } else { "" };
            return Err(e).with_context(|| format!("config file {}{named}", path.display()));
        }
    };
    let mut file: FileSettings = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        anyhow::anyhow!("config file {}: line {line}: {}", path.display(), e.message())
    })?;
    if let Some(dir) = file.index_dir.take() {
        file.index_dir = Some(absolute(path, &text, dir)?);
    }
    Ok(file)
}

/// `index-dir` as an absolute path: `~/` is the home directory; a relative path is an error.
fn absolute(path: &Path, text: &str, dir: PathBuf) -> Result<PathBuf> {
    if let Ok(rest) = dir.strip_prefix("~") {
        if let Some(home) = var("HOME") {
            return Ok(PathBuf::from(home).join(rest));
        }
    } else if dir.is_absolute() {
        return Ok(dir);
    }
    let line = text.lines().position(|l| l.trim_start().starts_with("index-dir")).map_or(1, |i| i + 1);
    bail!("config file {}: line {line}: index-dir {:?} must be an absolute path (or start with ~/)", path.display(), dir.display().to_string())
}
