//! The wire: connection pooling, requests, responses, redirects, cookies and k6's error codes.
//! No Lua and no metric registry here: a request returns a [`Response`] per hop with its
//! timings, and the caller records them.

mod client;
mod connect;
mod cookies;
mod error;
mod h1;
mod pool;
mod settings;
pub(crate) mod tls;
mod types;

pub use client::Client;
pub use connect::Resolver;
pub use cookies::{parse_set_cookie, Cookie, CookieJar, Jar};
pub use error::{classify, ErrorCode};
pub use pool::Net;
pub use settings::Settings;
pub use tls::{ClientCert, Tls, TlsOptions};
pub use types::{
    canonical_header, ConnectionPolicy, Headers, RequestSpec, Response, ResponseType, Timings,
};
