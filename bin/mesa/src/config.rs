//! Configuration from flags > environment > `mesa.toml` > defaults (SPEC §12).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Settings that may come from any source. `None` means "not given here".
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Layer {
    pub(crate) port: Option<u16>,
    pub(crate) bind: Option<String>,
    pub(crate) db: Option<PathBuf>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) template: Option<String>,
    pub(crate) workspace: Option<PathBuf>,
    pub(crate) archetypes: Option<PathBuf>,
    pub(crate) log_format: Option<String>,
    pub(crate) synchronous: Option<String>,
    pub(crate) max_runs: Option<u32>,
    pub(crate) board_token: Option<String>,
}

impl Layer {
    /// `self` where set, else `lower`.
    fn over(self, lower: Layer) -> Layer {
        Layer {
            port: self.port.or(lower.port),
            bind: self.bind.or(lower.bind),
            db: self.db.or(lower.db),
            data_dir: self.data_dir.or(lower.data_dir),
            template: self.template.or(lower.template),
            workspace: self.workspace.or(lower.workspace),
            archetypes: self.archetypes.or(lower.archetypes),
            log_format: self.log_format.or(lower.log_format),
            synchronous: self.synchronous.or(lower.synchronous),
            max_runs: self.max_runs.or(lower.max_runs),
            board_token: self.board_token.or(lower.board_token),
        }
    }

    /// The layer given by environment variables (SPEC §12 names them).
    pub(crate) fn from_env(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Layer> {
        let port = match get("PORT") {
            Some(p) => Some(
                p.parse()
                    .with_context(|| format!("PORT must be a port number, got {p:?}"))?,
            ),
            None => None,
        };
        let max_runs = match get("MESA_MAX_RUNS") {
            Some(n) => Some(
                n.parse()
                    .with_context(|| format!("MESA_MAX_RUNS must be a number, got {n:?}"))?,
            ),
            None => None,
        };
        Ok(Layer {
            port,
            bind: get("BIND"),
            db: get("DB").map(PathBuf::from),
            data_dir: get("MESA_DATA_DIR").map(PathBuf::from),
            template: get("TEMPLATE"),
            workspace: get("WORKSPACE").map(PathBuf::from),
            archetypes: get("ARCHETYPES").map(PathBuf::from),
            log_format: get("MESA_LOG_FORMAT"),
            synchronous: get("MESA_SYNCHRONOUS"),
            max_runs,
            board_token: get("MESA_BOARD_TOKEN"),
        })
    }

    /// The layer in a `mesa.toml` file, if the file exists.
    pub(crate) fn from_file(path: &Path, required: bool) -> anyhow::Result<Layer> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("invalid config file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Layer::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) port: u16,
    pub(crate) bind: String,
    pub(crate) db: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) template: String,
    pub(crate) workspace: PathBuf,
    pub(crate) archetypes: Option<PathBuf>,
    pub(crate) log_json: bool,
    pub(crate) synchronous: mesa_core::store_sqlite::Synchronous,
    pub(crate) max_runs: u32,
    pub(crate) board_token: Option<Secret>,
}

/// A secret value whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Config {
    /// Merges flags over environment over file over defaults. Relative paths are made absolute
    /// against `cwd`.
    pub(crate) fn resolve(
        flags: Layer,
        env: Layer,
        file: Layer,
        cwd: &Path,
    ) -> anyhow::Result<Config> {
        let merged = flags.over(env).over(file);
        let abs = |p: PathBuf| if p.is_absolute() { p } else { cwd.join(p) };
        if let Some(db) = merged
            .db
            .as_ref()
            .filter(|d| d.to_string_lossy().starts_with("postgres"))
        {
            bail!(
                "DB={}: PostgreSQL is not supported yet; give a SQLite file path",
                db.display()
            );
        }
        let data_dir = abs(merged.data_dir.unwrap_or_else(|| PathBuf::from(".mesa")));
        let db = merged.db.map_or_else(|| data_dir.join("mesa.db"), abs);
        let log_json = match merged.log_format.as_deref() {
            None | Some("human" | "text") => false,
            Some("json") => true,
            Some(other) => bail!("log format must be human or json, got {other:?}"),
        };
        let synchronous = match merged.synchronous.as_deref() {
            None => mesa_core::store_sqlite::Synchronous::Full,
            Some(s) => s.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        };
        Ok(Config {
            port: merged.port.unwrap_or(3001),
            bind: merged.bind.unwrap_or_else(|| "127.0.0.1".to_owned()),
            db,
            data_dir,
            template: merged.template.unwrap_or_else(|| "startup".to_owned()),
            workspace: abs(merged.workspace.unwrap_or_else(|| cwd.to_path_buf())),
            archetypes: merged.archetypes.map(abs),
            log_json,
            synchronous,
            max_runs: merged.max_runs.unwrap_or(4),
            board_token: merged.board_token.map(Secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let cwd = Path::new("/work");
        let file = Layer {
            port: Some(1),
            bind: Some("0.0.0.0".into()),
            template: Some("saas".into()),
            ..Layer::default()
        };
        let env = Layer {
            port: Some(2),
            bind: Some("127.0.0.2".into()),
            ..Layer::default()
        };
        let flags = Layer {
            port: Some(3),
            ..Layer::default()
        };
        let c = Config::resolve(flags, env, file, cwd).unwrap();
        assert_eq!(
            (c.port, c.bind.as_str(), c.template.as_str()),
            (3, "127.0.0.2", "saas")
        );
        let d = Config::resolve(Layer::default(), Layer::default(), Layer::default(), cwd).unwrap();
        assert_eq!(d.port, 3001);
        assert_eq!(d.bind, "127.0.0.1");
        assert_eq!(d.db, PathBuf::from("/work/.mesa/mesa.db"));
        assert_eq!(d.workspace, PathBuf::from("/work"));
    }

    #[test]
    fn env_layer_parses_and_rejects() {
        let env = |k: &str| match k {
            "PORT" => Some("9090".to_owned()),
            "DB" => Some("x.db".to_owned()),
            _ => None,
        };
        let l = Layer::from_env(env).unwrap();
        assert_eq!(l.port, Some(9090));
        assert!(Layer::from_env(|k| (k == "PORT").then(|| "http".to_owned())).is_err());
    }

    #[test]
    fn postgres_urls_are_refused_plainly() {
        let flags = Layer {
            db: Some("postgres://x".into()),
            ..Layer::default()
        };
        let err =
            Config::resolve(flags, Layer::default(), Layer::default(), Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("PostgreSQL"));
    }
}
