/*
 * The oracle of tests/bitfields.rs: the bit fields the module reads and writes, accessed by
 * the C compiler as nginx's own code accesses them (`r->field`), compiled by build.rs against
 * the same nginx tree as the module. These were the module's accessors until it read and
 * wrote the fields inline (src/nginx/bitfields.rs); each does what the Rust function
 * there it is named after must do.
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
ngx_http_next_upstream_status_set_last_of_response(ngx_buf_t *b, ngx_uint_t main_request)
{
    ngx_uint_t  has_data;

    has_data = b->last > b->pos;

    b->memory = has_data;
    b->last_buf = main_request;
    b->last_in_chain = 1;
    b->sync = !has_data && !main_request;
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
