//! Log lines, prefixed with the module's short name so operators can grep for them.
//! nginx's request log handler appends the client, request and upstream to each.

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
        if ::ngx::log::DEBUG {
            let connection: *mut ::ngx::ffi::ngx_connection_t = $connection;
            // SAFETY: a request's connection and its log are valid while the request is
            // processed.
            let log = unsafe { (*connection).log };
            ::ngx::ngx_log_debug_mask!(
                DebugMask::Http,
                log,
                concat!("next_upstream_status: ", $fmt) $($arg)*
            );
        }
    }};
}

macro_rules! log {
    ($level:expr, $connection:expr, $fmt:literal $($arg:tt)*) => {{
        let connection: *mut ::ngx::ffi::ngx_connection_t = $connection;
        // SAFETY: a request's connection and its log are valid while the request is processed.
        let log = unsafe { (*connection).log };
        ::ngx::ngx_log_error!($level, log, concat!("next_upstream_status: ", $fmt) $($arg)*);
    }};
}

pub(crate) use {log, log_alert, log_debug, log_info, log_warn};
