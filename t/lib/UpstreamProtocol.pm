package UpstreamProtocol;

# States, for every block of a .t file that uses it, the protocol nginx speaks to the
# block's upstream servers, so that a block means the same on every nginx version: the
# default changed from HTTP/1.0 with "Connection: close" to HTTP/1.1 without it in nginx
# 1.29.7 (when upstream keepalive also became the default).
#
#   use Test::Nginx::Socket 'no_plan';
#   use UpstreamProtocol;
#
# - A block whose servers are nginx's own (`server { listen ...; }` in http_config) gets
#   `proxy_http_version $TEST_NGINX_UPSTREAM_HTTP;` at the http level: "1.1" (the default),
#   or "2" for HTTP/2 to the servers (nginx 1.29.4+), which also turns `http2 on` for the
#   block's servers (cleartext h2; HTTP/1.1 clients are still served).
# - A block with a raw TCP server (--- tcp_listen) gets HTTP/1.0 without a Connection header,
#   `proxy_http_version 1.0; proxy_set_header Connection "";`, whatever the mode: its
#   tcp_reply and tcp_query are HTTP/1 bytes, the same on every version (nginx before
#   1.29.7 sends "Connection: close" by default, later ones nothing; a Connection header
#   set in nginx.conf goes before Host before 1.31.x, after it since). Over HTTP/2 such a
#   block is skipped.
#
# A block's own proxy_http_version or proxy_set_header in a location overrides these, as in
# any nginx.conf. Keepalive to the servers is left to the nginx version unless a block
# states `keepalive` in its upstream block: the blocks that depend on it do.
#
# Works with the upstream Test::Nginx::Socket as well (add_block_preprocessor is upstream's).

use strict;
use warnings;

use Test::Nginx::Socket ();

our $Protocol = $ENV{TEST_NGINX_UPSTREAM_HTTP} || '1.1';
$Protocol =~ /^(?:1\.1|2)$/
    or die "TEST_NGINX_UPSTREAM_HTTP must be 1.1 or 2, not \"$Protocol\"\n";

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;
    my $stated;
    if (defined $block->tcp_listen) {
        if ($Protocol eq '2') {
            $block->set_value(SKIP => 1);
            return;
        }
        $stated = "proxy_http_version 1.0;\n    proxy_set_header Connection \"\";\n";
    } elsif ($Protocol eq '2') {
        $stated = "proxy_http_version 2;\n    http2 on;\n";
    } else {
        $stated = "proxy_http_version 1.1;\n";
    }
    $block->set_value(http_config => "    $stated" . ($block->http_config // ''));
});

1;
