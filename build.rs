//! Turns the features nginx-sys found in the configured nginx tree into `cfg`s
//! (`ngx_feature = "..."`, e.g. `http_cache`), and measures where the bit fields the module
//! uses lie in that tree's structures: `src/nginx/bitfields.c`, compiled with the C compiler
//! against the tree's headers and run, prints them as Rust constants
//! (`$OUT_DIR/bitfields.rs`, included by `src/nginx/bitfields.rs`). `tests/bitfields.c`, the
//! same fields read and written by the C compiler, is built for `tests/bitfields.rs`.
use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

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
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        let includes = nginx_includes();
        measure_bitfields(&includes, &out);
        build_bitfields_check(&includes, &out);
    }
}

/// The configured tree's header directories (`objs/` with its `ngx_auto_config.h` among
/// them), from nginx-sys.
fn nginx_includes() -> Vec<PathBuf> {
    println!("cargo::rerun-if-env-changed=DEP_NGINX_INCLUDE");
    let includes: Vec<PathBuf> =
        env::split_paths(&env::var_os("DEP_NGINX_INCLUDE").unwrap_or_default()).collect();
    // Configuring the same tree again changes its layout, not its paths.
    for config in includes.iter().map(|dir| dir.join("ngx_auto_config.h")) {
        if config.is_file() {
            println!("cargo::rerun-if-changed={}", config.display());
        }
    }
    includes
}

/// Compiles and runs the probe, and writes what it prints to `$OUT_DIR/bitfields.rs`.
fn measure_bitfields(includes: &[PathBuf], out: &Path) {
    let source = "src/nginx/bitfields.c";
    println!("cargo::rerun-if-changed={source}");
    // It runs here, so it must be built for here.
    let (host, target) = (env::var("HOST"), env::var("TARGET"));
    if host != target {
        fail(&format!(
            "{source} measures nginx's structures by running a program built for the \
             target, so the module cannot be cross-compiled (host {}, target {})",
            host.unwrap_or_default(),
            target.unwrap_or_default()
        ));
    }

    let compiler = cc::Build::new()
        .includes(includes)
        .warnings(false) // nginx's headers are nginx's; it builds them with its own flags
        .try_get_compiler()
        .unwrap_or_else(|e| fail(&format!("no C compiler for {source}: {e}")));
    let probe = out.join("bitfields-probe");
    let mut build = compiler.to_command();
    build.arg(source).arg("-o").arg(&probe);
    let built = run(&mut build, &format!("compiling {source}"));
    if !built.status.success() {
        fail(&format!(
            "compiling {source} against the nginx tree's headers failed ({}): {}",
            built.status,
            String::from_utf8_lossy(&built.stderr)
        ));
    }

    let measured = run(
        &mut Command::new(&probe),
        &format!("running {}", probe.display()),
    );
    if !measured.status.success() {
        fail(&format!(
            "{} ({source}) could not measure nginx's bit fields ({}): {}",
            probe.display(),
            measured.status,
            String::from_utf8_lossy(&measured.stderr)
        ));
    }
    let constants = out.join("bitfields.rs");
    fs::write(&constants, &measured.stdout)
        .unwrap_or_else(|e| fail(&format!("writing {}: {e}", constants.display())));
}

/// `tests/bitfields.c` as a static library that only `tests/bitfields.rs` links.
fn build_bitfields_check(includes: &[PathBuf], out: &Path) {
    let source = "tests/bitfields.c";
    println!("cargo::rerun-if-changed={source}");
    cc::Build::new()
        .file(source)
        .includes(includes)
        .warnings(false)
        .cargo_metadata(false) // not linked into the module
        .compile("ngx_http_next_upstream_status_bitfields_check");
    println!("cargo::rustc-link-search=native={}", out.display());
}

fn run(command: &mut Command, what: &str) -> process::Output {
    command
        .output()
        .unwrap_or_else(|e| fail(&format!("{what}: {e} ({})", show(command))))
}

fn show(command: &Command) -> String {
    let mut words: Vec<OsString> = vec![command.get_program().into()];
    words.extend(command.get_args().map(OsString::from));
    words
        .iter()
        .map(|w| w.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    process::exit(1);
}
