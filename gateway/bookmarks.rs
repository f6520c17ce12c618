//! Bookmarks written as JSON, for the `bookmarks` form field and the
//! command line's `--bookmarks`: an array of `{"title": "…", "page": 1,
//! "children": […], "open": true}`, the shape Gotenberg's `bookmarks`
//! field takes. Only the shape is checked here; the service checks the
//! values (and names the field).

use docconv::proto::v1::PdfBookmark;
use serde_json::Value;

/// The bookmarks `text` describes, or what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<PdfBookmark>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    level(&value)
}

fn level(value: &Value) -> Result<Vec<PdfBookmark>, String> {
    let items = value.as_array().ok_or("bookmarks are a JSON array of objects")?;
    items.iter().map(bookmark).collect()
}

fn bookmark(item: &Value) -> Result<PdfBookmark, String> {
    let object = item.as_object().ok_or("each bookmark is an object with a title and a page")?;
    if let Some(unknown) = object.keys().find(|k| !["title", "page", "children", "open"].contains(&k.as_str())) {
        return Err(format!("unknown key {unknown:?}: use title, page, children and open"));
    }
    let title = object.get("title").and_then(Value::as_str).ok_or("each bookmark needs a \"title\" string")?;
    let page = object.get("page").and_then(Value::as_u64).ok_or("each bookmark needs a \"page\" number, from 1")?;
    let open = match object.get("open") {
        None => None,
        Some(open) => Some(open.as_bool().ok_or("\"open\" is true or false")?),
    };
    Ok(PdfBookmark {
        title: title.to_owned(),
        page: u32::try_from(page).map_err(|_| "a page number is too large")?,
        children: object.get("children").map(level).transpose()?.unwrap_or_default(),
        open,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bookmarks_keep_their_tree() {
        let parsed = parse(r#"[{"title": "A", "page": 1, "children": [{"title": "B", "page": 3, "open": false}]}]"#);
        let expected = vec![PdfBookmark {
            title: "A".into(),
            page: 1,
            children: vec![PdfBookmark { title: "B".into(), page: 3, children: vec![], open: Some(false) }],
            open: None,
        }];
        assert_eq!(parsed, Ok(expected));
        for bad in ["{}", "[1]", r#"[{"title": "A"}]"#, r#"[{"title": "A", "page": -1}]"#, r#"[{"name": "A"}]"#, "["] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
