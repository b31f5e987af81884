package Storage;
# The shipped nginx-conf/storage-front.conf and storage-server.conf with real addresses in
# place of their placeholders, for t/e2e/storage.t and scripts/bench-storage.pl; and an
# HTTP client for writes.

use strict;
use warnings;

use Exporter qw(import);

our @EXPORT = qw(server_conf front_conf);

# storage-server.conf listening on $addr, its directories under $dir (data/, tmp/).
sub server_conf {
    my ($template, $addr, $dir) = @_;
    my $c = $template;
    $c =~ s/^(\s*)listen\s+8081;/$1listen $addr;/m or die "storage-server.conf: no listen 8081\n";
    $c =~ s{/srv/store\b}{$dir}g or die "storage-server.conf: no /srv/store\n";
    return $c;
}

# storage-front.conf with:
#   module     the module's path for load_module
#   listen     the front's address
#   servers    the storage servers' addresses (the four placeholder lines become one line per
#              server, with the same parameters)
#   placement  "rr" (as shipped), "hash" (its `hash $uri consistent;` line uncommented) or
#              "sticky" (its `sticky learn ...;` line uncommented: nginx 1.29.6+)
#   edit       (optional) a sub that changes the directive line in $_ ('' removes it)
sub front_conf {
    my ($template, %o) = @_;
    my $c = $template;
    $c =~ s{^(\s*)load_module\s+modules/ngx_http_next_upstream_status_module\.so;}{$1load_module $o{module};}m
        or die "storage-front.conf: no load_module line\n";
    $c =~ s/^(\s*)listen\s+8080;/$1listen $o{listen};/m or die "storage-front.conf: no listen 8080\n";
    $c =~ s{^(\s*server\s+)127\.0\.0\.1:8081(\s[^\n]*)\n(?:\s*server\s+127\.0\.0\.1:808[2-4]\s[^\n]*\n){3}}
           {join '', map { "$1$_$2\n" } @{ $o{servers} }}me
        or die "storage-front.conf: no server lines 127.0.0.1:8081-8084\n";
    if ($o{placement} eq 'hash') {
        $c =~ s/^(\s*)#\s*(hash \$uri consistent;)/$1$2/m or die "storage-front.conf: no \"# hash \$uri consistent;\"\n";
    } elsif ($o{placement} eq 'sticky') {
        $c =~ s/^(\s*)#\s*(sticky learn [^;]*;)/$1$2/m or die "storage-front.conf: no \"# sticky learn ...;\"\n";
    } elsif ($o{placement} ne 'rr') {
        die "placement \"$o{placement}\": rr, hash or sticky\n";
    }
    if ($o{edit}) {
        $c =~ s{^(\s*)(proxy_next_upstream_status\s[^;]*;)}{ local $_ = $2; $o{edit}->(); "$1$_" }me
            or die "storage-front.conf: no proxy_next_upstream_status line\n";
    }
    return $c;
}

# HTTP::Tiny sends a request's header and body in two writes; without TCP_NODELAY the body
# waits for the ACK of the header, which the server delays by 40 ms.
package Storage::Client {
    use parent 'HTTP::Tiny';
    use Socket qw(IPPROTO_TCP TCP_NODELAY);

    sub _open_handle {
        my $self = shift;
        my $h = $self->SUPER::_open_handle(@_);
        setsockopt($h->{fh}, IPPROTO_TCP, TCP_NODELAY, 1) or die "TCP_NODELAY: $!";
        return $h;
    }
}

1;
