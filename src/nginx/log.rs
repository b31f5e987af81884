//! Log lines, prefixed with the module's short name so operators can grep for them.
//! nginx's request log handler appends the client, request and upstream to each.

use core::fmt;
use core::mem::MaybeUninit;

use ngx::ffi::{ngx_connection_t, ngx_log_t, ngx_uint_t, NGX_LOG_DEBUG_HTTP};

/// Logs at `info` to a connection's log: routine events, such as a request passed on after a status.
macro_rules! log_info {
    ($connection:expr, $($arg:tt)+) => {
        $crate::nginx::log::log!(::ngx::ffi::NGX_LOG_INFO, $connection, $($arg)+)
    };
}

/// Logs at `warn`: the client gets something other than what nginx alone would send.
macro_rules! log_warn {
    ($connection:expr, $($arg:tt)+) => {
        $crate::nginx::log::log!(::ngx::ffi::NGX_LOG_WARN, $connection, $($arg)+)
    };
}

/// Logs at `alert`: something that must not happen did.
macro_rules! log_alert {
    ($connection:expr, $($arg:tt)+) => {
        $crate::nginx::log::log!(::ngx::ffi::NGX_LOG_ALERT, $connection, $($arg)+)
    };
}

/// Logs at `debug` (`NGX_LOG_DEBUG_HTTP`), the trace of each step. Compiled out unless nginx
/// was built `--with-debug`; shown with `error_log ... debug`.
macro_rules! log_debug {
    ($connection:expr, $fmt:literal $($arg:tt)*) => {{
        let connection: *mut ::ngx::ffi::ngx_connection_t = $connection;
        if $crate::nginx::log::debug_enabled(connection) {
            $crate::nginx::log::write_line(
                ::ngx::ffi::NGX_LOG_DEBUG as ::ngx::ffi::ngx_uint_t,
                // SAFETY: a request's connection is valid while the request is processed.
                unsafe { (*connection).log },
                format_args!(concat!("next_upstream_status: ", $fmt) $($arg)*),
            );
        }
    }};
}

macro_rules! log {
    ($level:expr, $connection:expr, $fmt:literal $($arg:tt)*) => {{
        let connection: *mut ::ngx::ffi::ngx_connection_t = $connection;
        // SAFETY: a request's connection and its log are valid while the request is processed.
        let log = unsafe { (*connection).log };
        let level = $level as ::ngx::ffi::ngx_uint_t;
        // SAFETY: as above.
        if level <= unsafe { (*log).log_level } {
            $crate::nginx::log::write_line(
                level,
                log,
                format_args!(concat!("next_upstream_status: ", $fmt) $($arg)*),
            );
        }
    }};
}

/// Whether the debug trace is on for `connection` (nginx built `--with-debug`, the log at
/// `debug`): a test of the log level, and nothing at all in an nginx built without debug.
#[inline(always)]
pub fn debug_enabled(connection: *mut ngx_connection_t) -> bool {
    // SAFETY: a request's connection and its log are valid while the request is processed.
    ngx::log::DEBUG
        && unsafe { (*(*connection).log).log_level } & NGX_LOG_DEBUG_HTTP as ngx_uint_t != 0
}

/// Formats and writes one line the caller's level test let through. Out of line, so that the
/// callers, some on every request, test a level without making room for a line.
#[cold]
#[inline(never)]
pub fn write_line(level: ngx_uint_t, log: *mut ngx_log_t, args: fmt::Arguments) {
    let mut buf = [const { MaybeUninit::<u8>::uninit() }; ngx::log::LOG_BUFFER_SIZE];
    let line = ngx::log::write_fmt(&mut buf, args);
    // SAFETY: `log` is a valid log (the callers' connection's); `line` is the formatted text.
    unsafe { ngx::log::log_error(level, log, 0, line) };
}

pub(crate) use {log, log_alert, log_debug, log_info, log_warn};
