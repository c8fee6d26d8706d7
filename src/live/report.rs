//! The page, live or as a self-contained report. Every asset (uPlot, the page's script and
//! style) is compiled into the binary and inlined, so neither needs a network.

use flate2::write::GzEncoder;
use serde_json::Value;
use std::io::Write;

const PAGE: &str = include_str!("web/page.html");
const APP_JS: &str = include_str!("web/app.js");
const APP_CSS: &str = include_str!("web/app.css");
const UPLOT_JS: &str = include_str!("web/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("web/vendor/uPlot.min.css");

/// The live page: it reads `/events`.
pub fn live_page() -> String {
    page("live dashboard", "live", "window.ENGINE_REPORT = null;")
}

/// The report: `events` ([kind, document] pairs: meta, series, state) gzipped and embedded
/// as base64 (the page inflates them with the browser's DecompressionStream).
pub fn report_page(events: &[(&str, &Value)]) -> String {
    let json = serde_json::to_vec(events).expect("JSON values serialise");
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json).expect("writing to memory");
    let packed = gz.finish().expect("writing to memory");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(packed);
    page(
        "report",
        "report",
        &format!("window.ENGINE_REPORT = \"{b64}\";"),
    )
}

fn page(title: &str, mode: &str, data: &str) -> String {
    // `</script>` cannot occur in the inlined code: base64 and the vendored file have none.
    PAGE.replace("{{TITLE}}", title)
        .replace("{{MODE}}", mode)
        .replace("{{UPLOT_CSS}}", UPLOT_CSS)
        .replace("{{APP_CSS}}", APP_CSS)
        .replace("{{UPLOT_JS}}", UPLOT_JS)
        .replace("{{DATA}}", data)
        .replace("{{APP_JS}}", APP_JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_embeds_everything_and_no_network_address() {
        let meta = serde_json::json!({"script": "x.lua"});
        let html = report_page(&[("meta", &meta)]);
        assert!(html.contains("uPlot"));
        assert!(
            html.contains("window.ENGINE_REPORT = \"H4sI"),
            "gzip magic in base64"
        );
        assert!(!html.contains("{{"), "every placeholder filled");
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
        assert_eq!(html.matches("</script>").count(), 3);
    }
}
