//! The module's registration with nginx: its `ngx_module_t`, its context and its command
//! table, at the top of the nginx side. Every file below imports only files below it:
//!
//! - [`bitfields`], [`log`]: nginx's bit fields, at the places the C compiler gives them,
//!   and the log lines;
//! - [`conf`]: everything configuration-time (the module's handle on its configuration,
//!   the directives' handlers, the originals table), with [`zone`], the counters' shared
//!   memory, under it;
//! - [`ctx`]: the state a request passed on keeps between the callbacks;
//! - [`counters`]: counting for a request, and the metrics location (its directive's handler
//!   with the content handler it installs);
//! - [`upstream`], [`filters`], [`variables`]: the hooks into nginx's upstream
//!   machinery, the kept answer's filters, the variables.

mod bitfields;
mod conf;
mod counters;
mod ctx;
mod filters;
mod log;
mod upstream;
mod variables;
mod zone;

use core::ptr;

use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_http_module_t, ngx_int_t, ngx_module_t, ngx_uint_t,
    NGX_CONF_1MORE, NGX_CONF_NOARGS, NGX_CONF_TAKE12, NGX_ERROR, NGX_HTTP_LOC_CONF,
    NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_MODULE,
    NGX_HTTP_SRV_CONF, NGX_OK,
};
use ngx::http::{HttpModule, HttpModuleMainConf};
use ngx::ngx_string;

use conf::{Module, SetupError};

/// Preconfiguration: declares the variables.
///
/// # Safety
/// Called by nginx with the http block's configuration.
unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: as the caller promises.
    unsafe { variables::add_variables(cf) }
}

/// Postconfiguration: checks the http block, then installs the hooks and the filters, if
/// any level uses the directive (if none does, nginx behaves exactly as without the module).
///
/// # Safety
/// Called by nginx with the http block's configuration, on one thread, before any request.
unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: as the caller promises.
    match unsafe { install(cf) } {
        Ok(()) => NGX_OK as ngx_int_t,
        Err(why) => {
            ngx::ngx_conf_log_error!(ngx::ffi::NGX_LOG_EMERG, cf, "next_upstream_status: {why}");
            NGX_ERROR as ngx_int_t
        }
    }
}

/// # Safety
/// As for [`postconfiguration`].
unsafe fn install(cf: *mut ngx_conf_t) -> Result<(), SetupError> {
    // SAFETY: `cf` is valid during postconfiguration.
    let mcf = Module::main_conf(unsafe { &*cf }).ok_or(SetupError::NoMainConf)?;
    mcf.check()?;
    if !mcf.used {
        return Ok(());
    }
    // SAFETY: `cf` is the http block's configuration, being finished.
    unsafe { upstream::wrap_upstream_blocks(cf) }?;
    // SAFETY: postconfiguration, as `install_filters` requires.
    unsafe { filters::install_filters() };
    Ok(())
}

static MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(preconfiguration),
    postconfiguration: Some(postconfiguration),
    create_main_conf: Some(Module::create_main_conf),
    init_main_conf: None,
    create_srv_conf: Some(Module::create_srv_conf),
    merge_srv_conf: None,
    create_loc_conf: Some(Module::create_loc_conf),
    merge_loc_conf: Some(Module::merge_loc_conf),
};

static mut COMMANDS: [ngx_command_t; 4] = [
    ngx_command_t {
        name: ngx_string!("proxy_next_upstream_status"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_1MORE)
            as ngx_uint_t,
        set: Some(conf::set_proxy_next_upstream_status),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("next_upstream_status_zone"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE12) as ngx_uint_t,
        set: Some(conf::set_next_upstream_status_zone),
        conf: NGX_HTTP_MAIN_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("next_upstream_status_metrics"),
        type_: (NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS) as ngx_uint_t,
        set: Some(counters::set_next_upstream_status_metrics),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t::empty(),
];

#[cfg(all(feature = "export-modules", not(test)))]
ngx::ngx_modules!(ngx_http_next_upstream_status_module);

impl HttpModule for Module {
    #[inline(always)]
    fn module() -> &'static ngx_module_t {
        // SAFETY: nginx writes the module's indices once, before any configuration is read
        // through them; afterwards the static is only read.
        unsafe { &*ptr::addr_of!(ngx_http_next_upstream_status_module) }
    }
}

/// The module.
#[used]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_next_upstream_status_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(MODULE_CTX) as *mut _,
    commands: ptr::addr_of_mut!(COMMANDS) as *mut _,
    type_: NGX_HTTP_MODULE as _,
    ..ngx_module_t::default()
};
