//! `ngx_http_next_upstream_status_module`: pass a request on to the next upstream server after
//! any listed status, not only nginx's fixed few.
//!
//! Pure logic, no nginx types, testable without nginx:
//! - [`directive`]: parsing the directive's arguments;
//! - [`statuses`], [`methods`]: the sets it lists;
//! - [`decision`]: whether a response passes the request on;
//! - [`kept_answer`]: what is kept of a passed-over answer, and when it replaces nginx's 502;
//! - [`http2`]: the HTTP/2 frames an HTTP/2 upstream leaves in nginx's buffers.
//! - [`metrics`]: the counters' zone directive and their Prometheus text form.
//!
//! The nginx side (`nginx`, behind the default `nginx` feature): the module's statics and
//! registration, its configuration (`nginx::conf`), the hooks into nginx's upstream machinery
//! (`nginx::upstream`), the kept answer's filters (`nginx::kept_answer`), the counters' zone
//! and metrics location (`nginx::metrics`), the variables (`nginx::variables`) and its log
//! lines (`nginx::log`).

pub mod decision;
pub mod directive;
pub mod http2;
pub mod kept_answer;
pub mod methods;
pub mod metrics;
pub mod statuses;

#[cfg(feature = "nginx")]
mod nginx;
