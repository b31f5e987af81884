//! The directive's command table, its handler and the configuration it fills in.

use core::cell::Cell;
use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};

use ngx::core::NGX_CONF_ERROR;
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_http_upstream_conf_t, ngx_str_t, ngx_uint_t, NGX_CONF_1MORE,
    NGX_CONF_NOARGS, NGX_CONF_TAKE12, NGX_HTTP_COPY, NGX_HTTP_DELETE, NGX_HTTP_GET, NGX_HTTP_HEAD,
    NGX_HTTP_LOCK, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF,
    NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_MKCOL, NGX_HTTP_MOVE, NGX_HTTP_OPTIONS, NGX_HTTP_PATCH,
    NGX_HTTP_POST, NGX_HTTP_PROPFIND, NGX_HTTP_PROPPATCH, NGX_HTTP_PUT, NGX_HTTP_SRV_CONF,
    NGX_HTTP_UNLOCK,
};
use ngx::http::{HttpModuleMainConf, Merge, MergeConfigError};
use ngx::ngx_string;

use crate::directive::{self, Directive};
use crate::methods::{Method, MethodSet};
use crate::nginx::metrics;
use crate::nginx::upstream::Originals;
use crate::nginx::Module;
use crate::statuses::StatusSet;

/// The location's rule in the form the request path asks it: a status set and nginx's own
/// method bits, so that a response is judged with a lookup and a mask.
#[derive(Clone, Debug)]
pub struct RetryOn {
    pub statuses: StatusSet,
    pub methods: ngx_uint_t,
    pub keep_answer: bool,
    /// The location's upstream configuration and this worker's copy of it that passes a 404
    /// on, made at the first retry (see `upstream::retry_conf`).
    pub retry_conf: Cell<(*mut ngx_http_upstream_conf_t, *mut ngx_http_upstream_conf_t)>,
}

#[derive(Debug, Default)]
pub struct LocConf {
    /// `None` when this level does not use the directive (then it inherits).
    directive: Option<Option<RetryOn>>,
}

impl LocConf {
    /// The rule in force here, or `None` when the directive is off or never used.
    #[inline]
    pub fn retry_on(&self) -> Option<&RetryOn> {
        self.directive.as_ref()?.as_ref()
    }
}

impl Merge for LocConf {
    fn merge(&mut self, prev: &LocConf) -> Result<(), MergeConfigError> {
        if self.directive.is_none() {
            self.directive = prev.directive.clone();
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct MainConf {
    /// Whether any level turns the directive on; if none does, nothing is installed and nginx
    /// behaves exactly as without the module.
    pub used: bool,
    /// The upstream blocks' own `peer.init`, saved when the module wraps them.
    pub originals: Originals,
    /// `next_upstream_status_zone`: the counters' shared memory, if configured.
    pub zone: Option<NonNull<metrics::Zone>>,
    /// Whether a location has `next_upstream_status_metrics`.
    pub metrics_used: bool,
}

pub static mut COMMANDS: [ngx_command_t; 4] = [
    ngx_command_t {
        name: ngx_string!("proxy_next_upstream_status"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_1MORE)
            as ngx_uint_t,
        set: Some(set_proxy_next_upstream_status),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("next_upstream_status_zone"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE12) as ngx_uint_t,
        set: Some(metrics::set_zone),
        conf: NGX_HTTP_MAIN_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("next_upstream_status_metrics"),
        type_: (NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS) as ngx_uint_t,
        set: Some(metrics::set_metrics),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t::empty(),
];

/// Handles `proxy_next_upstream_status off | STATUS ... [methods=...] [keep_answer=on|off]`.
///
/// # Safety
/// Called by nginx with a valid `cf` whose arguments are the directive's, and `conf` pointing
/// at this module's `LocConf` for the level being parsed.
unsafe extern "C" fn set_proxy_next_upstream_status(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx passes this module's location configuration for the current level.
    let lcf = unsafe { &mut *conf.cast::<LocConf>() };
    if lcf.directive.is_some() {
        return c"is duplicate".as_ptr().cast_mut();
    }

    // SAFETY: `cf` is valid while the directive is parsed; `cf->args` holds the directive's
    // name followed by its arguments, each a valid `ngx_str_t`.
    let args = unsafe { (*(*cf).args).as_slice::<ngx_str_t>() };
    let parsed = directive::parse(args.iter().skip(1).map(ngx_str_t::as_bytes));

    lcf.directive = Some(match parsed {
        Ok(Directive::Off) => None,
        Ok(Directive::On(rule)) => {
            // SAFETY: `cf` is an http-level configuration context while parsing this directive.
            if let Some(mcf) = Module::main_conf_mut(unsafe { &*cf }) {
                mcf.used = true;
            }
            Some(RetryOn {
                statuses: rule.statuses,
                methods: nginx_method_bits(rule.methods),
                keep_answer: rule.keep_answer,
                retry_conf: Cell::new((ptr::null_mut(), ptr::null_mut())),
            })
        }
        Err(err) => {
            ngx::ngx_conf_log_error!(ngx::ffi::NGX_LOG_EMERG, cf, "{err}");
            return NGX_CONF_ERROR;
        }
    });
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
