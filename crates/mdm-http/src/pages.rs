//! What the browser pages share: the templates, the device a User-Agent
//! names, session cookies, the client address and form rendering.

use crate::error::page_status;
use askama::Template;
use axum::extract::FromRequestParts;
use axum::extract::connect_info::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mdm_core::CoreError;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The kind of device a browser runs on, from its User-Agent.
///
/// iPadOS 13+ Safari sends a Macintosh User-Agent by default, and the touch
/// hint (`navigator.maxTouchPoints`) is only visible to JavaScript, which
/// these pages do without. So "Macintosh" is taken as a Mac, and the Mac
/// page links to the iPhone/iPad flow (`?device=ios`); the profile differs
/// only in the macOS per-user channel, so a wrong guess still enrols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Ios,
    Mac,
    Android,
    Desktop,
}

impl Device {
    pub fn from_headers(headers: &HeaderMap, forced: Option<&str>) -> Device {
        match forced {
            Some("ios") => return Device::Ios,
            Some("mac") => return Device::Mac,
            Some("android") => return Device::Android,
            _ => {}
        }
        let ua = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Self::from_user_agent(ua)
    }

    pub fn from_user_agent(ua: &str) -> Device {
        if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
            Device::Ios
        } else if ua.contains("Android") {
            Device::Android
        } else if ua.contains("Macintosh") {
            Device::Mac
        } else {
            Device::Desktop
        }
    }
}

/// The client's IP address, when the server knows it (`ConnectInfo`).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` for a session: HttpOnly, SameSite=Strict, limited to `path`.
pub fn session_cookie(
    name: &str,
    value: &str,
    path: &str,
    secure: bool,
    max_age: i64,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// Renders a template with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, no_store(), Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown",
            )
                .into_response()
        }
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

/// A 303 to `to`, optionally setting a cookie.
pub fn see_other(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    if let Some(c) = cookie {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    res
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub text: &'a str,
    pub link: Option<&'a str>,
    pub link_text: &'a str,
}

/// A page with one message.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(
        status,
        &MessagePage {
            title,
            text,
            link: None,
            link_text: "",
        },
    )
}

/// The page for a domain error on a browser route: a clear sentence, never a dump.
pub fn error_page(e: CoreError) -> Response {
    let status = page_status(&e);
    match e {
        CoreError::Gone { message, .. } => {
            message_page(status, "This link is out of date", &message)
        }
        CoreError::NotFound(_) => message_page(
            status,
            "Unknown link",
            "Check the link in your invitation, or ask your administrator for a new one.",
        ),
        CoreError::Invalid { message, .. } => {
            message_page(status, "Something is missing", &message)
        }
        CoreError::Forbidden(m) => message_page(status, "Not available", m),
        other => {
            tracing::error!(error = %other, "registration page failed");
            message_page(
                status,
                "Try again later",
                "The server could not do this right now. Try again in a few minutes.",
            )
        }
    }
}

fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    message(status, title, text)
}

/// An inline SVG QR code of `data`.
pub fn qr_svg(data: &str) -> String {
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .build(),
        Err(_) => String::new(),
    }
}

/// A signed management profile as a download.
pub fn profile_download(issued: mdm_core::profiles::IssuedProfile) -> Response {
    let mut res = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"enroll.mobileconfig\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        issued.signed,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&issued.registration) {
        res.headers_mut().insert("x-registration", v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_from_user_agents() {
        let cases = [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148 Safari/604.1",
                Device::Ios,
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 12_5 like Mac OS X) AppleWebKit/605.1.15",
                Device::Ios,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
                Device::Mac,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
                Device::Android,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
                Device::Desktop,
            ),
            ("", Device::Desktop),
        ];
        for (ua, want) in cases {
            assert_eq!(Device::from_user_agent(ua), want, "{ua}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; mdm_go=xyz"));
        assert_eq!(cookie(&h, "mdm_go").as_deref(), Some("xyz"));
        assert_eq!(Device::from_headers(&h, Some("ios")), Device::Ios);
    }
}
