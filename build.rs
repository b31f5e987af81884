//! Turns what nginx-sys learned from the configured nginx tree into `cfg`s:
//! `ngx_feature = "..."` (e.g. `http_cache`, needed for `r->cached`) and `ngx_os`, and
//! `nginx1_22` ... for version-specific code.
use std::env;

fn main() {
    for (var, name) in [
        ("DEP_NGINX_FEATURES", "ngx_feature"),
        ("DEP_NGINX_OS", "ngx_os"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        for value in env::var(var)
            .unwrap_or_default()
            .split(',')
            .filter(|v| !v.is_empty())
        {
            println!("cargo::rustc-cfg={name}=\"{value}\"");
        }
    }
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
}
