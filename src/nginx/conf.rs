//! Everything configuration-time: the module's handle on its own configuration ([`Module`]),
//! what the directives fill in, their handlers (but the metrics location's, which is with the
//! content handler it installs, in `counters.rs`), and the checks made when the http block
//! is complete. Below every callback that reads the configuration.

use core::cell::Cell;
use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};

use ngx::core::NGX_CONF_ERROR;
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_http_request_t, ngx_http_upstream_conf_t,
    ngx_http_upstream_srv_conf_t, ngx_int_t, ngx_pagesize, ngx_str_t, ngx_uint_t, NGX_HTTP_COPY,
    NGX_HTTP_DELETE, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_LOCK, NGX_HTTP_MKCOL, NGX_HTTP_MOVE,
    NGX_HTTP_OPTIONS, NGX_HTTP_PATCH, NGX_HTTP_POST, NGX_HTTP_PROPFIND, NGX_HTTP_PROPPATCH,
    NGX_HTTP_PUT, NGX_HTTP_UNLOCK,
};
use ngx::http::{
    HttpModule, HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, Merge,
    MergeConfigError,
};
use thiserror::Error;

use crate::directive::{self, Directive};
use crate::methods::{Method, MethodSet};
use crate::metrics::parse_zone;
use crate::nginx::zone::{self, Zone};
use crate::statuses::StatusSet;

/// This module, as the `ngx` crate's configuration and context helpers know it. Its
/// `HttpModule` impl, which names the `ngx_module_t`, is with the registration
/// (`nginx.rs`).
pub struct Module;

// SAFETY: `MainConf` is the type this module's `create_main_conf` allocates.
unsafe impl HttpModuleMainConf for Module {
    type MainConf = MainConf;
}

// SAFETY: `SrvConf` is the type this module's `create_srv_conf` allocates.
unsafe impl HttpModuleServerConf for Module {
    type ServerConf = SrvConf;
}

/// Per server and per `upstream {}` block: where an explicit upstream block keeps the
/// `peer.init` the module wrapped, so that the request path finds it without a search.
/// (An implicit block, from `proxy_pass http://host:port`, has no srv confs: its original
/// stays in `MainConf::originals`.)
#[derive(Debug, Default)]
pub struct SrvConf {
    pub original: Option<InitPeer>,
}

// SAFETY: `LocConf` is the type this module's `create_loc_conf` allocates.
unsafe impl HttpModuleLocationConf for Module {
    type LocationConf = LocConf;
}

/// Why the http block's configuration cannot be completed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SetupError {
    #[error(
        "\"next_upstream_status_metrics\" needs \"next_upstream_status_zone\" in the http block"
    )]
    MetricsWithoutZone,
    #[error("no main configuration")]
    NoMainConf,
    #[error("no upstream configuration")]
    NoUpstreamConf,
}

/// The location's rule in the form the request path asks it: a status set and nginx's own
/// method bits, so that a response is judged with a lookup and a mask.
#[derive(Clone, Debug)]
pub struct PassOnRule {
    pub statuses: StatusSet,
    pub methods: ngx_uint_t,
    pub keep_answer: bool,
    /// The location's upstream configuration and this worker's copy of it that passes a 404
    /// on, made the first time a request is passed on (see `upstream::conf_passing_404`).
    pub conf_passing_404: Cell<(*mut ngx_http_upstream_conf_t, *mut ngx_http_upstream_conf_t)>,
}

/// What a level says about passing on: nothing (it inherits), `off`, or a rule.
#[derive(Clone, Debug, Default)]
enum LevelRule {
    #[default]
    Inherited,
    Off,
    On(PassOnRule),
}

#[derive(Debug, Default)]
pub struct LocConf {
    rule: LevelRule,
}

impl LocConf {
    /// The rule in force here, or `None` when the directive is off or never used.
    #[inline]
    pub fn pass_on_rule(&self) -> Option<&PassOnRule> {
        match &self.rule {
            LevelRule::On(rule) => Some(rule),
            LevelRule::Inherited | LevelRule::Off => None,
        }
    }
}

impl Merge for LocConf {
    fn merge(&mut self, prev: &LocConf) -> Result<(), MergeConfigError> {
        if let LevelRule::Inherited = self.rule {
            self.rule = prev.rule.clone();
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct MainConf {
    /// Whether any level turns the directive on; if none does, nothing is installed and nginx
    /// behaves exactly as without the module.
    pub used: bool,
    /// The implicit upstream blocks' own `peer.init` (explicit blocks keep theirs in their
    /// `SrvConf`), saved when the module wraps them, sorted by block address. Dropped with
    /// the configuration (`create_main_conf` allocates the main conf with a cleanup handler).
    pub originals: Box<[Original]>,
    /// `next_upstream_status_zone`: the counters' shared memory, if configured.
    pub zone: Option<NonNull<Zone>>,
    /// Whether a location has `next_upstream_status_metrics`.
    pub metrics_used: bool,
}

pub type InitPeer =
    unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_http_upstream_srv_conf_t) -> ngx_int_t;

/// An upstream block and the `peer.init` its balancer set.
#[derive(Clone, Copy, Debug)]
pub struct Original {
    pub upstream: *const ngx_http_upstream_srv_conf_t,
    pub init: InitPeer,
}

/// The `peer.init` the module wrapped for `upstream`, a block of `r`'s configuration: an
/// explicit block keeps it in its srv conf, an implicit one in the main conf.
#[inline(always)]
pub fn original_init(
    r: &ngx_http_request_t,
    upstream: *const ngx_http_upstream_srv_conf_t,
) -> Option<InitPeer> {
    // SAFETY: `upstream` is a block of this configuration (nginx passes it to peer.init).
    let srv_conf = unsafe { (*upstream).srv_conf };
    if srv_conf.is_null() {
        return Module::main_conf(r)?.implicit_original_init(upstream);
    }
    // SAFETY: an explicit block's srv confs hold one per http module, this module's made by
    // its `create_srv_conf`.
    let conf = unsafe { *srv_conf.add(Module::module().ctx_index) }.cast::<SrvConf>();
    // SAFETY: as above; a valid `SrvConf` for the configuration's lifetime.
    unsafe { conf.as_ref() }.and_then(|c| c.original)
}

impl MainConf {
    /// The `peer.init` the module wrapped for the implicit block `upstream`.
    #[cold]
    fn implicit_original_init(
        &self,
        upstream: *const ngx_http_upstream_srv_conf_t,
    ) -> Option<InitPeer> {
        let i = self
            .originals
            .binary_search_by_key(&upstream, |e| e.upstream)
            .ok()?;
        Some(self.originals[i].init)
    }

    /// Postconfiguration: the metrics location needs a zone to read.
    pub fn check(&self) -> Result<(), SetupError> {
        if self.metrics_used && self.zone.is_none() {
            return Err(SetupError::MetricsWithoutZone);
        }
        Ok(())
    }

    /// The counters' zone, when one is configured and initialised.
    pub fn zone(&self) -> Option<&'static Zone> {
        // SAFETY: the zone's `Zone` is in the configuration pool, which outlives requests.
        let zone = unsafe { self.zone?.as_ref() };
        zone.is_ready().then_some(zone)
    }
}

/// Handles `proxy_next_upstream_status off | STATUS ... [methods=...] [keep_answer=on|off]`.
///
/// # Safety
/// Called by nginx with a valid `cf` whose arguments are the directive's, and `conf` pointing
/// at this module's `LocConf` for the level being parsed.
pub unsafe extern "C" fn set_proxy_next_upstream_status(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx passes this module's location configuration for the current level.
    let lcf = unsafe { &mut *conf.cast::<LocConf>() };
    if !matches!(lcf.rule, LevelRule::Inherited) {
        return c"is duplicate".as_ptr().cast_mut();
    }

    // SAFETY: `cf` is valid while the directive is parsed; `cf->args` holds the directive's
    // name followed by its arguments, each a valid `ngx_str_t`.
    let args = unsafe { (*(*cf).args).as_slice::<ngx_str_t>() };
    let parsed = directive::parse(args.iter().skip(1).map(ngx_str_t::as_bytes));

    lcf.rule = match parsed {
        Ok(Directive::Off) => LevelRule::Off,
        Ok(Directive::On(rule)) => {
            // SAFETY: `cf` is an http-level configuration context while parsing this directive.
            if let Some(mcf) = Module::main_conf_mut(unsafe { &*cf }) {
                mcf.used = true;
            }
            LevelRule::On(PassOnRule {
                statuses: rule.statuses,
                methods: nginx_method_bits(rule.methods),
                keep_answer: rule.keep_answer,
                conf_passing_404: Cell::new((ptr::null_mut(), ptr::null_mut())),
            })
        }
        Err(err) => {
            ngx::ngx_conf_log_error!(ngx::ffi::NGX_LOG_EMERG, cf, "{err}");
            return NGX_CONF_ERROR;
        }
    };
    ptr::null_mut()
}

fn nginx_method_bits(methods: MethodSet) -> ngx_uint_t {
    methods.iter().fold(0, |bits, method| {
        bits | match method {
            Method::Get => NGX_HTTP_GET,
            Method::Head => NGX_HTTP_HEAD,
            Method::Post => NGX_HTTP_POST,
            Method::Put => NGX_HTTP_PUT,
            Method::Delete => NGX_HTTP_DELETE,
            Method::Mkcol => NGX_HTTP_MKCOL,
            Method::Copy => NGX_HTTP_COPY,
            Method::Move => NGX_HTTP_MOVE,
            Method::Options => NGX_HTTP_OPTIONS,
            Method::Propfind => NGX_HTTP_PROPFIND,
            Method::Proppatch => NGX_HTTP_PROPPATCH,
            Method::Lock => NGX_HTTP_LOCK,
            Method::Unlock => NGX_HTTP_UNLOCK,
            Method::Patch => NGX_HTTP_PATCH,
        } as ngx_uint_t
    })
}

/// Handles `next_upstream_status_zone NAME [SIZE]` in the http block.
///
/// # Safety
/// Called by nginx with a valid `cf` whose arguments are the directive's, and `conf` pointing
/// at this module's `MainConf`.
pub unsafe extern "C" fn set_next_upstream_status_zone(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx passes this module's main configuration.
    let mcf = unsafe { &mut *conf.cast::<MainConf>() };
    if mcf.zone.is_some() {
        return c"is duplicate".as_ptr().cast_mut();
    }
    // SAFETY: `cf->args` holds the directive's name and arguments, valid `ngx_str_t`s in the
    // configuration pool.
    let args = unsafe { (*(*cf).args).as_slice_mut::<ngx_str_t>() };
    let values: Vec<&[u8]> = args.iter().skip(1).map(|a| a.as_bytes()).collect();
    // SAFETY: nginx sets the page size before it reads any configuration.
    let minimum = 8 * unsafe { ngx_pagesize };
    let spec = match parse_zone(&values, minimum) {
        Ok(spec) => spec,
        Err(err) => {
            ngx::ngx_conf_log_error!(ngx::ffi::NGX_LOG_EMERG, cf, "{err}");
            return NGX_CONF_ERROR;
        }
    };
    // The name as nginx read it: it lives in the configuration pool, as the zone needs.
    let Some(name) = args.get_mut(1) else {
        return NGX_CONF_ERROR;
    };
    // SAFETY: `cf` is valid while the directive is parsed.
    match unsafe { zone::add(cf, name, spec.size, Module::module()) } {
        Ok(zone) => {
            mcf.zone = Some(zone);
            ptr::null_mut()
        }
        // nginx has said why.
        Err(zone::AddError::Refused) => NGX_CONF_ERROR,
        Err(err) => {
            ngx::ngx_conf_log_error!(ngx::ffi::NGX_LOG_EMERG, cf, "{err}");
            NGX_CONF_ERROR
        }
    }
}
