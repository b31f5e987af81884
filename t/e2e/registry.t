#!/usr/bin/perl
# End-to-end test of nginx-conf/registry.conf with real parts, all on 127.0.0.1:
#
#   two Debian docker-registry (CNCF distribution 2.8) instances = two sites that do not
#   share storage ("A" = local site, "B" = other site),
#   nginx + ngx_http_next_upstream_status_module running nginx-conf/registry.conf,
#   skopeo as the client, with an OCI image the test writes itself (no network).
#
# Run: prove t/e2e   (or: perl t/e2e/registry.t)
# Environment:
#   NGINX_BINARY  nginx to run      (default TEST_NGINX_BINARY, else build/nginx/sbin/nginx)
#   NGX_MODULE    module to load    (default build/modules/ngx_http_next_upstream_status_module.so)
#   E2E_KEEP=1    keep the temporary directory (logs, configs, images) for inspection
#
# Everything the test starts is stopped in an END block, also when it dies half-way.

use strict;
use warnings;

use Test::More;
use Archive::Tar;
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);

use FindBin;
use lib "$FindBin::Bin/lib";
use E2E;    # spawn, stop, capture, wait_port, eventually, ...: see t/e2e/lib/E2E.pm

my $ROOT   = abs_path(dirname(abs_path(__FILE__)) . '/../..');
my $NGINX  = $ENV{NGINX_BINARY} || $ENV{TEST_NGINX_BINARY} || "$ROOT/build/nginx/sbin/nginx";
my $MODULE = $ENV{NGX_MODULE}   || "$ROOT/build/modules/ngx_http_next_upstream_status_module.so";
my $CONF   = "$ROOT/nginx-conf/registry.conf";

my $REGISTRY = '/usr/bin/docker-registry';
my $SKOPEO   = '/usr/bin/skopeo';

for ([$REGISTRY, 'docker-registry'], [$SKOPEO, 'skopeo']) {
    plan skip_all => "$_->[1] not installed (scripts/install-deps.sh e2e installs it)"
        unless -x $_->[0];
}
plan skip_all => "no nginx at $NGINX (make build)" unless -x $NGINX;
plan skip_all => "no module at $MODULE (make module)" unless -f $MODULE;

my $T0 = time;
my $HAD_SYSTEM_CACHE = -e '/var/lib/containers/cache';
my $TMP = tempdir('e2e-registry-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{E2E_KEEP});
chmod 0755, $TMP;    # nginx workers may run as nobody
diag("temporary directory: $TMP") if $ENV{E2E_KEEP};

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 10, max_redirect => 0);

my $last_skopeo_err = '';

END {
    # (before E2E's END block, which shows the logs and stops everything)
    diag("---- last skopeo stderr ----\n$last_skopeo_err")
        if $last_skopeo_err && ($? || !Test::More->builder->is_passing);
}

# ---------------------------------------------------------------------------------------
# The two registries

my %port = (A => free_port(), B => free_port(), N => free_port());
my %reg_pid;

sub start_registry {
    my ($site) = @_;
    my $dir = "$TMP/registry-$site";
    make_path("$dir/storage");
    spew("$dir/config.yml", <<"EOF");
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port{$site}
  secret: e2e-test-secret-$site
EOF
    $reg_pid{$site} = spawn("registry $site", "$dir/registry.log", $REGISTRY, 'serve', "$dir/config.yml");
    wait_port("127.0.0.1:$port{$site}", $reg_pid{$site}, 15);
}

start_registry($_) for qw(A B);
my %addr = map { $_ => "127.0.0.1:$port{$_}" } qw(A B N);

# ---------------------------------------------------------------------------------------
# nginx with (a variant of) nginx-conf/registry.conf

my $nginx_pid;
my $PREFIX = "$TMP/nginx";
make_path("$PREFIX/logs", "$PREFIX/conf");
my $ACCESS_LOG = "$PREFIX/logs/access.log";
push @E2E::diag_files, "$PREFIX/logs/error.log";

my $conf_template = slurp($CONF);

# The shipped configuration with the test's addresses in place of the placeholders: site A
# is the local site and B the other one, or, with ('B', 'A'), the nginx of data centre B.
sub shipped_conf {
    my ($local, $other) = @_ ? @_ : qw(A B);
    my %site = (5001 => $addr{$local}, 5002 => $addr{$other});
    my $c = $conf_template;
    $c =~ s{^(\s*)load_module\s+modules/ngx_http_next_upstream_status_module\.so;}{$1load_module $MODULE;}m
        or die "registry.conf: no load_module line to substitute\n";
    for (sort keys %site) { $c =~ /127\.0\.0\.1:$_\b/ or die "registry.conf: no 127.0.0.1:$_\n" }
    # one pass, so that a test port that happens to be 5001 or 5002 is not substituted again
    $c =~ s/127\.0\.0\.1:(500[12])\b/$site{$1}/g;
    $c =~ s/^(\s*)listen\s+8080;/$1listen $addr{N};/m or die "registry.conf: no listen 8080\n";
    return $c;
}

sub start_nginx {
    my ($conf, $label) = @_;
    stop($nginx_pid) if $nginx_pid;
    spew("$PREFIX/conf/nginx.conf", $conf);
    spew("$PREFIX/conf/nginx.conf.$label", $conf);
    my @cmd = ($NGINX, '-p', "$PREFIX/", '-c', "$PREFIX/conf/nginx.conf", '-e', "$PREFIX/logs/error.log");
    my ($ok, $t) = capture(@cmd, '-t');
    die "nginx -t failed for configuration \"$label\":\n$t" unless $ok;
    truncate $ACCESS_LOG, 0 if -e $ACCESS_LOG;
    $nginx_pid = spawn('nginx', "$PREFIX/logs/stderr.log", @cmd, '-g', 'daemon off;');
    wait_port($addr{N}, $nginx_pid, 10);
    note("nginx running configuration \"$label\"");
}

# Access log entries, parsed; only requests with an /v2/ uri.
sub access_log {
    my @e;
    open my $fh, '<', $ACCESS_LOG or return ();
    while (<$fh>) {
        next unless m{^\S+ \[[^\]]*\] (\S+) (/v2/\S*) (\d+) us="([^"]*)" ua="([^"]*)"};
        push @e, { method => $1, uri => $2, status => $3, us => $4, ua => $5, line => $_ };
    }
    return @e;
}

# The entries for $method, an uri matching $uri_re and (if given) status $status; waits a
# little for at least one.
sub entries {
    my ($method, $uri_re, $status) = @_;
    return eventually(sub {
        grep { $_->{method} eq $method && $_->{uri} =~ $uri_re && (!defined $status || $_->{status} == $status) }
            access_log();
    });
}

sub show { join '', map { $_->{line} } @_ }

# ---------------------------------------------------------------------------------------
# Images: OCI layouts written by the test itself

# Writes an OCI image layout with a config and two gzip'd tar layers whose contents are
# unique to this image; layer 2 gets $big bytes of random data (default none).
# Returns { dir, tag, manifest, config, layers => [...] } (digests).
sub make_image {
    my ($name, $big) = @_;
    my $dir = "$TMP/images/$name";
    make_path("$dir/blobs/sha256");
    my $put = sub {
        my ($bytes) = @_;
        my $hex = sha256_hex($bytes);
        spew("$dir/blobs/sha256/$hex", $bytes);
        return ("sha256:$hex", length $bytes);
    };
    my (@layers, @diff_ids);
    for my $n (1 .. 2) {
        my $tar = Archive::Tar->new;
        $tar->add_data("e2e/$name-layer$n.txt",
            "image $name layer $n, run $$ " . time . " " . rand() . "\n" . ("x" x (1000 * $n)),
            { mtime => 1700000000, uid => 0, gid => 0, mode => 0644 });
        $tar->add_data("e2e/$name-random.bin", random_bytes($big), { mtime => 1700000000, mode => 0644 })
            if $n == 2 && $big;
        my $raw = $tar->write;
        gzip(\$raw => \my $gz, Time => 0, Minimal => 1) or die "gzip: $GzipError";
        push @diff_ids, 'sha256:' . sha256_hex($raw);
        my ($d, $size) = $put->($gz);
        push @layers, { mediaType => 'application/vnd.oci.image.layer.v1.tar+gzip', digest => $d, size => $size };
    }
    my ($cfg_digest, $cfg_size) = $put->($json->encode({
        architecture => 'amd64',
        os           => 'linux',
        config       => { Cmd => ['/bin/true'], Labels => { 'e2e.image' => $name } },
        rootfs       => { type => 'layers', diff_ids => \@diff_ids },
    }));
    my $manifest = $json->encode({
        schemaVersion => 2,
        mediaType     => 'application/vnd.oci.image.manifest.v1+json',
        config        => { mediaType => 'application/vnd.oci.image.config.v1+json', digest => $cfg_digest, size => $cfg_size },
        layers        => \@layers,
    });
    my ($m_digest, $m_size) = $put->($manifest);
    spew("$dir/oci-layout", $json->encode({ imageLayoutVersion => '1.0.0' }));
    spew("$dir/index.json", $json->encode({
        schemaVersion => 2,
        manifests     => [{
            mediaType   => 'application/vnd.oci.image.manifest.v1+json',
            digest      => $m_digest,
            size        => $m_size,
            annotations => { 'org.opencontainers.image.ref.name' => 'v1' },
        }],
    }));
    return { name => $name, dir => $dir, tag => 'v1', manifest => $m_digest, config => $cfg_digest,
             layers => [map { $_->{digest} } @layers] };
}

sub random_bytes {
    my ($n) = @_;
    open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    read($fh, my $buf, $n) == $n or die "/dev/urandom: short read";
    return $buf;
}

sub blobs_of { my ($img) = @_; return ($img->{config}, @{ $img->{layers} }) }

# ---------------------------------------------------------------------------------------
# skopeo

my $skopeo_no = 0;

# Runs skopeo; returns (exit status == 0, stdout, stderr).
sub skopeo {
    my (@args) = @_;
    $skopeo_no++;
    my ($out, $err) = ("$TMP/skopeo-$skopeo_no.out", "$TMP/skopeo-$skopeo_no.err");
    make_path("$TMP/skopeo-home", "$TMP/skopeo-tmp");
    # skopeo keeps a blob-location cache; as root it would write it to
    # /var/lib/containers/cache. Make it use the temporary directory instead (containers/image
    # takes the uid from _CONTAINERS_ROOTLESS_UID and then uses XDG_DATA_HOME).
    local $ENV{HOME}                     = "$TMP/skopeo-home";
    local $ENV{XDG_DATA_HOME}            = "$TMP/skopeo-home/data";
    local $ENV{XDG_CONFIG_HOME}          = "$TMP/skopeo-home/config";
    local $ENV{XDG_RUNTIME_DIR}          = "$TMP/skopeo-home/run";
    local $ENV{_CONTAINERS_ROOTLESS_UID} = $ENV{_CONTAINERS_ROOTLESS_UID} || ($> == 0 ? 4242 : $>);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN,  '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>', $err or POSIX::_exit(127);
        exec $SKOPEO, '--insecure-policy', '--tmpdir', "$TMP/skopeo-tmp", '--command-timeout', '60s', @args
            or do { print STDERR "exec skopeo: $!\n"; POSIX::_exit(127) };
    }
    $E2E::pids{$pid} = 'skopeo';
    waitpid($pid, 0);
    delete $E2E::pids{$pid};
    my $ok = $? == 0;
    my ($o, $e) = (slurp($out), slurp($err));
    $last_skopeo_err = "skopeo @args\n$e" unless $ok;
    return ($ok, $o, $e);
}

sub push_image {
    my ($img, $dest_addr, $repo) = @_;
    return skopeo('copy', '--dest-tls-verify=false', '--dest-no-creds',
        "oci:$img->{dir}:$img->{tag}", "docker://$dest_addr/$repo:$img->{tag}");
}

sub pull_image {
    my ($src_addr, $repo, $tag, $dest_dir) = @_;
    return skopeo('copy', '--src-tls-verify=false', '--src-no-creds',
        "docker://$src_addr/$repo:$tag", "oci:$dest_dir:$tag");
}

sub inspect {
    my ($src_addr, $repo, $tag) = @_;
    return skopeo('inspect', '--tls-verify=false', '--no-creds', "docker://$src_addr/$repo:$tag");
}

# ---------------------------------------------------------------------------------------
# direct registry checks

my $ACCEPT = join ', ', 'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json';

sub manifest_status {
    my ($site, $repo, $ref) = @_;
    return $http->request('HEAD', "http://$addr{$site}/v2/$repo/manifests/$ref",
        { headers => { Accept => $ACCEPT } })->{status};
}

sub blob_status {
    my ($site, $repo, $digest) = @_;
    return $http->request('HEAD', "http://$addr{$site}/v2/$repo/blobs/$digest")->{status};
}

# Asserts where an image is: $want{A}/$want{B} = 1 (all there) or 0 (none there).
sub image_is_on {
    my ($img, $repo, %want) = @_;
    for my $site (sort keys %want) {
        my $exp = $want{$site} ? 200 : 404;
        my @got = (manifest_status($site, $repo, $img->{tag}),
                   map { blob_status($site, $repo, $_) } blobs_of($img));
        is("@got", join(' ', ($exp) x @got),
            "$repo: manifest and blobs " . ($want{$site} ? 'present' : 'absent') . " on site $site");
    }
}

# ---------------------------------------------------------------------------------------
# The scenarios

my $img_pushed = make_image('pushed');
my $img_remote = make_image('remote', 3 << 20);    # layer 2 about 3 MB
my $img_split  = make_image('split');

start_nginx(shipped_conf(), 'shipped');

my $WRITE = qr/^(POST|PATCH|PUT|DELETE)$/;

# Starts an upload through nginx and cancels it again: its Location (with a _state the
# local site signed) now names an upload the local site does not know.
sub cancelled_upload {
    my ($repo) = @_;
    my $r = $http->post("http://$addr{N}/v2/$repo/blobs/uploads/", { content => '' });
    my $loc = $r->{headers}{location} // '';
    is($r->{status}, 202, 'POST starts an upload');
    is($http->request('DELETE', $loc)->{status}, 204, 'DELETE cancels it');
    return $loc;
}

sub error_code {
    my ($r) = @_;
    my $body = eval { $json->decode($r->{content}) } || {};
    return "$r->{status} " . ($body->{errors}[0]{code} // '-');
}

sub upstreams { my ($e) = @_; return $e ? "$e->{us} | $e->{ua}" : 'no log entry' }

subtest 'push through nginx lands on the local site only' => sub {
    my ($ok) = push_image($img_pushed, $addr{N}, 'e2e/pushed');
    ok($ok, 'skopeo copy oci: -> docker://nginx/e2e/pushed:v1 succeeds');
    image_is_on($img_pushed, 'e2e/pushed', A => 1, B => 0);

    ok(scalar(entries('PUT', qr{^/v2/e2e/pushed/manifests/v1$})), 'manifest PUT logged');
    my @writes = grep { $_->{method} =~ $WRITE && $_->{uri} =~ m{^/v2/e2e/pushed/} } access_log();
    ok(scalar(grep { $_->{method} eq 'POST' } @writes), 'upload POSTs logged');
    my @bad = grep { $_->{ua} ne $addr{A} } @writes;
    ok(!@bad, 'every write went to the local site only, once') or diag(show(@bad));
    my @other = grep { $_->{ua} =~ /\Q$addr{B}\E/ } access_log();
    ok(!@other, 'no request of the push reached the other site') or diag(show(@other));
};

subtest 'pull through nginx while only the other site has the image' => sub {
    my ($ok) = push_image($img_remote, $addr{B}, 'e2e/remote');
    ok($ok, 'image pushed directly to the other site');
    image_is_on($img_remote, 'e2e/remote', A => 0, B => 1);
    truncate $ACCESS_LOG, 0;

    my ($iok, $out) = inspect($addr{N}, 'e2e/remote', 'v1');
    ok($iok, 'skopeo inspect through nginx succeeds');
    my $info = eval { $json->decode($out) } || {};
    is($info->{Digest}, $img_remote->{manifest}, 'inspect shows the manifest digest');

    my $dest = "$TMP/pulled-remote";
    my ($pok) = pull_image($addr{N}, 'e2e/remote', 'v1', $dest);
    ok($pok, 'skopeo copy docker://nginx/e2e/remote:v1 -> oci: succeeds');
    for my $d ($img_remote->{manifest}, blobs_of($img_remote)) {
        (my $hex = $d) =~ s/^sha256://;
        ok(-s "$dest/blobs/sha256/$hex" && sha256_hex(slurp("$dest/blobs/sha256/$hex")) eq $hex,
            "pulled $d intact");
    }

    my $both = "404, 200 | $addr{A}, $addr{B}";
    my @m = entries('GET', qr{^/v2/e2e/remote/manifests/v1$});
    ok(@m >= 2, 'manifest GETs logged (inspect and copy)');
    my @bad = grep { upstreams($_) ne $both } @m;
    ok(!@bad, 'manifest GET: upstream_status "404, 200", local site then other site') or diag(show(@m));
    for my $d (blobs_of($img_remote)) {
        my @b = entries('GET', qr{^/v2/e2e/remote/blobs/\Q$d\E$});
        ok(@b >= 1 && !grep({ upstreams($_) ne $both } @b), "blob GET $d: upstream_status \"404, 200\"")
            or diag(show(@b) || "no blob GET $d logged\n");
    }
    my @heads = grep { $_->{method} eq 'HEAD' } access_log();
    ok(!@heads, 'skopeo sent no HEAD while pulling') or diag(show(@heads));

    # A manifest HEAD (what docker pull sends first) falls through as well, with its headers.
    my $r = $http->request('HEAD', "http://$addr{N}/v2/e2e/remote/manifests/v1", { headers => { Accept => $ACCEPT } });
    is($r->{status}, 200, 'manifest HEAD through nginx: 200');
    is($r->{headers}{'docker-content-digest'}, $img_remote->{manifest}, 'manifest HEAD: Docker-Content-Digest of the image');
    is($r->{headers}{'docker-distribution-api-version'}, 'registry/2.0', 'Docker-Distribution-Api-Version passed through');
    is(upstreams((entries('HEAD', qr{^/v2/e2e/remote/manifests/v1$}))[0]), $both, 'manifest HEAD: "404, 200"');

    # A range of a blob (how clients resume a download) falls through: 404, then 206.
    my $big = $img_remote->{layers}[1];
    (my $big_hex = $big) =~ s/^sha256://;
    my $big_data = slurp("$img_remote->{dir}/blobs/sha256/$big_hex");
    ok(length($big_data) > 3_000_000, 'layer 2 is about 3 MB');
    $r = $http->get("http://$addr{N}/v2/e2e/remote/blobs/$big", { headers => { Range => 'bytes=1000000-1000099' } });
    is($r->{status}, 206, 'blob range GET through nginx: 206');
    ok($r->{content} eq substr($big_data, 1000000, 100), 'the right 100 bytes');
    is(upstreams((entries('GET', qr{/blobs/\Q$big\E$}, 206))[0]),
        "404, 206 | $addr{A}, $addr{B}", 'range GET: "404, 206"');

    # The large blob, ten times in a row on one client connection (nginx keeps upstream
    # connections alive; every request first gets a 404 from the local site).
    my @digests = map { my $g = $http->get("http://$addr{N}/v2/e2e/remote/blobs/$big"); "$g->{status} " . sha256_hex($g->{content} // '') } 1 .. 10;
    is_deeply(\@digests, [("200 $big_hex") x 10], 'large blob fetched intact ten times');

    # A blob HEAD does not fall through (registry.conf sends it to the local site only).
    my $d = $img_remote->{layers}[0];
    $r = $http->request('HEAD', "http://$addr{N}/v2/e2e/remote/blobs/$d");
    is($r->{status}, 404, 'blob HEAD through nginx: the local site\'s 404');
    is(upstreams((entries('HEAD', qr{/blobs/\Q$d\E$}))[0]), "404 | $addr{A}", 'blob HEAD: local site only');
};

subtest 'a blob present on one site only' => sub {
    my ($okA) = push_image($img_split, $addr{A}, 'e2e/split');
    my ($okB) = push_image($img_split, $addr{B}, 'e2e/split');
    ok($okA && $okB, 'image pushed directly to both sites');
    my ($l1, $l2) = @{ $img_split->{layers} };
    # layer 1 only on the other site, layer 2 only on the local site
    is($http->request('DELETE', "http://$addr{A}/v2/e2e/split/blobs/$l1")->{status}, 202, 'layer 1 deleted on the local site');
    is($http->request('DELETE', "http://$addr{B}/v2/e2e/split/blobs/$l2")->{status}, 202, 'layer 2 deleted on the other site');
    is(blob_status('A', 'e2e/split', $l1) . ' ' . blob_status('B', 'e2e/split', $l1), '404 200', 'layer 1: only on B');
    is(blob_status('A', 'e2e/split', $l2) . ' ' . blob_status('B', 'e2e/split', $l2), '200 404', 'layer 2: only on A');
    truncate $ACCESS_LOG, 0;

    my $dest = "$TMP/pulled-split";
    my ($ok) = pull_image($addr{N}, 'e2e/split', 'v1', $dest);
    ok($ok, 'pull through nginx succeeds');
    for my $d ($l1, $l2) {
        (my $hex = $d) =~ s/^sha256://;
        ok(-s "$dest/blobs/sha256/$hex" && sha256_hex(slurp("$dest/blobs/sha256/$hex")) eq $hex, "$d pulled intact");
    }
    is(upstreams((entries('GET', qr{^/v2/e2e/split/blobs/\Q$l1\E$}))[0]), "404, 200 | $addr{A}, $addr{B}",
        'layer 1 came from the other site after a 404');
    is(upstreams((entries('GET', qr{^/v2/e2e/split/blobs/\Q$l2\E$}))[0]), "200 | $addr{A}",
        'layer 2 came from the local site');
    is(upstreams((entries('GET', qr{^/v2/e2e/split/manifests/v1$}))[0]), "200 | $addr{A}",
        'the manifest came from the local site');
};

subtest 'passing on after a 404 does not count as a failure of the local site' => sub {
    # registry_both has max_fails=3 on the local site; more than that many 404s in a row
    # must not make nginx skip it (it would then ask only the other site for 10 s).
    truncate $ACCESS_LOG, 0;
    my @s = map { $http->get("http://$addr{N}/v2/e2e/remote/manifests/v1", { headers => { Accept => $ACCEPT } })->{status} } 1 .. 6;
    is("@s", '200 200 200 200 200 200', 'six reads that the local site answered 404');
    my $r = $http->get("http://$addr{N}/v2/e2e/pushed/manifests/v1", { headers => { Accept => $ACCEPT } });
    is($r->{status}, 200, 'an image only the local site has is found right after');
    is(upstreams((entries('GET', qr{^/v2/e2e/pushed/manifests/v1$}))[0]), "200 | $addr{A}", 'served by the local site');
    my @all = grep { $_->{uri} eq '/v2/e2e/remote/manifests/v1' } access_log();
    is(scalar(grep { upstreams($_) eq "404, 200 | $addr{A}, $addr{B}" } @all), 6, 'each of the six asked the local site first');
};

subtest 'mixed reads from several clients at once' => sub {
    # Four clients, each with its own keep-alive connection to nginx, interleaving reads that
    # fall through (404, 200), reads that do not (200) and reads that fail on both sites
    # (404, 404), so upstream connections that saw a 404 get reused.
    my $big = $img_remote->{layers}[1];
    (my $big_hex = $big) =~ s/^sha256://;
    my @kids;
    for my $k (1 .. 4) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $c = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
            my $bad = 0;
            eval { for my $i (1 .. 15) {
                my $r = $c->get("http://$addr{N}/v2/e2e/remote/manifests/v1", { headers => { Accept => $ACCEPT } });
                $bad++ unless $r->{status} == 200 && ($r->{headers}{'docker-content-digest'} // '') eq $img_remote->{manifest};
                $r = $c->get("http://$addr{N}/v2/e2e/pushed/manifests/v1", { headers => { Accept => $ACCEPT } });
                $bad++ unless $r->{status} == 200 && ($r->{headers}{'docker-content-digest'} // '') eq $img_pushed->{manifest};
                $r = $c->request('HEAD', "http://$addr{N}/v2/e2e/remote/manifests/nope-$k-$i", { headers => { Accept => $ACCEPT } });
                $bad++ unless $r->{status} == 404;
                if ($i % 5 == 0) {
                    $r = $c->get("http://$addr{N}/v2/e2e/remote/blobs/$big");
                    $bad++ unless $r->{status} == 200 && sha256_hex($r->{content}) eq $big_hex;
                }
            } 1 } or $bad = 99;
            POSIX::_exit($bad > 250 ? 250 : $bad);
        }
        push @kids, $pid;
    }
    my @bad;
    for my $pid (@kids) { waitpid($pid, 0); push @bad, $? >> 8 }
    is("@bad", '0 0 0 0', 'every response right (wrong responses per client)');
};

subtest 'unknown tag: the registry\'s own 404 reaches the client' => sub {
    truncate $ACCESS_LOG, 0;
    my $r = $http->get("http://$addr{N}/v2/e2e/remote/manifests/no-such-tag", { headers => { Accept => $ACCEPT } });
    is(error_code($r), '404 MANIFEST_UNKNOWN', 'GET unknown tag: 404 with error code MANIFEST_UNKNOWN')
        or diag($r->{content});
    like($r->{headers}{'content-type'} // '', qr{^application/json}, 'a JSON body');
    is($r->{headers}{'docker-distribution-api-version'}, 'registry/2.0', 'Docker-Distribution-Api-Version present');
    is(upstreams((entries('GET', qr{/manifests/no-such-tag$}))[0]), "404, 404 | $addr{A}, $addr{B}",
        'both sites were asked, the last 404 was returned');

    my ($ok, undef, $err) = inspect($addr{N}, 'e2e/remote', 'no-such-tag');
    ok(!$ok, 'skopeo inspect of an unknown tag fails');
    like($err, qr/manifest unknown/i, 'skopeo reports "manifest unknown"');
    $last_skopeo_err = '';

    $r = $http->get("http://$addr{N}/v2/e2e/no-such-repo/tags/list");
    is(error_code($r), '404 NAME_UNKNOWN', 'tags of an unknown repository: 404 NAME_UNKNOWN');
};

subtest 'writes are never sent to the other site' => sub {
    truncate $ACCESS_LOG, 0;
    my $loc = cancelled_upload('e2e/remote');
    like($loc, qr{^http://\Q$addr{N}\E/v2/e2e/remote/blobs/uploads/[-0-9a-f]+\?_state=},
        'the upload Location points at nginx (Host passed through)');
    my $zero = 'sha256:' . sha256_hex('');
    for my $method (qw(PATCH PUT)) {
        my $url = $method eq 'PUT' ? "$loc&digest=$zero" : $loc;
        my $r = $http->request($method, $url, { content => '', headers => { 'Content-Type' => 'application/octet-stream' } });
        is(error_code($r), '404 BLOB_UPLOAD_UNKNOWN', "$method of the cancelled upload: the local site's 404 reaches the client");
        (my $path = $url) =~ s{^http://[^/]+}{};
        $path =~ s/\?.*//;
        is(upstreams((entries($method, qr{^\Q$path\E$}))[0]), "404 | $addr{A}", "$method: one upstream, the local site");
    }

    # A whole upload through nginx: POST, PATCH, PUT.
    my $data = "blob uploaded through nginx $$ " . rand() . "\n";
    my $digest = 'sha256:' . sha256_hex($data);
    my $r = $http->post("http://$addr{N}/v2/e2e/remote/blobs/uploads/", { content => '' });
    is($r->{status}, 202, 'POST starts an upload');
    $r = $http->request('PATCH', $r->{headers}{location}, { content => $data, headers => { 'Content-Type' => 'application/octet-stream' } });
    is($r->{status}, 202, 'PATCH uploads the data');
    $loc = $r->{headers}{location} // '';
    $r = $http->request('PUT', "$loc&digest=$digest", { content => '' });
    is($r->{status}, 201, 'PUT completes the upload');
    is(blob_status('A', 'e2e/remote', $digest) . ' ' . blob_status('B', 'e2e/remote', $digest), '200 404',
        'the blob is on the local site only');

    my @w = eventually(sub { my @w = grep { $_->{method} =~ $WRITE } access_log(); @w >= 7 ? @w : () });
    is(scalar(@w), 7, 'seven writes logged') or diag(show(access_log()));
    my @bad = grep { $_->{ua} ne $addr{A} } @w;
    ok(!@bad, 'all writes went to the local site only, once each') or diag(show(@bad));
};

subtest 'push of an image whose blobs only the other site has' => sub {
    # The case the blob HEAD route in registry.conf is for: the other site has the image
    # (e2e/remote, above), the local site has not.
    truncate $ACCESS_LOG, 0;
    my ($ok, undef, $err) = push_image($img_remote, $addr{N}, 'e2e/remote');
    ok($ok, 'push through nginx succeeds');
    image_is_on($img_remote, 'e2e/remote', A => 1);
    ok(scalar(entries('PATCH', qr{^/v2/e2e/remote/blobs/uploads/})), 'the blobs were uploaded to the local site');
};

subtest 'caveat: a tag list comes from one site' => sub {
    # Both sites have e2e/remote:v1 now; v2 only the other site has.
    my ($ok) = skopeo('copy', '--dest-tls-verify=false', '--dest-no-creds',
        "oci:$img_remote->{dir}:v1", "docker://$addr{B}/e2e/remote:v2");
    ok($ok, 'tag v2 pushed directly to the other site');
    truncate $ACCESS_LOG, 0;
    my $r = $http->get("http://$addr{N}/v2/e2e/remote/tags/list");
    my $tags = eval { $json->decode($r->{content})->{tags} } || [];
    is("$r->{status} @$tags", '200 v1', 'the tag list through nginx is the local site\'s: v1 only');
    is(upstreams((entries('GET', qr{/tags/list$}))[0]), "200 | $addr{A}", 'served by the local site, not passed on');
    $r = $http->get("http://$addr{N}/v2/e2e/remote/manifests/v2", { headers => { Accept => $ACCEPT } });
    is($r->{status}, 200, 'while pulling v2 by its tag works');
    is(upstreams((entries('GET', qr{/manifests/v2$}))[0]), "404, 200 | $addr{A}, $addr{B}", 'v2: 404, 200');
};

subtest 'caveat: with blob HEADs passed on to the other site, that push fails' => sub {
    my $c = shipped_conf();
    $c =~ s{^\s*"~\^HEAD /v2/\.\+/blobs/\[\^/\]\+\$"\s+registry_local;\n}{}m
        or return fail('could not remove the blob HEAD route from registry.conf');
    start_nginx($c, 'blob-head-to-both');
    my ($ok) = push_image($img_remote, $addr{B}, 'e2e/caveat');
    ok($ok, 'image pushed directly to the other site');
    image_is_on($img_remote, 'e2e/caveat', A => 0);
    truncate $ACCESS_LOG, 0;
    my ($pok, undef, $err) = push_image($img_remote, $addr{N}, 'e2e/caveat');
    ok(!$pok, 'push through nginx fails');
    like($err, qr/manifest blob unknown/i, 'the local site rejects the manifest: manifest blob unknown');
    $last_skopeo_err = '';
    my @h = entries('HEAD', qr{^/v2/e2e/caveat/blobs/});
    ok(@h && !grep({ $_->{us} ne '404, 200' } @h), 'the blob HEADs fell through to the other site (404, 200)')
        or diag(show(access_log()));
    ok(!grep({ $_->{method} eq 'PATCH' } access_log()), 'so no blob was uploaded');
};

subtest 'a write that reaches the two-site upstream is still not passed on' => sub {
    # Defence in depth: with every request sent to registry_both, the module passes on
    # only GET and HEAD (its default methods).
    my $c = shipped_conf();
    $c =~ s{proxy_pass http://\$registry_upstream;}{proxy_pass http://registry_both;} or return fail('no proxy_pass');
    start_nginx($c, 'all-to-both');
    my $loc = cancelled_upload('e2e/remote');
    (my $path = $loc) =~ s{^http://[^/]+}{};
    $path =~ s/\?.*//;
    for my $method (qw(PATCH PUT DELETE)) {
        my $r = $http->request($method, $loc, { content => '' });
        is(error_code($r), '404 BLOB_UPLOAD_UNKNOWN', "$method of the cancelled upload: the local 404");
        is(upstreams((entries($method, qr{^\Q$path\E$}, 404))[0]), "404 | $addr{A}", "$method: not passed on to the other site");
    }
    my $r = $http->get("http://$addr{N}/v2/e2e/caveat/manifests/v1", { headers => { Accept => $ACCEPT } });
    is($r->{status}, 200, 'while a GET still is');
};

subtest 'without the directive the same pull fails' => sub {
    my $c = shipped_conf();
    $c =~ s{^\s*proxy_next_upstream_status\s[^;]*;\n}{}m or return fail('no proxy_next_upstream_status line');
    start_nginx($c, 'no-directive');
    my ($ok, undef, $err) = pull_image($addr{N}, 'e2e/caveat', 'v1', "$TMP/pulled-no-directive");
    ok(!$ok, 'pull of an image only the other site has fails');
    like($err, qr/manifest unknown/i, 'manifest unknown');
    $last_skopeo_err = '';
    is(upstreams((entries('GET', qr{^/v2/e2e/caveat/manifests/v1$}))[0]), "404 | $addr{A}", 'only the local site was asked');

    $c =~ s{^\s*load_module\s[^;]*;\n}{}m or return fail('no load_module line');
    start_nginx($c, 'no-module');
    ($ok, undef, $err) = pull_image($addr{N}, 'e2e/caveat', 'v1', "$TMP/pulled-no-module");
    ok(!$ok, 'without the module as well');
    like($err, qr/manifest unknown/i, 'manifest unknown');
    $last_skopeo_err = '';

    # and the directive does come from the module
    spew("$PREFIX/conf/nginx.conf.unknown", shipped_conf() =~ s{^\s*load_module\s[^;]*;\n}{}mr);
    my (undef, $t) = capture($NGINX, '-p', "$PREFIX/", '-c', "$PREFIX/conf/nginx.conf.unknown",
        '-e', "$PREFIX/logs/error-unknown.log", '-t');
    like($t, qr/unknown directive "proxy_next_upstream_status"/, 'without load_module the directive is unknown');
};

# ---------------------------------------------------------------------------------------
# One site down. A read the local site answers 404 is passed on to
# the other site; when that one is down, the client must get the local site's 404 (the
# module's kept answer), not nginx's 502: a registry client takes a 404 on a blob check for
# "upload it" and a 404 on a manifest for "no such image", but a 502 fails the push or pull.

my $ERROR_LOG = "$PREFIX/logs/error.log";
sub error_log_size { return -s $ERROR_LOG || 0 }
sub error_log_from { my ($off) = @_; return -e $ERROR_LOG ? substr(slurp($ERROR_LOG), $off) : '' }

# Kills a site's registry as if the site had gone away, and waits until its port is closed.
sub kill_registry {
    my ($site) = @_;
    my $pid = delete $reg_pid{$site} or return fail("site $site is not running");
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $E2E::pids{$pid};
    ok(wait_closed($addr{$site}), "site $site stopped: its port is closed");
}

sub with_keep_answer_off {
    my ($c) = @_;
    $c =~ s{^(\s*proxy_next_upstream_status\s+404)\s*;}{$1 keep_answer=off;}m
        or die "registry.conf: no \"proxy_next_upstream_status 404;\" to add keep_answer=off to\n";
    return $c;
}

sub without_blob_head_route {
    my ($c) = @_;
    $c =~ s{^\s*"~\^HEAD /v2/\.\+/blobs/\[\^/\]\+\$"\s+registry_local;\n}{}m
        or die "registry.conf: could not remove the blob HEAD route\n";
    return $c;
}

# $upstream_addr of a read that the local site answered and that was then passed on to the
# other site, down: its address (connection refused) or, once nginx has marked it down
# (max_fails), the upstream's name ("no live upstreams").
sub passed_to_down { my ($local, $other) = @_; return qr/^\Q$addr{$local}\E, (\Q$addr{$other}\E|registry_both)$/ }

# The log entry of a read that got the kept answer: $status 404, $upstream_status "404, 502".
sub kept_404_logged {
    my ($e, $local, $other, $what) = @_;
    ok($e && $e->{status} == 404 && $e->{us} eq '404, 502' && $e->{ua} =~ passed_to_down($local, $other),
        "$what: access log shows \$status 404, \$upstream_status \"404, 502\", local site then other site")
        or diag($e ? $e->{line} : "no log entry\n" . show(access_log()));
}

# Response headers nginx sets itself (or, Date and Server, hides from the upstream's answer).
my %NGINX_OWN = map { $_ => 1 } qw(date server connection keep-alive transfer-encoding);

# GETs $path from the site directly and through nginx: nginx must give the client the site's
# own 404 answer, error code, body and headers.
sub registry_404_through_nginx {
    my ($site, $path, $code) = @_;
    my %h = (headers => { Accept => $ACCEPT });
    my $direct = $http->get("http://$addr{$site}$path", \%h);
    my $via    = $http->get("http://$addr{N}$path", \%h);
    is(error_code($direct), "404 $code", "GET $path directly from site $site: 404 $code");
    is(error_code($via), "404 $code", "through nginx: the same 404 $code, not 502")
        or diag("$via->{status} $via->{reason}\n$via->{content}");
    is($via->{content}, $direct->{content}, 'the registry\'s JSON body, byte for byte');
    my @names = grep { !$NGINX_OWN{$_} } sort keys %{ $direct->{headers} };
    is_deeply({ map { $_ => $via->{headers}{$_} } @names }, { map { $_ => $direct->{headers}{$_} } @names },
        "the registry's headers (@names)");
    return $via;
}

my $nowhere = 'sha256:' . sha256_hex("a blob no site has, run $$");

subtest 'the other site down: a push works, reads the local site lacks get its 404' => sub {
    start_nginx(shipped_conf(), 'other-site-down');
    kill_registry('B');
    my $off = error_log_size();

    my $img = make_image('dr-local');
    my ($ok) = push_image($img, $addr{N}, 'e2e/dr-local');
    ok($ok, 'push through nginx succeeds');
    image_is_on($img, 'e2e/dr-local', A => 1);
    my @bad = grep { $_->{status} >= 500 || $_->{us} =~ /\b5\d\d\b/ } access_log();
    ok(!@bad, 'no request of the push saw a 5xx') or diag(show(@bad));

    # e2e/caveat:v1 is on the other site only (pushed there directly above).
    truncate $ACCESS_LOG, 0;
    registry_404_through_nginx('A', '/v2/e2e/caveat/manifests/v1', 'MANIFEST_UNKNOWN');
    kept_404_logged((entries('GET', qr{^/v2/e2e/caveat/manifests/v1$}))[0], 'A', 'B', 'manifest GET');
    registry_404_through_nginx('A', "/v2/e2e/pushed/blobs/$nowhere", 'BLOB_UNKNOWN');
    kept_404_logged((entries('GET', qr{^/v2/e2e/pushed/blobs/\Q$nowhere\E$}))[0], 'A', 'B', 'blob GET');

    like(error_log_from($off),
        qr/\[warn\].*next_upstream_status: no later server gave an answer \(502\), sending the 404 answered by "\Q$addr{A}\E"/,
        'error log: the warn line of the kept answer');
};

subtest 'the other site marked down (no live upstreams): the 404 every time' => sub {
    # B is still down. nginx marks it down after its first failure (max_fails=1, the default
    # for the backup server, per worker): later reads end in "no live upstreams", not in a
    # refused connection. One keep-alive connection, so one worker and its view of the peers.
    my $off = error_log_size();
    truncate $ACCESS_LOG, 0;
    my $c = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
    my @r = map { $c->get("http://$addr{N}/v2/e2e/pushed/blobs/$nowhere") } 1 .. 5;
    is(join(' ', map { error_code($_) } @r), join(' ', ('404 BLOB_UNKNOWN') x 5),
        'five GETs of a missing blob: 404 BLOB_UNKNOWN each, no 502');
    ok(!grep({ lc($_->{headers}{connection} // '') eq 'close' } @r), 'the client connection was kept alive');
    my @e = eventually(sub { my @e = grep { $_->{uri} =~ /\Q$nowhere\E$/ } access_log(); @e >= 5 ? @e : () });
    is(scalar(@e), 5, 'five log entries') or diag(show(access_log()));
    ok(@e && !grep({ $_->{status} != 404 || $_->{us} ne '404, 502' || $_->{ua} !~ passed_to_down('A', 'B') } @e),
        'each: $status 404, $upstream_status "404, 502"') or diag(show(@e));
    my $nolive = grep { $_->{ua} eq "$addr{A}, registry_both" } @e;
    ok($nolive >= 4, "the other site skipped as down (\$upstream_addr \"local, registry_both\"): $nolive of 5, at least 4")
        or diag(show(@e));
    like(error_log_from($off), qr/no live upstreams/, 'error log: no live upstreams');
};

subtest 'nginx of site B with site A down: pulls of A\'s images get 404, pushes work' => sub {
    # The issue's scenario: the nginx in data centre B has B as its local site and A as the
    # other one (the backup in registry_both); A is down.
    start_registry('B');
    kill_registry('A');
    start_nginx(shipped_conf('B', 'A'), 'site-B-local-A-down');
    is(manifest_status('B', 'e2e/pushed', 'v1'), 404, 'e2e/pushed:v1 is not on site B (only on the stopped site A)');

    my ($ok, undef, $err) = pull_image($addr{N}, 'e2e/pushed', 'v1', "$TMP/pulled-a-down");
    ok(!$ok, 'pull through nginx of an image only the stopped site has fails');
    like($err, qr/manifest unknown/i, 'with the registry\'s 404: "manifest unknown"');
    unlike($err, qr/bad gateway|\b502\b/i, 'not with a 502');
    $last_skopeo_err = '' if $err =~ /manifest unknown/i;
    kept_404_logged((entries('GET', qr{^/v2/e2e/pushed/manifests/v1$}))[0], 'B', 'A', 'manifest GET');

    truncate $ACCESS_LOG, 0;
    my $img = make_image('dr-b');
    my ($pok) = push_image($img, $addr{N}, 'e2e/dr-b');
    ok($pok, 'push of a new image through nginx succeeds');
    image_is_on($img, 'e2e/dr-b', B => 1);
};

subtest 'keep_answer=off: the same pull gets nginx\'s 502' => sub {
    start_nginx(with_keep_answer_off(shipped_conf('B', 'A')), 'site-B-local-A-down-keep-off');
    my ($ok, undef, $err) = pull_image($addr{N}, 'e2e/pushed', 'v1', "$TMP/pulled-a-down-off");
    ok(!$ok, 'pull fails');
    like($err, qr/bad gateway|\b502\b/i, 'with a 502 (bad gateway)');
    unlike($err, qr/manifest unknown/i, 'not with the registry\'s 404');
    $last_skopeo_err = '' if $err =~ /bad gateway|\b502\b/i;
    my ($e) = entries('GET', qr{^/v2/e2e/pushed/manifests/v1$});
    ok($e && $e->{status} == 502 && $e->{us} eq '404, 502', 'access log: $status 502, $upstream_status "404, 502"')
        or diag($e ? $e->{line} : show(access_log()));
};

subtest 'the issue\'s case: blob checks passed on to the stopped site' => sub {
    # With the blob HEAD route removed, a push's blob checks fall through like any read:
    # B answers 404, A is down. keep_answer on: the client gets B's 404 and uploads the
    # blob; off (stock nginx): a 502, and the push fails.
    my $c = without_blob_head_route(shipped_conf('B', 'A'));
    start_nginx($c, 'site-B-local-A-down-blob-head-to-both');
    my $img = make_image('dr-head');
    my ($ok) = push_image($img, $addr{N}, 'e2e/dr-head');
    ok($ok, 'push through nginx succeeds');
    image_is_on($img, 'e2e/dr-head', B => 1);
    my @h = entries('HEAD', qr{^/v2/e2e/dr-head/blobs/});
    ok(@h && !grep({ $_->{status} != 404 || $_->{us} ne '404, 502' } @h),
        'its blob checks: $status 404, $upstream_status "404, 502"') or diag(show(access_log()));

    start_nginx(with_keep_answer_off($c), 'site-B-local-A-down-blob-head-to-both-keep-off');
    my $img2 = make_image('dr-head-off');
    my ($ok2, undef, $err) = push_image($img2, $addr{N}, 'e2e/dr-head-off');
    ok(!$ok2, 'with keep_answer=off the push fails');
    like($err, qr/bad gateway|\b502\b/i, 'on a 502');
    $last_skopeo_err = '' if !$ok2 && $err =~ /bad gateway|\b502\b/i;
    ok(scalar(entries('HEAD', qr{^/v2/e2e/dr-head-off/blobs/}, 502)), 'a blob check logged with $status 502')
        or diag(show(access_log()));

    start_registry('A');    # both sites up again
};

subtest 'housekeeping' => sub {
    ok($HAD_SYSTEM_CACHE || !-e '/var/lib/containers/cache', 'skopeo did not write to /var/lib/containers');
    my $log = -e "$PREFIX/logs/error.log" ? slurp("$PREFIX/logs/error.log") : '';
    my $errs = join '', grep { /\[(alert|emerg|crit)\]/ } split /^/, $log;
    is($errs, '', 'no alert/crit/emerg in the nginx error log');
};

note(sprintf 'e2e run time %.1fs', time - $T0);
done_testing();
