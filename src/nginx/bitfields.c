/*
 * The bitfields of nginx structures that the module reads or writes, accessed by the C
 * compiler that built nginx.
 *
 * bindgen lays out a run of bitfields that begins after a member smaller than the
 * bitfields' unit as if the run began on a unit boundary (rust-bindgen issues 1377, 3105).
 * Since nginx 1.29.3, ngx_http_request_t has such a run (`in_port_t port;` before
 * `count:16`), and bindgen's accessors for request_body_no_buffering, cached, error_page
 * and the rest of that run read and write bits two places away from nginx's. The C
 * compiler cannot get nginx's layout wrong, on any version, so every bitfield goes
 * through here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_uint_t
ngx_http_next_upstream_status_request_body_no_buffering(ngx_http_request_t *r)
{
    return r->request_body_no_buffering;
}


ngx_uint_t
ngx_http_next_upstream_status_request_cached(ngx_http_request_t *r)
{
#if (NGX_HTTP_CACHE)
    return r->cached;
#else
    return 0;
#endif
}


void
ngx_http_next_upstream_status_request_set_error_page(ngx_http_request_t *r)
{
    r->error_page = 1;
}


ngx_uint_t
ngx_http_next_upstream_status_connection_error(ngx_connection_t *c)
{
    return c->error;
}


ngx_uint_t
ngx_http_next_upstream_status_upstream_request_sent(ngx_http_upstream_t *u)
{
    return u->request_sent;
}


ngx_uint_t
ngx_http_next_upstream_status_upstream_header_sent(ngx_http_upstream_t *u)
{
    return u->header_sent;
}


ngx_uint_t
ngx_http_next_upstream_status_upstream_cache_status(ngx_http_upstream_t *u)
{
#if (NGX_HTTP_CACHE)
    return u->cache_status;
#else
    return 0;
#endif
}


void
ngx_http_next_upstream_status_upstream_set_uncacheable(ngx_http_upstream_t *u)
{
#if (NGX_HTTP_CACHE)
    u->cacheable = 0;
#endif
}


void
ngx_http_next_upstream_status_buf_set_end(ngx_buf_t *b, ngx_uint_t in_memory, ngx_uint_t last_buf,
    ngx_uint_t sync)
{
    b->memory = in_memory;
    b->last_buf = last_buf;
    b->last_in_chain = 1;
    b->sync = sync;
}


void
ngx_http_next_upstream_status_set_upstream_answer_flags(ngx_http_request_t *r, ngx_http_upstream_t *u)
{
    r->disable_not_modified = !u->cacheable;

    if (u->conf->force_ranges) {
        r->allow_ranges = 1;
        r->single_range = 1;

#if (NGX_HTTP_CACHE)
        if (r->cached) {
            r->single_range = 0;
        }
#endif
    }
}


void
ngx_http_next_upstream_status_variable_set(ngx_variable_value_t *v, u_char *data, size_t len)
{
    v->data = data;
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
}


void
ngx_http_next_upstream_status_slab_set_log_nomem(ngx_slab_pool_t *pool, ngx_uint_t log_nomem)
{
    pool->log_nomem = log_nomem;
}
