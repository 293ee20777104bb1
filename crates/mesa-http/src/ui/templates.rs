//! The template environment: minijinja templates embedded at build time (or read from disk on
//! every render, for editing them without rebuilding: `mesa serve` does that when
//! `MESA_DEV_TEMPLATES` names the `templates/` directory), strict about undefined variables, with the dashboard's filters and the
//! `asset()` function registered.

use std::path::PathBuf;
use std::sync::Arc;

use mesa_core::domain::Timestamp;
use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};

use super::assets;
use super::markdown;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

pub(crate) use embedded::{ASSETS, TEMPLATES};

/// The dashboard's templates.
#[derive(Clone)]
pub struct Templates {
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// Compiled into the binary; parsed once.
    Embedded(Arc<Environment<'static>>),
    /// Read from this directory at every render (development).
    Disk(PathBuf),
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Embedded(_) => f.write_str("Templates(embedded)"),
            Source::Disk(dir) => write!(f, "Templates({})", dir.display()),
        }
    }
}

impl Templates {
    /// The templates compiled into the binary. Panics only if a template does not parse,
    /// which the crate's tests rule out before a build ships.
    pub fn embedded() -> Self {
        let mut env = base_environment();
        for (name, source) in TEMPLATES {
            if let Err(err) = env.add_template(name, source) {
                panic!("embedded template {name} does not parse: {err:#}");
            }
        }
        Templates {
            source: Source::Embedded(Arc::new(env)),
        }
    }

    /// Templates read from `dir` at every render, so edits show on reload.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        Templates {
            source: Source::Disk(dir.into()),
        }
    }

    /// The names of every embedded page template (`pages/*.html`).
    pub fn page_names() -> impl Iterator<Item = &'static str> {
        TEMPLATES
            .iter()
            .map(|(name, _)| *name)
            .filter(|n| n.starts_with("pages/"))
    }

    /// Renders template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, Error> {
        match &self.source {
            Source::Embedded(env) => env.get_template(name)?.render(ctx),
            Source::Disk(dir) => {
                let mut env = base_environment();
                let dir = dir.clone();
                env.set_loader(move |name| load_from(&dir, name));
                env.get_template(name)?.render(ctx)
            }
        }
    }
}

/// Reads template `name` under `dir`, refusing names that leave it.
fn load_from(dir: &std::path::Path, name: &str) -> Result<Option<String>, Error> {
    if name.split('/').any(|part| part == ".." || part.is_empty()) || name.starts_with('/') {
        return Ok(None);
    }
    match std::fs::read_to_string(dir.join(name)) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => {
            Err(Error::new(ErrorKind::InvalidOperation, "template unreadable").with_source(err))
        }
    }
}

fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.set_formatter(format_value);
    env.add_function("asset", |name: &str| -> Result<String, Error> {
        assets::url(name).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("no static file {name}"),
            )
        })
    });
    env.add_filter("timeago", timeago);
    env.add_filter("datetime", datetime);
    env.add_filter("usd", usd);
    env.add_filter("micro_usd", micro_usd);
    env.add_filter("tokens", tokens);
    env.add_filter("duration_ms", duration_ms);
    env.add_filter("markdown", |text: &str| {
        Value::from_safe_string(markdown::render(text))
    });
    env
}

/// Writes `{{ value }}`: in HTML templates, strings are escaped for text and quoted
/// attributes (`& < > " '`), leaving `/` alone so URLs read as written; everything else as
/// minijinja does by default.
fn format_value(
    out: &mut minijinja::Output<'_>,
    state: &mut State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    if matches!(state.auto_escape(), minijinja::AutoEscape::Html)
        && !value.is_safe()
        && let Some(text) = value.as_str()
    {
        let mut last = 0;
        for (i, c) in text.char_indices() {
            let entity = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            out.write_str(&text[last..i]).map_err(Error::from)?;
            out.write_str(entity).map_err(Error::from)?;
            last = i + 1;
        }
        return out.write_str(&text[last..]).map_err(Error::from);
    }
    minijinja::escape_formatter(out, state, value)
}

/// The render's clock (`now_ms` in the context), or the system clock.
fn now(state: &State<'_, '_>) -> i64 {
    state
        .lookup("now_ms")
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or_else(|| mesa_core::Clock::now(&mesa_core::SystemClock).as_millis())
}

fn parse_time(value: &Value) -> Option<Timestamp> {
    if let Some(text) = value.as_str() {
        return Timestamp::parse_rfc3339("time", text).ok();
    }
    i64::try_from(value.clone())
        .ok()
        .map(Timestamp::from_millis)
}

/// "3 min ago", "in 2 h", "just now"; an RFC 3339 string or milliseconds in, "" for none.
fn timeago(state: &State<'_, '_>, value: &Value) -> String {
    let Some(t) = parse_time(value) else {
        return String::new();
    };
    relative(t.as_millis() - now(state))
}

/// A signed distance in milliseconds as human text.
pub(crate) fn relative(delta_ms: i64) -> String {
    let secs = delta_ms.abs() / 1000;
    let (n, unit) = match secs {
        0..=44 => return "just now".to_owned(),
        45..=3_599 => ((secs + 30) / 60, "min"),
        3_600..=86_399 => ((secs + 1_800) / 3_600, "h"),
        86_400..=2_591_999 => ((secs + 43_200) / 86_400, "d"),
        _ => ((secs + 1_296_000) / 2_592_000, "mo"),
    };
    let n = n.max(1);
    if delta_ms < 0 {
        format!("{n} {unit} ago")
    } else {
        format!("in {n} {unit}")
    }
}

/// "2026-11-25 14:03 UTC" from RFC 3339 or milliseconds.
fn datetime(value: &Value) -> String {
    let Some(t) = parse_time(value) else {
        return String::new();
    };
    let text = t.to_rfc3339();
    // 2026-11-25T14:03:05.123Z → 2026-11-25 14:03 UTC
    match (text.get(0..10), text.get(11..16)) {
        (Some(day), Some(hm)) => format!("{day} {hm} UTC"),
        _ => text,
    }
}

/// Dollars as "$1.23" (cents; "$0.0042" below a cent, so small runs do not read as free).
fn usd(value: Value) -> String {
    let dollars = f64::try_from(value).unwrap_or(0.0);
    format_usd(dollars)
}

/// Micro-dollars (integers) as "$1.23".
fn micro_usd(value: Value) -> String {
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let dollars = i64::try_from(value).unwrap_or(0) as f64 / 1_000_000.0;
    format_usd(dollars)
}

pub(crate) fn format_usd(dollars: f64) -> String {
    if dollars != 0.0 && dollars.abs() < 0.01 {
        format!("${dollars:.4}")
    } else {
        format!("${dollars:.2}")
    }
}

/// Token counts as "950", "12.3k", "4.1M".
fn tokens(value: Value) -> String {
    let n = i64::try_from(value).unwrap_or(0);
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let f = n as f64;
    match n.abs() {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", f / 1_000.0),
        _ => format!("{:.1}M", f / 1_000_000.0),
    }
}

/// Milliseconds as "850 ms", "12.4 s", "3 min 5 s".
fn duration_ms(value: Value) -> String {
    let ms = i64::try_from(value).unwrap_or(0);
    match ms {
        ..=999 => format!("{ms} ms"),
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(0), "just now");
        assert_eq!(relative(-90_000), "2 min ago");
        assert_eq!(relative(-3 * 3_600_000), "3 h ago");
        assert_eq!(relative(2 * 86_400_000), "in 2 d");
    }

    #[test]
    fn money_and_tokens_format() {
        assert_eq!(format_usd(1.234), "$1.23");
        assert_eq!(format_usd(0.0042), "$0.0042");
        assert_eq!(format_usd(0.0), "$0.00");
        assert_eq!(tokens(Value::from(12_345)), "12.3k");
        assert_eq!(tokens(Value::from(950)), "950");
        assert_eq!(duration_ms(Value::from(125_000)), "2 min 5 s");
    }

    #[test]
    fn html_output_escapes_markup_but_not_slashes() {
        let mut env = base_environment();
        env.add_template("t.html", "<a href=\"{{ u }}\" title='{{ t }}'>{{ t }}</a>")
            .expect("parses");
        let html = env
            .get_template("t.html")
            .and_then(|t| t.render(minijinja::context! { u => "/issues/A-1", t => "<b>'x\" & y" }))
            .expect("renders");
        assert_eq!(
            html,
            "<a href=\"/issues/A-1\" title='&lt;b&gt;&#39;x&quot; &amp; y'>&lt;b&gt;&#39;x&quot; &amp; y</a>"
        );
    }

    #[test]
    fn disk_loader_refuses_paths_that_leave_the_directory() {
        let dir = std::env::temp_dir();
        assert!(
            load_from(&dir, "../etc/passwd")
                .expect("no error")
                .is_none()
        );
        assert!(load_from(&dir, "/etc/passwd").expect("no error").is_none());
    }
}
