//! The module's statics and registration with nginx.

mod bitfields;
pub mod conf;
mod kept_answer;
mod log;
mod metrics;
mod upstream;
mod variables;

use core::ptr;

use ngx::ffi::{
    ngx_conf_t, ngx_http_module_t, ngx_int_t, ngx_module_t, NGX_ERROR, NGX_HTTP_MODULE, NGX_OK,
};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf};

pub struct Module;

impl HttpModule for Module {
    fn module() -> &'static ngx_module_t {
        // SAFETY: nginx writes the module's indices once, before any request; afterwards the
        // static is only read.
        unsafe { &*ptr::addr_of!(ngx_http_next_upstream_status_module) }
    }

    unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // SAFETY: nginx calls preconfiguration with the http block's configuration.
        unsafe { variables::add_variables(cf) }
    }

    unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // SAFETY: nginx calls postconfiguration with the http block's configuration.
        let checked =
            Module::main_conf(unsafe { &*cf }).map_or(Ok(()), metrics::check_configuration);
        // SAFETY: as above.
        match checked.and_then(|()| unsafe { upstream::wrap_upstream_blocks(cf) }) {
            Ok(()) => NGX_OK as ngx_int_t,
            Err(why) => {
                ngx::ngx_conf_log_error!(
                    ngx::ffi::NGX_LOG_EMERG,
                    cf,
                    "next_upstream_status: {why}"
                );
                NGX_ERROR as ngx_int_t
            }
        }
    }
}

// SAFETY: `MainConf` is the type this module's `create_main_conf` allocates.
unsafe impl HttpModuleMainConf for Module {
    type MainConf = conf::MainConf;
}

// SAFETY: `LocConf` is the type this module's `create_loc_conf` allocates.
unsafe impl HttpModuleLocationConf for Module {
    type LocationConf = conf::LocConf;
}

static MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(Module::preconfiguration),
    postconfiguration: Some(Module::postconfiguration),
    create_main_conf: Some(Module::create_main_conf),
    init_main_conf: None,
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(Module::create_loc_conf),
    merge_loc_conf: Some(Module::merge_loc_conf),
};

#[cfg(all(feature = "export-modules", not(test)))]
ngx::ngx_modules!(ngx_http_next_upstream_status_module);

#[used]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_next_upstream_status_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(MODULE_CTX) as *mut _,
    commands: ptr::addr_of_mut!(conf::COMMANDS) as *mut _,
    type_: NGX_HTTP_MODULE as _,
    ..ngx_module_t::default()
};
