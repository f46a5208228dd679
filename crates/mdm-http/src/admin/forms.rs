//! Form bodies of the admin pages: `application/x-www-form-urlencoded`
//! (with repeated keys, for selections) and `multipart/form-data` (the CSV
//! upload). Every form carries the session's CSRF token as `csrf`.

use axum::http::{HeaderMap, header};

/// The fields of a submitted form, in order, and an uploaded file.
#[derive(Debug, Default)]
pub struct FormData {
    pairs: Vec<(String, String)>,
    /// The first uploaded file's contents, by field name.
    pub files: Vec<(String, Vec<u8>)>,
}

impl FormData {
    /// Parses the body by its content type; anything else is an empty form.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> FormData {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if ct.starts_with("multipart/form-data") {
            match boundary(ct) {
                Some(b) => multipart(body, &b),
                None => FormData::default(),
            }
        } else if ct.starts_with("application/x-www-form-urlencoded") {
            FormData {
                pairs: form_urlencoded::parse(body).into_owned().collect(),
                files: Vec::new(),
            }
        } else {
            FormData::default()
        }
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The first value of `name`, untrimmed (passwords).
    pub fn raw(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name` (checkbox selections).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// The uploaded file of field `name`.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| {
        p.trim()
            .strip_prefix("boundary=")
            .map(|b| b.trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The value of `key="…"` in a Content-Disposition header.
fn disposition_param(line: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=\"");
    let start = line.find(&pat)? + pat.len();
    let end = line[start..].find('"')? + start;
    Some(line[start..end].to_string())
}

fn multipart(body: &[u8], boundary: &str) -> FormData {
    let delim = format!("--{boundary}");
    let mut form = FormData::default();
    let Some(mut pos) = find(body, delim.as_bytes(), 0) else {
        return form;
    };
    loop {
        let start = pos + delim.len();
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(headers_end) = find(body, b"\r\n\r\n", start) else {
            break;
        };
        let next_delim = format!("\r\n{delim}");
        let Some(end) = find(body, next_delim.as_bytes(), headers_end + 4) else {
            break;
        };
        let head = String::from_utf8_lossy(&body[start..headers_end]);
        let content = &body[headers_end + 4..end];
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default();
        if let Some(name) = disposition_param(disposition, "name") {
            if disposition.contains("filename=") {
                form.files.push((name, content.to_vec()));
            } else {
                form.pairs
                    .push((name, String::from_utf8_lossy(content).into_owned()));
            }
        }
        pos = end + 2;
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn urlencoded_and_multipart() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let f = FormData::parse(&h, b"csrf=abc&user=1&user=2&q=+a%40b+");
        assert_eq!(f.get("csrf"), "abc");
        assert_eq!(f.all("user"), vec!["1", "2"]);
        assert_eq!(f.get("q"), "a@b");
        assert_eq!(f.get("missing"), "");

        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=----XyZ"),
        );
        let body = b"------XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n------XyZ\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"u.csv\"\r\nContent-Type: text/csv\r\n\r\nemail\r\na@example.com\r\n\r\n------XyZ--\r\n";
        let f = FormData::parse(&h, body);
        assert_eq!(f.get("csrf"), "tok");
        assert_eq!(f.file("csv"), Some(&b"email\r\na@example.com\r\n"[..]));
        // Broken bodies give what could be read, never a panic.
        for cut in 0..body.len() {
            let _ = FormData::parse(&h, &body[..cut]);
        }
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(FormData::parse(&h, b"csrf=abc").get("csrf"), "");
    }
}
