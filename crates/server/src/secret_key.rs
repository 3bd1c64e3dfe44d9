//! The application's secret key: from `HIRECJ_SECRET_KEY`, or generated once
//! into the data directory (mode 0600) and reused.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use base64::Engine as _;
use rand::RngCore as _;

const FILE_NAME: &str = "secret.key";

/// Could not read or create the key file.
#[derive(Debug, thiserror::Error)]
#[error("secret key file {path}: {source}")]
pub struct SecretKeyError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// Returns the key bytes from `configured`, or from `data_dir/secret.key`,
/// creating that file with 32 random bytes (base64) on first start.
pub fn load_or_create(
    configured: Option<&str>,
    data_dir: &Path,
) -> Result<Vec<u8>, SecretKeyError> {
    if let Some(key) = configured {
        return Ok(key.as_bytes().to_vec());
    }
    let path = data_dir.join(FILE_NAME);
    let err = |source| SecretKeyError {
        path: path.display().to_string(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            file.write_all(encoded.as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)?;
            tracing::info!(path = %path.display(), "generated a new secret key");
            Ok(encoded.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(err)?;
            let key = text.trim();
            if key.len() < 32 {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the key file is shorter than 32 characters",
                )));
            }
            Ok(key.as_bytes().to_vec())
        }
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(None, dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(None, dir.path()).unwrap(), first);
        assert_eq!(
            load_or_create(Some("configured"), dir.path()).unwrap(),
            b"configured"
        );
    }
}
