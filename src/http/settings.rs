//! How a run's VUs speak HTTP, resolved once from the CLI, the environment and the script's
//! options: the connection policy, the pool bound, k6's HTTP options and the resolver/TLS.

use super::client::Client;
use super::pool::Net;
use super::types::ConnectionPolicy;
use std::sync::Arc;

/// Everything a worker needs to build its pools; identical across workers.
#[derive(Clone)]
pub struct Settings {
    pub policy: ConnectionPolicy,
    pub user_agent: String,
    /// k6's `discardResponseBodies`: responses default to `responseType: "none"`.
    pub discard_response_bodies: bool,
    /// k6's `noCookiesReset`: the VU's jar survives from one iteration to the next.
    pub no_cookies_reset: bool,
    /// Resolver, TLS settings and h2c, shared by every pool of the run.
    pub net: Arc<Net>,
    /// Sockets one worker's shared pool may open (None: unbounded).
    pub max_connections: Option<usize>,
    /// k6's `throw`: a request that gets no response raises an error in the script.
    pub throw: bool,
    /// k6's `maxRedirects` when set; requests without `redirects` follow 10 otherwise.
    pub max_redirects: Option<u32>,
}

impl Settings {
    /// The worker-wide pool (the only one under the shared policy).
    pub fn worker_client(&self) -> Result<Client, String> {
        Client::new(
            self.policy,
            &self.user_agent,
            self.max_connections,
            self.net.clone(),
        )
    }

    /// A VU's own pool under the per-VU and per-iteration policies.
    pub fn vu_client(&self) -> Result<Client, String> {
        Client::new(self.policy, &self.user_agent, None, self.net.clone())
    }
}
