//! Static files (`templates/static/`: vendored htmx and its SSE extension, the stylesheet, the
//! client script, icons), compiled into the binary and served at
//! `/static/<content hash>/<path>` with `Cache-Control: immutable`: a new build with a changed
//! file gets a new URL, so browsers never run a stale script.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::templates::ASSETS;

/// One embedded file.
struct Asset {
    bytes: &'static [u8],
    /// The first 12 hex digits of its SHA-256: the URL's version segment and the ETag.
    hash: String,
}

static INDEX: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|(path, bytes)| {
            let digest = hex::encode(Sha256::digest(bytes));
            (
                *path,
                Asset {
                    bytes,
                    hash: digest[..12].to_owned(),
                },
            )
        })
        .collect()
});

/// The URL of static file `path` (relative to `templates/static/`), if it exists.
pub(crate) fn url(path: &str) -> Option<String> {
    INDEX
        .get(path)
        .map(|asset| format!("/static/{}/{path}", asset.hash))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt" | "md" | "LICENSE") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `GET /static/{hash}/{*path}`. A hash that is not the file's current one still gets the
/// current file (an old page open in a tab keeps working) but without the immutable caching.
pub(crate) async fn serve(
    Path((hash, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = INDEX.get(path.as_str()) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let etag = format!("\"{}\"", asset.hash);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let cache = if hash == asset.hash {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = asset.bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_scripts_are_embedded_with_versioned_urls() {
        let htmx = url("vendor/htmx.min.js").expect("htmx is vendored");
        assert!(htmx.starts_with("/static/") && htmx.ends_with("/vendor/htmx.min.js"));
        assert!(url("vendor/htmx-ext-sse.min.js").is_some());
        assert!(url("nope.js").is_none());
    }

    #[test]
    fn vendored_files_match_their_recorded_checksums() {
        let table = std::str::from_utf8(INDEX.get("vendor/VENDOR.md").expect("listed").bytes)
            .expect("utf-8");
        let mut checked = 0;
        for line in table
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains(".js "))
        {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (file, sha) = (cells[1], cells[5]);
            let asset = INDEX
                .get(format!("vendor/{file}").as_str())
                .unwrap_or_else(|| panic!("{file} is listed but not embedded"));
            assert_eq!(hex::encode(Sha256::digest(asset.bytes)), sha, "{file}");
            checked += 1;
        }
        assert_eq!(checked, 2, "both vendored scripts are recorded");
    }
}
