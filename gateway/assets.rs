//! Static files, embedded in the binary and served under a path that
//! changes with their content, so browsers may cache them for a year.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The site's icon: a page, drawn for docconv.
const ICON: &[u8] = include_bytes!("assets/icon.svg");
const ICON_TYPE: &str = "image/svg+xml";

const FILES: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("assets/app.js")),
    ("icon.svg", ICON_TYPE, ICON),
    ("style.css", "text/css; charset=utf-8", include_bytes!("assets/style.css")),
    (
        "turbo.es2017-esm.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/turbo/turbo.es2017-esm.js"),
    ),
];

/// A digest of every asset: one version for all, so that `app.js` can import
/// Turbo by a relative path.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for (name, _, bytes) in FILES {
        hasher.update(name.as_bytes());
        hasher.update(bytes);
    }
    docconv::ids::hex(&hasher.finalize()[..6])
});

/// Where pages link assets from, e.g. `/assets/1a2b3c4d5e6f`.
pub fn base_path() -> String {
    format!("/assets/{}", *VERSION)
}

pub async fn serve(Path((version, name)): Path<(String, String)>) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // An old version's URL still gets the current file, but must not be
    // cached as if it were the old one.
    let cache = if version == *VERSION { "public, max-age=31536000, immutable" } else { "no-cache" };
    ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, cache)], *bytes).into_response()
}

/// `/favicon.ico`, which browsers ask for wherever a page names no icon
/// (pages link `icon.svg`): the same icon, under a path that never changes,
/// so cached for a day only.
pub async fn favicon() -> Response {
    ([(header::CONTENT_TYPE, ICON_TYPE), (header::CACHE_CONTROL, "public, max-age=86400")], ICON).into_response()
}
