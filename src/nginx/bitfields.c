/*
 * Where the bit fields the module reads and writes lie in nginx's structures, as the C
 * compiler lays them out for this nginx tree: build.rs compiles this program against the
 * tree's headers (its ngx_auto_config.h decides NGX_HTTP_CACHE, NGX_COMPAT and the rest),
 * runs it, and src/nginx/bitfields.rs includes what it prints, Rust constants.
 *
 * Why not bindgen's accessors: bindgen lays out a run of bit fields that begins after a
 * member smaller than the bit fields' unit as if the run began on a unit boundary
 * (rust-bindgen issues 1377, 3105). Since nginx 1.29.3, ngx_http_request_t has such a run
 * (`in_port_t port;` before `count:16`), and bindgen's accessors for
 * request_body_no_buffering, cached, error_page and the rest of that run read and write
 * bits two places away from nginx's. The C compiler cannot get nginx's layout wrong.
 *
 * For each field: a zeroed structure gets the field set to all ones (decremented from
 * zero: unsigned bit fields wrap), and the bytes that changed are the field's. Printed
 * are the offset and width of the smallest unit of 1, 2 or 4 bytes that holds them, kept
 * inside the structure, and the field's bits in that unit read in the host's byte order,
 * which is how the Rust side reads it (read_unaligned of a u8, u16 or u32).
 * tests/bitfields.rs proves the result against the compiler's own `r->field`.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <stdio.h>


static ngx_int_t ngx_http_next_upstream_status_probe(const char *name, const char *type,
    const u_char *s, size_t size, ngx_uint_t optional);


#define ngx_http_next_upstream_status_field(name, type, field, optional)                  \
    {                                                                                     \
        type  s;                                                                          \
                                                                                          \
        ngx_memzero(&s, sizeof(type));                                                    \
        s.field--;                                                                        \
        rc |= ngx_http_next_upstream_status_probe(name, #type, (u_char *) &s,             \
                                                  sizeof(type), optional);                \
    }

#define ngx_http_next_upstream_status_absent(name, type)                                  \
    printf("pub const %s: Option<Field<%s>> = None;\n", name, #type)


int
main(void)
{
    ngx_int_t  rc;

    rc = NGX_OK;

    printf("// The bit fields of nginx's structures as this tree's C compiler lays them out:\n"
           "// written by build.rs with what src/nginx/bitfields.c measured.\n"
           "// Field::new(size of the structure, offset, width of the unit, mask)\n\n");

    ngx_http_next_upstream_status_field("REQUEST_BODY_NO_BUFFERING", ngx_http_request_t,
                                        request_body_no_buffering, 0);
    ngx_http_next_upstream_status_field("REQUEST_ERROR_PAGE", ngx_http_request_t,
                                        error_page, 0);
    ngx_http_next_upstream_status_field("REQUEST_DISABLE_NOT_MODIFIED", ngx_http_request_t,
                                        disable_not_modified, 0);
    ngx_http_next_upstream_status_field("REQUEST_ALLOW_RANGES", ngx_http_request_t,
                                        allow_ranges, 0);
    ngx_http_next_upstream_status_field("REQUEST_SINGLE_RANGE", ngx_http_request_t,
                                        single_range, 0);
    ngx_http_next_upstream_status_field("CONNECTION_ERROR", ngx_connection_t, error, 0);
    ngx_http_next_upstream_status_field("UPSTREAM_REQUEST_SENT", ngx_http_upstream_t,
                                        request_sent, 0);
    ngx_http_next_upstream_status_field("UPSTREAM_HEADER_SENT", ngx_http_upstream_t,
                                        header_sent, 0);
    ngx_http_next_upstream_status_field("UPSTREAM_CACHEABLE", ngx_http_upstream_t,
                                        cacheable, 0);
    ngx_http_next_upstream_status_field("BUF_MEMORY", ngx_buf_t, memory, 0);
    ngx_http_next_upstream_status_field("BUF_LAST_BUF", ngx_buf_t, last_buf, 0);
    ngx_http_next_upstream_status_field("BUF_LAST_IN_CHAIN", ngx_buf_t, last_in_chain, 0);
    ngx_http_next_upstream_status_field("BUF_SYNC", ngx_buf_t, sync, 0);
    ngx_http_next_upstream_status_field("VARIABLE_LEN", ngx_variable_value_t, len, 0);
    ngx_http_next_upstream_status_field("VARIABLE_VALID", ngx_variable_value_t, valid, 0);
    ngx_http_next_upstream_status_field("VARIABLE_NO_CACHEABLE", ngx_variable_value_t,
                                        no_cacheable, 0);
    ngx_http_next_upstream_status_field("VARIABLE_NOT_FOUND", ngx_variable_value_t,
                                        not_found, 0);
    ngx_http_next_upstream_status_field("SLAB_LOG_NOMEM", ngx_slab_pool_t, log_nomem, 0);

    /* the cache's fields exist only in an nginx built with it */

#if (NGX_HTTP_CACHE)
    printf("pub const HTTP_CACHE: bool = true;\n");
    ngx_http_next_upstream_status_field("REQUEST_CACHED", ngx_http_request_t, cached, 1);
    ngx_http_next_upstream_status_field("UPSTREAM_CACHE_STATUS", ngx_http_upstream_t,
                                        cache_status, 1);
#else
    printf("pub const HTTP_CACHE: bool = false;\n");
    ngx_http_next_upstream_status_absent("REQUEST_CACHED", ngx_http_request_t);
    ngx_http_next_upstream_status_absent("UPSTREAM_CACHE_STATUS", ngx_http_upstream_t);
#endif

    if (fflush(stdout) != 0) {
        return 1;
    }

    return rc == NGX_OK ? 0 : 1;
}


static ngx_int_t
ngx_http_next_upstream_status_probe(const char *name, const char *type, const u_char *s,
    size_t size, ngx_uint_t optional)
{
    size_t    i, lo, hi, width, offset;
    uint8_t   u8;
    uint16_t  u16;
    uint32_t  mask;

    lo = size;
    hi = 0;

    for (i = 0; i < size; i++) {
        if (s[i]) {
            if (lo == size) {
                lo = i;
            }

            hi = i;
        }
    }

    if (lo == size) {
        fprintf(stderr, "%s: no bit of %s changed\n", name, type);
        return NGX_ERROR;
    }

    for (width = 1; width < hi - lo + 1; width *= 2) { /* void */ }

    if (width > 4 || width > size) {
        fprintf(stderr, "%s: %s's field spans %d bytes, more than the 4 handled\n",
                name, type, (int) (hi - lo + 1));
        return NGX_ERROR;
    }

    offset = (lo + width <= size) ? lo : size - width;

    switch (width) {

    case 1:
        ngx_memcpy(&u8, s + offset, 1);
        mask = u8;
        break;

    case 2:
        ngx_memcpy(&u16, s + offset, 2);
        mask = u16;
        break;

    default: /* 4 */
        ngx_memcpy(&mask, s + offset, 4);
        break;
    }

    if (optional) {
        printf("pub const %s: Option<Field<%s>> = Some(", name, type);

    } else {
        printf("pub const %s: Field<%s> = ", name, type);
    }

    printf("Field::new(%lu, %lu, %lu, 0x%lx)%s;\n", (unsigned long) size,
           (unsigned long) offset, (unsigned long) width, (unsigned long) mask,
           optional ? ")" : "");

    return NGX_OK;
}
