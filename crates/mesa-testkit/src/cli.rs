//! Finding the real agent CLIs the tests drive.

use std::path::PathBuf;

/// Where an agent CLI is: `$<env_var>`, else `name` on `PATH`.
/// Missing, it returns `None` with a notice outside CI, and panics when `CI` is set, so CI never
/// skips a real-CLI test silently.
#[expect(
    clippy::print_stderr,
    reason = "the skip notice must be visible in the test output"
)]
#[expect(
    clippy::disallowed_methods,
    reason = "test support: where the CLI is comes from the environment"
)]
pub fn agent_cli(env_var: &str, name: &str, package: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_var}={} does not exist",
            path.display()
        );
        return Some(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let install = format!(
            "npm install --prefix /tmp/{name} {package} and set \
             {env_var}=/tmp/{name}/node_modules/.bin/{name}"
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the `{name}` CLI is missing: {install}"
        );
        eprintln!(
            "NOTICE: skipping a real-CLI test: `{name}` is not on PATH and {env_var} is not set \
             ({install})"
        );
    }
    found
}
