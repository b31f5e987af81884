# Part of nginx's build integration (see config): appends to objs/Makefile the rule that
# builds the Rust static library the module is linked from.
#
# cargo runs every time: it alone knows the Rust sources and dependencies, and it leaves the
# library untouched when nothing changed (then make does not relink the module either).
# The library is built without the "export-modules" feature: nginx generates the module
# list (objs/ngx_http_next_upstream_status_module_modules.c) itself.

cat << END                                                    >> $NGX_MAKEFILE

$ngx_nus_lib:	ngx_http_next_upstream_status_cargo
	NGINX_SOURCE_DIR="$ngx_nus_src" NGINX_BUILD_DIR="$ngx_nus_objs" \\
	$NGX_CARGO rustc --lib --release --locked --crate-type staticlib \\
		--manifest-path "$ngx_nus_dir/Cargo.toml" \\
		--no-default-features --features nginx \\
		--target-dir "$ngx_nus_target"

ngx_http_next_upstream_status_cargo:

END

if [ "$ngx_nus_link" = DYNAMIC ]; then
    # nginx's link rule for the .so lists no C objects of ours to wait for
    cat << END                                                >> $NGX_MAKEFILE
$NGX_OBJS${ngx_dirsep}ngx_http_next_upstream_status_module$ngx_modext:	$ngx_nus_lib

END
fi
