//! A per-VU cookie jar: Set-Cookie in, Cookie header out, with domain, path and expiry rules
//! (RFC 6265, the parts a load test meets: login flows, CSRF cookies, logout).

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

/// Where a request finds its VU's cookies. A VU makes its jar when a cookie is first stored:
/// one that never gets a cookie (the journey's VUs) carries no jar.
pub trait Jar {
    /// The jar, if there is one yet.
    fn existing(&self) -> Option<&RefCell<CookieJar>>;
    /// The jar, made now if there is none yet.
    fn get(&self) -> &RefCell<CookieJar>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub domain: String,
    /// Whether the cookie also applies to subdomains (a Domain attribute was given).
    pub host_only: bool,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    pub expires: Option<SystemTime>,
}

#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Stores the cookie of one Set-Cookie header received from `host` for `request_path`.
    pub fn store(&mut self, header: &str, host: &str, request_path: &str) -> Option<Cookie> {
        let cookie = parse_set_cookie(header, host, request_path)?;
        self.cookies.retain(|c| {
            !(c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path)
        });
        let expired = cookie.expires.is_some_and(|e| e <= SystemTime::now());
        if !expired {
            self.cookies.push(cookie.clone());
        }
        Some(cookie)
    }

    /// Adds a cookie set by the script (`jar.set(url, name, value)`).
    pub fn set(&mut self, host: &str, name: &str, value: &str) {
        self.store(&format!("{name}={value}"), host, "/");
    }

    /// The cookies that apply to a request, as `(name, value)`, longest path first.
    pub fn matching(&self, host: &str, path: &str, secure: bool) -> Vec<(String, String)> {
        let now = SystemTime::now();
        let mut hits: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|e| e > now))
            .filter(|c| {
                if c.host_only {
                    c.domain == host
                } else {
                    domain_match(host, &c.domain)
                }
            })
            .filter(|c| path_match(path, &c.path))
            .filter(|c| secure || !c.secure)
            .collect();
        hits.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        hits.into_iter()
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect()
    }
}

fn domain_match(host: &str, domain: &str) -> bool {
    host == domain || (host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.'))
}

fn path_match(req: &str, cookie: &str) -> bool {
    req == cookie
        || (req.starts_with(cookie)
            && (cookie.ends_with('/') || req[cookie.len()..].starts_with('/')))
}

fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => request_path[..i].into(),
    }
}

/// One Set-Cookie header as a cookie for `host` (None: malformed or for another domain).
pub fn parse_set_cookie(header: &str, host: &str, request_path: &str) -> Option<Cookie> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut c = Cookie {
        name: name.to_string(),
        value: value.trim().trim_matches('"').to_string(),
        domain: host.to_string(),
        host_only: true,
        path: default_path(request_path),
        secure: false,
        http_only: false,
        expires: None,
    };
    let mut max_age_seen = false;
    for attr in parts {
        let (k, v) = attr
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .unwrap_or((attr.trim(), ""));
        match k.to_ascii_lowercase().as_str() {
            "domain" if !v.is_empty() => {
                let d = v.trim_start_matches('.').to_ascii_lowercase();
                if !domain_match(host, &d) {
                    return None; // a server may not set cookies for another domain
                }
                c.domain = d;
                c.host_only = false;
            }
            "path" if v.starts_with('/') => c.path = v.to_string(),
            "secure" => c.secure = true,
            "httponly" => c.http_only = true,
            "max-age" => {
                if let Ok(secs) = v.parse::<i64>() {
                    max_age_seen = true;
                    c.expires = Some(if secs <= 0 {
                        SystemTime::UNIX_EPOCH
                    } else {
                        SystemTime::now() + Duration::from_secs(secs as u64)
                    });
                }
            }
            "expires" if !max_age_seen => {
                if let Ok(t) = httpdate::parse_http_date(v) {
                    c.expires = Some(t);
                }
            }
            _ => {}
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_matches_by_domain_and_path() {
        let mut jar = CookieJar::default();
        jar.store("sid=abc; Path=/; HttpOnly", "app.example", "/login");
        jar.store("csrf=x1; Path=/api", "app.example", "/api/auth/csrf");
        assert_eq!(
            jar.matching("app.example", "/", false),
            vec![("sid".into(), "abc".into())]
        );
        assert_eq!(jar.matching("app.example", "/api/x", false).len(), 2);
        assert!(jar.matching("other.example", "/", false).is_empty());
    }

    #[test]
    fn max_age_zero_deletes() {
        let mut jar = CookieJar::default();
        jar.store("sid=abc", "h", "/");
        jar.store("sid=; Max-Age=0", "h", "/");
        assert!(jar.matching("h", "/", false).is_empty());
    }

    #[test]
    fn refuses_foreign_domain() {
        let mut jar = CookieJar::default();
        assert!(jar
            .store("a=b; Domain=evil.example", "app.example", "/")
            .is_none());
    }
}
