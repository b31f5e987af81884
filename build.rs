//! Turns the features nginx-sys found in the configured nginx tree into `cfg`s
//! (`ngx_feature = "..."`, e.g. `http_cache`), and compiles `src/nginx/bitfields.c` against
//! that tree's headers.
use std::env;

fn main() {
    println!("cargo::rerun-if-env-changed=DEP_NGINX_FEATURES");
    for feature in env::var("DEP_NGINX_FEATURES")
        .unwrap_or_default()
        .split(',')
        .filter(|v| !v.is_empty())
    {
        println!("cargo::rustc-cfg=ngx_feature=\"{feature}\"");
    }

    // The nginx half only: the pure logic's tests build without an nginx tree.
    if env::var_os("CARGO_FEATURE_NGINX").is_some() {
        let bitfields = "src/nginx/bitfields.c";
        println!("cargo::rerun-if-changed={bitfields}");
        println!("cargo::rerun-if-env-changed=DEP_NGINX_INCLUDE");
        let includes = env::var_os("DEP_NGINX_INCLUDE").unwrap_or_default();
        cc::Build::new()
            .file(bitfields)
            .includes(env::split_paths(&includes))
            .warnings(false) // nginx's headers are nginx's; it builds them with its own flags
            .compile("ngx_http_next_upstream_status_bitfields");
    }
}
