//! The web client, embedded at build time. Nothing is loaded from anywhere else.

/// One embedded file.
pub(crate) struct Asset {
    pub(crate) body: &'static str,
    pub(crate) content_type: &'static str,
}

pub(crate) const INDEX: Asset = Asset {
    body: include_str!("../../web/index.html"),
    content_type: "text/html; charset=utf-8",
};

/// Files served under `/assets/`.
pub(crate) fn asset(name: &str) -> Option<Asset> {
    let (body, content_type) = match name {
        "app.js" => (
            include_str!("../../web/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "i18n.js" => (
            include_str!("../../web/i18n.js"),
            "text/javascript; charset=utf-8",
        ),
        "style.css" => (
            include_str!("../../web/style.css"),
            "text/css; charset=utf-8",
        ),
        "icon.svg" => (include_str!("../../web/icon.svg"), "image/svg+xml"),
        _ => return None,
    };
    Some(Asset { body, content_type })
}
