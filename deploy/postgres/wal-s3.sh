#!/bin/sh
# PostgreSQL's WAL archive in an S3 bucket (MinIO), with nothing but curl (>= 7.75, for
# --aws-sigv4): no client library on the database host.
#
#   archive_command = '/usr/local/bin/wal-s3.sh push %p %f'
#   restore_command = '/usr/local/bin/wal-s3.sh fetch %f %p'
#
# Settings come from the environment of the PostgreSQL server, or from the file named by
# WAL_S3_CONFIG (shell syntax, mode 0600, owned by the postgres user):
#   WAL_S3_ENDPOINT    http(s)://host:port of the S3 server
#   WAL_S3_ACCESS_KEY  WAL_S3_SECRET_KEY   an account that may put and get in the bucket
#   WAL_S3_BUCKET      the bucket (it must exist); segments go to wal/<name>
#   WAL_S3_REGION      default us-east-1
#
# push never overwrites a segment (If-None-Match: *): PostgreSQL may archive one twice
# after a crash, and that succeeds only if the stored copy is byte for byte the same, as
# the PostgreSQL manual asks of an archive_command. Every call is bounded in time.
set -eu

if [ -n "${WAL_S3_CONFIG:-}" ]; then
    # shellcheck disable=SC1090
    . "$WAL_S3_CONFIG"
fi
: "${WAL_S3_ENDPOINT:?WAL_S3_ENDPOINT is not set}"
: "${WAL_S3_ACCESS_KEY:?WAL_S3_ACCESS_KEY is not set}"
: "${WAL_S3_SECRET_KEY:?WAL_S3_SECRET_KEY is not set}"
: "${WAL_S3_BUCKET:?WAL_S3_BUCKET is not set}"
region=${WAL_S3_REGION:-us-east-1}

s3() {
    # The secret goes through a config file on stdin, never on the command line (ps).
    printf 'user = "%s:%s"\n' "$WAL_S3_ACCESS_KEY" "$WAL_S3_SECRET_KEY" |
        curl --silent --show-error --config - --aws-sigv4 "aws:amz:$region:s3" \
            --connect-timeout 5 --max-time 120 "$@"
}

url() { echo "${WAL_S3_ENDPOINT%/}/$WAL_S3_BUCKET/wal/$1"; }

case "${1:-}" in
push)
    [ $# -eq 3 ] || { echo "usage: $0 push %p %f" >&2; exit 2; }
    code=$(s3 --output /dev/null --write-out '%{http_code}' -H 'If-None-Match: *' \
        --upload-file "$2" "$(url "$3")")
    case $code in
    200) exit 0 ;;
    412)
        # Archived before: fine only if it is the same segment.
        tmp=$(mktemp)
        trap 'rm -f "$tmp"' EXIT
        s3 --fail --output "$tmp" "$(url "$3")"
        if cmp -s "$tmp" "$2"; then exit 0; fi
        echo "wal-s3: $3 is archived already with other contents" >&2
        exit 1
        ;;
    *)
        echo "wal-s3: PUT $3 answered HTTP $code" >&2
        exit 1
        ;;
    esac
    ;;
fetch)
    [ $# -eq 3 ] || { echo "usage: $0 fetch %f %p" >&2; exit 2; }
    tmp="$3.wal-s3.tmp"
    code=$(s3 --output "$tmp" --write-out '%{http_code}' "$(url "$2")") || code=000
    if [ "$code" = 200 ]; then
        mv "$tmp" "$3"
        exit 0
    fi
    rm -f "$tmp"
    # 404: not archived (the end of recovery); PostgreSQL asks for files that never were.
    [ "$code" = 404 ] || echo "wal-s3: GET $2 answered HTTP $code" >&2
    exit 1
    ;;
*)
    echo "usage: $0 push %p %f | fetch %f %p" >&2
    exit 2
    ;;
esac
