//! AWS profiles, as the AWS CLI reads them: `~/.aws/credentials` (or
//! `AWS_SHARED_CREDENTIALS_FILE`) and `~/.aws/config` (or `AWS_CONFIG_FILE`), the profile
//! `AWS_PROFILE` (else `default`). `object_store` reads no profile, so this module parses the
//! two INI files itself: sections `[NAME]` in the credentials file and `[profile NAME]` (or
//! `[default]`) in the config file; `key = value` lines; `#` and `;` comments; indented lines
//! (nested settings, such as `s3 =` and its keys) are passed over. The credentials file wins
//! over the config file for a key both set, as in the CLI.
//!
//! Read: `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, `region` and
//! `endpoint_url`.

use std::collections::HashMap;
use std::path::PathBuf;

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// `AWS_PROFILE` names a profile neither file has.
    #[error("the AWS profile {profile:?} (AWS_PROFILE) is in neither {} nor {}", credentials.display(), config.display())]
    Missing {
        /// The profile.
        profile: String,
        /// The credentials file looked in.
        credentials: PathBuf,
        /// The config file looked in.
        config: PathBuf,
    },
    /// A profile with one half of a key pair.
    #[error("the AWS profile {profile:?} has {has} but not {lacks}")]
    HalfKey {
        /// The profile.
        profile: String,
        /// The key it has.
        has: &'static str,
        /// The key it lacks.
        lacks: &'static str,
    },
    /// A file that exists but cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What a profile sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// The access key and the secret, where it has them.
    pub keys: Option<(String, String)>,
    /// The session token.
    pub token: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// The endpoint.
    pub endpoint: Option<String>,
}

/// The files and the profile the environment names: (credentials file, config file, profile,
/// whether the profile was named).
fn names() -> (PathBuf, PathBuf, String, bool) {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let file = |var: &str, default: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map_or_else(|| home.join(".aws").join(default), PathBuf::from);
    let named = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    (file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), file("AWS_CONFIG_FILE", "config"), named.clone().unwrap_or_else(|| "default".into()), named.is_some())
}

/// The profile the environment names, or `None` where there is none (no files, or no
/// `default` section and no `AWS_PROFILE`).
pub fn load() -> Result<Option<Profile>, ProfileError> {
    let (credentials, config, name, named) = names();
    let read = |path: &PathBuf| match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(None),
        Err(source) => Err(ProfileError::Read { path: path.clone(), source }),
    };
    let from_credentials = read(&credentials)?.and_then(|t| section(&t, &name));
    let config_section = if name == "default" { "default".to_string() } else { format!("profile {name}") };
    let from_config = read(&config)?.and_then(|t| section(&t, &config_section));
    if from_credentials.is_none() && from_config.is_none() {
        return match named {
            true => Err(ProfileError::Missing { profile: name, credentials, config }),
            false => Ok(None),
        };
    }
    // The credentials file over the config file.
    let mut keys = from_config.unwrap_or_default();
    keys.extend(from_credentials.unwrap_or_default());
    profile(name, keys).map(Some)
}

/// The profile `name` from its keys.
fn profile(name: String, mut keys: HashMap<String, String>) -> Result<Profile, ProfileError> {
    let (id, secret) = (keys.remove("aws_access_key_id"), keys.remove("aws_secret_access_key"));
    let half = |has, lacks| ProfileError::HalfKey { profile: name.clone(), has, lacks };
    let keys_of = match (id, secret) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (Some(_), None) => return Err(half("aws_access_key_id", "aws_secret_access_key")),
        (None, Some(_)) => return Err(half("aws_secret_access_key", "aws_access_key_id")),
        (None, None) => None,
    };
    Ok(Profile { name, keys: keys_of, token: keys.remove("aws_session_token"), region: keys.remove("region"), endpoint: keys.remove("endpoint_url") })
}

/// The keys of section `[want]` of an INI text, if it has that section (the last of that name
/// wins, key by key).
fn section(text: &str, want: &str) -> Option<HashMap<String, String>> {
    let mut found = None::<HashMap<String, String>>;
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue; // a nested setting's line
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.split_whitespace().collect::<Vec<_>>().join(" ") == want;
            if inside {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            let v = v.trim();
            if !v.is_empty() {
                found.get_or_insert_with(HashMap::new).insert(k.trim().to_ascii_lowercase(), v.to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "# comment\n[default]\nregion = eu-west-1\n\n[profile dev]\nregion=us-west-2\nendpoint_url = http://127.0.0.1:9000\ns3 =\n  addressing_style = path\n; another\n[profile  other ]\nregion = x\n";
    const CREDENTIALS: &str = "[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n[dev]\naws_access_key_id=DK\naws_secret_access_key=DS\naws_session_token = T\n[half]\naws_access_key_id = only\n";

    #[test]
    fn sections_are_read_as_the_cli_reads_them() {
        let dev = section(CONFIG, "profile dev").unwrap();
        assert_eq!(dev.get("region").map(String::as_str), Some("us-west-2"));
        assert_eq!(dev.get("endpoint_url").map(String::as_str), Some("http://127.0.0.1:9000"));
        assert!(!dev.contains_key("addressing_style"), "a nested setting is not the profile's");
        assert_eq!(section(CONFIG, "profile other").unwrap().get("region").map(String::as_str), Some("x"));
        assert_eq!(section(CONFIG, "dev"), None, "the config file's sections say `profile`");
        let mut keys = section(CONFIG, "profile dev").unwrap();
        keys.extend(section(CREDENTIALS, "dev").unwrap());
        let p = profile("dev".into(), keys).unwrap();
        assert_eq!(p.keys, Some(("DK".into(), "DS".into())));
        assert_eq!((p.token.as_deref(), p.region.as_deref()), (Some("T"), Some("us-west-2")));
        let half = profile("half".into(), section(CREDENTIALS, "half").unwrap()).unwrap_err();
        assert_eq!(half.to_string(), "the AWS profile \"half\" has aws_access_key_id but not aws_secret_access_key");
    }
}
