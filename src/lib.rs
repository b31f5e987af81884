//! `ngx_http_next_upstream_status_module`: pass a request on to the next upstream server after
//! any listed status, not only nginx's fixed few.
//!
//! Pure logic, no nginx types, testable without nginx:
//! - [`directive`]: parsing the directive's arguments;
//! - [`statuses`], [`methods`]: the sets it lists;
//! - [`decision`]: whether a response passes the request on;
//! - [`kept_answer`]: what is kept of a passed-over answer, and when it replaces nginx's 502;
//! - [`chunked`]: HTTP/1.1 chunked bodies, as a kept answer's body arrives;
//! - [`http2`]: the HTTP/2 frames an HTTP/2 upstream leaves in nginx's buffers;
//! - [`metrics`]: the counters' zone directive and their Prometheus text form;
//! - [`slots`]: a slot per function met, for wrappers that must know what they wrap.
//!
//! The nginx side (`nginx`, behind the default `nginx` feature) is described in its own
//! module, layer by layer.

pub mod chunked;
pub mod decision;
pub mod directive;
pub mod http2;
pub mod kept_answer;
pub mod methods;
pub mod metrics;
pub mod slots;
pub mod statuses;

#[cfg(feature = "nginx")]
mod nginx;
