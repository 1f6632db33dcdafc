//! Credentials and region from the AWS shared files (`~/.aws/credentials`
//! and `~/.aws/config`, profile `AWS_PROFILE` or `default`), read the way
//! the AWS SDKs read them, for when the environment holds none.

use std::path::PathBuf;

/// Static credentials found in a profile. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ProfileCredentials {
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for ProfileCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// What the shared files say for the selected profile.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// Its static credentials, if it has any.
    pub credentials: Option<ProfileCredentials>,
    /// Its region, if it names one.
    pub region: Option<String>,
}

impl Profile {
    /// Reads the selected profile from the shared files; files that are
    /// missing or unreadable count as empty, as for the AWS CLI.
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Profile {
        let name = env("AWS_PROFILE").filter(|p| !p.is_empty()).unwrap_or_else(|| "default".to_owned());
        let home = env("HOME").map(PathBuf::from);
        let file = |variable: &str, default: &str| {
            env(variable).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let credentials_file = file("AWS_SHARED_CREDENTIALS_FILE", "credentials").and_then(|p| ini::Ini::load_from_file(p).ok());
        let config_file = file("AWS_CONFIG_FILE", "config").and_then(|p| ini::Ini::load_from_file(p).ok());
        // In `config`, profiles other than `default` are headed `[profile NAME]`.
        let config_section = if name == "default" { name.clone() } else { format!("profile {name}") };
        let lookup = |key: &str| -> Option<String> {
            let from_credentials = credentials_file.as_ref().and_then(|ini| ini.section(Some(name.as_str()))?.get(key).map(str::to_owned));
            let from_config = || config_file.as_ref().and_then(|ini| ini.section(Some(config_section.as_str()))?.get(key).map(str::to_owned));
            from_credentials.or_else(from_config).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
        };
        let credentials = match (lookup("aws_access_key_id"), lookup("aws_secret_access_key")) {
            (Some(access_key_id), Some(secret_access_key)) => Some(ProfileCredentials {
                access_key_id,
                secret_access_key,
                session_token: lookup("aws_session_token"),
            }),
            _ => None,
        };
        let region = config_file
            .as_ref()
            .and_then(|ini| ini.section(Some(config_section.as_str()))?.get("region").map(|r| r.trim().to_owned()));
        Profile { name, credentials, region }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_profile_is_read_from_both_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n[emr]\naws_access_key_id = AKIAEMR\naws_secret_access_key = secret-emr\naws_session_token = tok\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".aws/config"), "[default]\nregion = us-east-1\n\n[profile emr]\nregion = eu-west-1\n").unwrap();
        let home = dir.path().to_string_lossy().into_owned();
        let env = |k: &str| match k {
            "HOME" => Some(home.clone()),
            "AWS_PROFILE" => Some("emr".to_owned()),
            _ => None,
        };
        let profile = Profile::load(env);
        let creds = profile.credentials.clone().unwrap();
        assert_eq!((creds.access_key_id.as_str(), creds.secret_access_key.as_str()), ("AKIAEMR", "secret-emr"));
        assert_eq!(creds.session_token.as_deref(), Some("tok"));
        assert_eq!(profile.region.as_deref(), Some("eu-west-1"));
        assert!(!format!("{profile:?}").contains("secret-emr"), "Debug must not show the secret");
    }

    #[test]
    fn no_files_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_string_lossy().into_owned();
        let profile = Profile::load(|k| (k == "HOME").then(|| home.clone()));
        assert!(profile.credentials.is_none() && profile.region.is_none());
        assert_eq!(profile.name, "default");
    }
}
