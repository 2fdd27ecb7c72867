#!/usr/bin/env bash
# bench/compare.sh — Ferry against vsftpd, side by side, on loopback.
#
# Builds Ferry and ferry-bench, starts vsftpd (installed from Debian when
# missing) and Ferry on 127.0.0.1 with equivalent settings over the same data
# tree, runs every scenario against both, interleaved (vsftpd, Ferry, vsftpd,
# Ferry …) for BENCH_ROUNDS rounds, and prints a markdown table of medians and
# Ferry/vsftpd ratios against the targets. In each round the limit scenarios
# measure the machine's own ceilings beside them (a bare sendfile sender, a Go
# TLS sender, a bare receiver, SHA-256 on one core; no server), and a second table puts both
# servers against those. See docs/benchmarks.md.
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [3]            rounds of every scenario on each server
#   BENCH_SIZE_MB [1024]        size of the retr/stor/ftps-* file
#   BENCH_LIST_N [10000]        entries of the timed listing
#   BENCH_BIGLIST_N [1000000]   entries of the listing whose peak memory is sampled
#   BENCH_SESSIONS_C ["50 200"] concurrencies of the sessions scenario (two values)
#   BENCH_SESSIONS_SECONDS [10] duration of one sessions run
#   BENCH_IDLE_N ["1000 10000"] idle sessions held (two values)
#   BENCH_SCENARIOS ["retr stor ftps-retr ftps-stor limit list sessions idle"];
#                               limit is the four ceilings limit-sendfile,
#                               limit-tls, limit-recv and limit-sha256 of ferry-bench, on
#                               the retr file, run once a round with the label
#                               limit. The S3 scenarios s3-retr s3-stor s3-list
#                               s3-small run only when named (see "S3" below)
#   BENCH_SERVERS ["vsftpd ferry"] servers to run (order = order within a round)
#   BENCH_QUICK=1               a seconds-long run: small sizes, 1 round (explicit
#                               BENCH_* settings still win)
#   BENCH_DATA [/tmp/ferry-bench-data]  cached data tree (big file, directories)
#   BENCH_OUT [a new temp dir]  where results.jsonl, report.md and logs go
#   BENCH_VSFTPD_PORT [21021] BENCH_FERRY_PORT [21121]  control ports
#   BENCH_VSFTPD_EXTRA          extra vsftpd.conf lines (newline separated)
#   BENCH_FERRY_EXTRA           extra `ferry serve` arguments
#
# S3: the s3-* scenarios compare Ferry on S3 (label ferry-s3) with a plain S3
# client straight to the same versitygw (label s3-direct, bench/s3ceiling):
# retr (and, as its ceiling, a bare relay of the GetObject to a loopback
# client) and stor of the BENCH_SIZE_MB file, MLSD of a BENCH_LIST_N-object
# prefix against ListObjectsV2 of it, BENCH_S3_SMALL_N uploads of 4 KiB over
# 4 sessions against as many PutObjects over 4 goroutines. They print a
# second table. versitygw comes from $FERRY_TOOLS or ~/.cache/ferry-tools.
#   BENCH_S3_DATA [/tmp/ferry-bench-s3]   versitygw's directory (objects cached)
#   BENCH_S3_PORT [21170] BENCH_FERRY_S3_PORT [21171]
#   BENCH_S3_SMALL_N [10000]  BENCH_S3_PARTS ["8MiB,16MiB,64MiB"]  BENCH_S3_CONC ["1,4,8"]
#                               (the part sizes × concurrencies s3ceiling tries; the best counts)
#   BENCH_FERRY_S3_EXTRA        extra `ferry serve` arguments of ferry-s3
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
	: "${BENCH_ROUNDS:=1}" "${BENCH_SIZE_MB:=32}" "${BENCH_LIST_N:=1000}" "${BENCH_BIGLIST_N:=20000}"
	: "${BENCH_SESSIONS_SECONDS:=1}" "${BENCH_IDLE_N:=20 100}" "${BENCH_S3_SMALL_N:=200}"
	: "${BENCH_S3_PARTS:=8MiB}" "${BENCH_S3_CONC:=4}"
fi
ROUNDS=${BENCH_ROUNDS:-3}
SIZE_MB=${BENCH_SIZE_MB:-1024}
LIST_N=${BENCH_LIST_N:-10000}
BIGLIST_N=${BENCH_BIGLIST_N:-1000000}
read -r SESS_C1 SESS_C2 <<<"${BENCH_SESSIONS_C:-50 200}"
SESS_SECS=${BENCH_SESSIONS_SECONDS:-10}
read -r IDLE_N1 IDLE_N2 <<<"${BENCH_IDLE_N:-1000 10000}"
SCENARIOS=${BENCH_SCENARIOS:-retr stor ftps-retr ftps-stor limit list sessions idle}
SERVERS=${BENCH_SERVERS:-vsftpd ferry}
# The S3 scenarios have their own two servers; without any other scenario,
# vsftpd and Ferry on disk are not started.
S3_SCENARIOS="" PLAIN_SCENARIOS=""
for sc in $SCENARIOS; do
	case $sc in s3-*) S3_SCENARIOS+=" $sc" ;; *) PLAIN_SCENARIOS+=" $sc" ;; esac
done
# The limit scenarios need the data tree but no server.
others=${PLAIN_SCENARIOS//limit/}
[[ -z ${others// /} ]] && SERVERS=""
S3_DATA=${BENCH_S3_DATA:-/tmp/ferry-bench-s3}
S3_PORT=${BENCH_S3_PORT:-21170}
FERRY_S3_PORT=${BENCH_FERRY_S3_PORT:-21171}
FERRY_S3_PASV=30000-31999
S3_SMALL_N=${BENCH_S3_SMALL_N:-10000}
S3_AK=ferrybench S3_SK=ferrybench-secret-key S3_BUCKET=ferry-bench
CACHE=${BENCH_DATA:-/tmp/ferry-bench-data}
VS_PORT=${BENCH_VSFTPD_PORT:-21021}
FERRY_PORT=${BENCH_FERRY_PORT:-21121}
# Passive ranges sit below the kernel's ephemeral range (32768–60999), so the
# benchmark's own outgoing connections never hold a port a server wants.
VS_PASV=20000-24999
FERRY_PASV=25000-29999
FERRY_USER=bench
FERRY_PASS=bench-password

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

# Thousands of sessions need thousands of descriptors, on both sides.
ulimit -n 65536 2>/dev/null || {
	ulimit -n "$(ulimit -Hn)"
	log "could not raise the open-file limit to 65536; it is $(ulimit -n) (Ferry needs about 2 per idle session)"
}

# vgw_version prints versitygw's module version: a `go install`ed binary
# reports "git" to --version, the build info has the release.
vgw_version() {
	local v
	v=$(go version -m "$VGW" 2>/dev/null | awk '$1 == "mod" { print $3; exit }')
	echo "${v:-?}"
}

OUT=${BENCH_OUT:-$(mktemp -d /tmp/ferry-bench-run.XXXXXX)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/ferry-bench-work.XXXXXX)
RESULTS=$OUT/results.jsonl
: >"$RESULTS"

declare -A PORT PID USER PASS UPLOAD
cleanup() {
	local p
	for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------
want_vsftpd=0; want_ferry=0
for s in $SERVERS; do
	case $s in vsftpd) want_vsftpd=1 ;; ferry) want_ferry=1 ;; *) die "unknown server $s" ;; esac
done
# install PACKAGE… from Debian. A policy-rc.d keeps the package's own service
# (vsftpd on port 21, all interfaces) from being started by the install.
install() {
	local policy=0 rc=0
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y "$@" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; } || rc=$?
	((policy)) && rm -f /usr/sbin/policy-rc.d
	return "$rc"
}
VSFTPD=$(command -v vsftpd || echo /usr/sbin/vsftpd)
if ((want_vsftpd)) && [[ ! -x $VSFTPD ]]; then
	log "installing vsftpd from Debian"
	install vsftpd || die "apt-get install vsftpd failed"
	VSFTPD=/usr/sbin/vsftpd
fi
command -v openssl >/dev/null || install openssl || die "apt-get install openssl failed"

log "building ferry-bench"
(cd "$ROOT" && go build -o "$WORK/ferry-bench" ./cmd/ferry-bench)
BENCH=$WORK/ferry-bench
[[ -n $S3_SCENARIOS ]] && want_ferry_s3=1 || want_ferry_s3=0
if ((want_ferry || want_ferry_s3)); then
	log "building ferry"
	(cd "$ROOT" && go build -o "$WORK/ferry" ./cmd/ferry) || die "go build ./cmd/ferry failed (BENCH_SERVERS=vsftpd runs vsftpd alone)"
	FERRY=$WORK/ferry
fi

# --- data (cached across runs) -------------------------------------------------
PUB=$CACHE/public
BIG=big-${SIZE_MB}MiB.bin
# The disk scenarios need the data tree; the S3 ones make their objects in the bucket.
if [[ -n $PLAIN_SCENARIOS ]]; then
	# The cache is emptied of everything but public/ below: refuse a directory that
	# was not made by this script.
	if [[ -d $CACHE && ! -e $CACHE/.ferry-bench-cache && -n $(ls -A "$CACHE") ]]; then
		die "BENCH_DATA=$CACHE exists and is not a ferry-bench cache (no .ferry-bench-cache in it)"
	fi
	mkdir -p "$PUB/upload"
	touch "$CACHE/.ferry-bench-cache"
	chmod 755 "$CACHE" "$PUB"
	if [[ ! -f $PUB/$BIG ]] || (($(stat -c %s "$PUB/$BIG") != SIZE_MB * 1048576)); then
		log "creating $PUB/$BIG"
		head -c "$((SIZE_MB * 1048576))" /dev/urandom >"$PUB/$BIG.tmp" && mv "$PUB/$BIG.tmp" "$PUB/$BIG"
	fi
	[[ -f $PUB/small.bin ]] || head -c 4096 /dev/urandom >"$PUB/small.bin"
	for n in "$LIST_N" "$BIGLIST_N"; do
		if [[ ! -f $CACHE/dir-$n.done ]]; then
			log "creating $PUB/dir-$n ($n empty files)"
			"$BENCH" -mkfiles "$PUB/dir-$n" -n "$n"
			touch "$CACHE/dir-$n.done"
		fi
	done
	# The cache is also Ferry's data directory (anonymous users see its public/);
	# Ferry's own state there (user store, homes) is made anew on every run.
	find "$CACHE" -mindepth 1 -maxdepth 1 ! -name public ! -name '*.done' ! -name .ferry-bench-cache -exec rm -rf {} +
	# vsftpd's anonymous uploads go to public/upload (owned by its ftp user; the
	# anonymous root itself must not be writable).
	chown ftp "$PUB/upload" 2>/dev/null || chmod 777 "$PUB/upload"
	rm -f "$PUB/upload/"*.bin
fi

# --- servers -----------------------------------------------------------------
wait_ready() { # port pid name
	local i line
	for ((i = 0; i < 200; i++)); do
		kill -0 "$2" 2>/dev/null || die "$3 exited; see $OUT/$3.log"
		if { exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
			line=
			IFS= read -r -t 5 line <&9 || true
			exec 9<&-
			[[ $line == 220* ]] && { wait_idle "$2"; return 0; }
		fi
		sleep 0.05
	done
	die "$3 did not greet on port $1"
}

# wait_idle waits (up to 120 s) until a server's CPU time stops growing, so
# that start-up work (Ferry sweeps the data tree for interrupted uploads)
# is not charged to the first scenario.
wait_idle() { # pid
	local prev=-1 cur i
	for ((i = 0; i < 240; i++)); do
		cur=$(awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null) || return 0
		[[ $cur == "$prev" ]] && return 0
		prev=$cur
		sleep 0.5
	done
}

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
mkdir -p "$WORK/empty"

if ((want_vsftpd)); then
	cat >"$WORK/vsftpd.conf" <<-EOF
		listen=YES
		listen_ipv6=NO
		listen_address=127.0.0.1
		listen_port=$VS_PORT
		background=NO
		anonymous_enable=YES
		local_enable=NO
		anon_root=$PUB
		no_anon_password=YES
		write_enable=YES
		anon_upload_enable=YES
		anon_other_write_enable=YES
		anon_mkdir_write_enable=NO
		anon_umask=022
		pasv_enable=YES
		pasv_min_port=${VS_PASV%-*}
		pasv_max_port=${VS_PASV#*-}
		max_clients=100000
		max_per_ip=100000
		idle_session_timeout=3600
		data_connection_timeout=300
		seccomp_sandbox=NO
		secure_chroot_dir=$WORK/empty
		xferlog_enable=NO
		dirmessage_enable=NO
		syslog_enable=NO
		vsftpd_log_file=$OUT/vsftpd-xfer.log
		ssl_enable=YES
		allow_anon_ssl=YES
		force_local_data_ssl=NO
		force_local_logins_ssl=NO
		ssl_ciphers=HIGH
		require_ssl_reuse=YES
		rsa_cert_file=$WORK/cert.pem
		rsa_private_key_file=$WORK/key.pem
	EOF
	[[ -n ${BENCH_VSFTPD_EXTRA:-} ]] && printf '%s\n' "$BENCH_VSFTPD_EXTRA" >>"$WORK/vsftpd.conf"
	cp "$WORK/vsftpd.conf" "$OUT/vsftpd.conf"
	PORT[vsftpd]=$VS_PORT USER[vsftpd]=anonymous PASS[vsftpd]=bench@ UPLOAD[vsftpd]=upload/ferry-bench-upload.bin
fi

if ((want_ferry)); then
	help=$("$FERRY" serve --help 2>&1 || true)
	has() { grep -qE -- "--$1([^a-z-]|\$)" <<<"$help"; }
	fargs=(serve --listen "127.0.0.1:$FERRY_PORT" --data "$CACHE" --passive-ports "$FERRY_PASV")
	missing=()
	# Settings equivalent to the vsftpd.conf above; limits out of the way.
	for kv in max-sessions=100000 max-sessions-per-ip=0 max-sessions-per-user=0 ban-threshold=0 \
		idle-timeout=1h login-timeout=5m data-timeout=5m log-level=warn anonymous=true \
		tls-cert="$WORK/cert.pem" tls-key="$WORK/key.pem"; do
		if has "${kv%%=*}"; then fargs+=("--$kv"); else missing+=("--${kv%%=*}"); fi
	done
	((${#missing[@]})) && log "ferry serve lacks ${missing[*]}: using its defaults there"
	# shellcheck disable=SC2206
	[[ -n ${BENCH_FERRY_EXTRA:-} ]] && fargs+=($BENCH_FERRY_EXTRA)
	printf '%s\n' "$FERRY ${fargs[*]}" >"$OUT/ferry.cmdline"
	# The named user for uploads (anonymous is read-only in Ferry).
	printf '%s\n' "$FERRY_PASS" | "$FERRY" user add "$FERRY_USER" --data "$CACHE" --password-stdin >"$OUT/ferry-user.log" 2>&1 ||
		die "ferry user add failed: $(cat "$OUT/ferry-user.log")"
	PORT[ferry]=$FERRY_PORT USER[ferry]=$FERRY_USER PASS[ferry]=$FERRY_PASS UPLOAD[ferry]=ferry-bench-upload.bin
fi

# start NAME starts (or restarts) a server and waits for its greeting.
start() {
	stop "$1"
	case $1 in
	vsftpd) "$VSFTPD" "$WORK/vsftpd.conf" >>"$OUT/vsftpd.log" 2>&1 & ;;
	ferry) "$FERRY" "${fargs[@]}" >>"$OUT/ferry.log" 2>&1 & ;;
	esac
	PID[$1]=$!
	wait_ready "${PORT[$1]}" "${PID[$1]}" "$1"
}
stop() {
	[[ -n ${PID[$1]:-} ]] || return 0
	kill "${PID[$1]}" 2>/dev/null || true
	wait "${PID[$1]}" 2>/dev/null || true
	unset "PID[$1]"
}
for s in $SERVERS; do start "$s"; done

# --- S3: versitygw, its test data, Ferry on it ----------------------------------
if ((want_ferry_s3)); then
	VGW=${FERRY_TOOLS:-$HOME/.cache/ferry-tools}/versitygw
	[[ -x $VGW ]] || VGW=$(command -v versitygw) ||
		die "versitygw not found: GOBIN=\${FERRY_TOOLS:-\$HOME/.cache/ferry-tools} go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	log "building s3ceiling"
	(cd "$ROOT" && go build -o "$WORK/s3ceiling" ./bench/s3ceiling)
	S3C=("$WORK/s3ceiling" -endpoint "http://127.0.0.1:$S3_PORT" -bucket "$S3_BUCKET" -access-key "$S3_AK" -secret-key "$S3_SK")
	mkdir -p "$S3_DATA/gw"
	ROOT_ACCESS_KEY=$S3_AK ROOT_SECRET_KEY=$S3_SK "$VGW" --port "127.0.0.1:$S3_PORT" --quiet posix "$S3_DATA/gw" \
		>>"$OUT/versitygw.log" 2>&1 &
	PID[versitygw]=$!
	for ((i = 0; i < 200; i++)); do
		curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break
		kill -0 "${PID[versitygw]}" 2>/dev/null || die "versitygw exited; see $OUT/versitygw.log"
		sleep 0.05
	done
	"${S3C[@]}" -mode mkbucket || die "cannot create the bucket $S3_BUCKET"
	log "S3 test data: public/$BIG and public/dir-$LIST_N/ ($LIST_N objects), cached in $S3_DATA"
	"${S3C[@]}" -mode fill-big -key "public/$BIG" -size "${SIZE_MB}MiB" || die "s3ceiling fill-big failed"
	"${S3C[@]}" -mode fill -prefix "public/dir-$LIST_N/" -n "$LIST_N" || die "s3ceiling fill failed"
	mkdir -p "$WORK/ferry-s3"
	printf '%s\n' "$FERRY_PASS" | "$FERRY" user add "$FERRY_USER" --data "$WORK/ferry-s3" --storage s3 --password-stdin \
		>>"$OUT/ferry-user.log" 2>&1 || die "ferry user add --storage s3 failed: $(cat "$OUT/ferry-user.log")"
	s3args=(serve --listen "127.0.0.1:$FERRY_S3_PORT" --data "$WORK/ferry-s3" --passive-ports "$FERRY_S3_PASV"
		--max-sessions 100000 --max-sessions-per-ip 0 --max-sessions-per-user 0 --ban-threshold 0
		--idle-timeout 1h --login-timeout 5m --data-timeout 5m --log-level warn --anonymous=true
		--storage s3 --s3-endpoint "http://127.0.0.1:$S3_PORT" --s3-bucket "$S3_BUCKET" --s3-region us-east-1 --s3-path-style)
	# shellcheck disable=SC2206
	[[ -n ${BENCH_FERRY_S3_EXTRA:-} ]] && s3args+=($BENCH_FERRY_S3_EXTRA)
	printf '%s\n' "$FERRY ${s3args[*]}" >"$OUT/ferry-s3.cmdline"
	AWS_ACCESS_KEY_ID=$S3_AK AWS_SECRET_ACCESS_KEY=$S3_SK "$FERRY" "${s3args[@]}" >>"$OUT/ferry-s3.log" 2>&1 &
	PID[ferry-s3]=$!
	PORT[ferry-s3]=$FERRY_S3_PORT
	wait_ready "$FERRY_S3_PORT" "${PID[ferry-s3]}" ferry-s3
fi

# --- runs --------------------------------------------------------------------
run() { # server round key limit-seconds scenario-args…
	local s=$1 r=$2 key=$3 limit=$4
	shift 4
	# Memory is measured on a fresh server: a Go heap that grew in an earlier
	# scenario would otherwise absorb the new allocations unseen.
	case $key in list-big | idle-*) start "$s" ;; esac
	timeout -k 10 "$limit" "$BENCH" -addr "127.0.0.1:${PORT[$s]}" -label "$s" -round "$r" -key "$key" \
		-pid "${PID[$s]}" "$@" >>"$RESULTS" 2>>"$OUT/bench.log" || true
	tail -n 1 "$OUT/bench.log" >&2
	kill -0 "${PID[$s]}" 2>/dev/null || die "$s died during $key; see $OUT/$s.log"
}

# run_s3 runs one S3 scenario on both sides: Ferry on S3 through
# ferry-bench, the plain client through s3ceiling.
run_s3() { # round scenario
	local r=$1 sc=$2 named=(-user "$FERRY_USER" -pass "$FERRY_PASS") anon=(-user anonymous -pass bench@)
	local direct=("${S3C[@]}" -label s3-direct -round "$r")
	case $sc in
	s3-retr)
		run ferry-s3 "$r" s3-retr "$xfer_limit" "${anon[@]}" -scenario retr -file "$BIG" -timeout 300s
		timeout -k 10 "$xfer_limit" "${direct[@]}" -mode get -key "public/$BIG" >>"$RESULTS" 2>>"$OUT/bench.log" || true
		timeout -k 10 "$xfer_limit" "${direct[@]}" -mode relay -key "public/$BIG" >>"$RESULTS" 2>>"$OUT/bench.log" || true
		;;
	s3-stor)
		run ferry-s3 "$r" s3-stor "$xfer_limit" "${named[@]}" -scenario stor -upload ferry-bench-upload.bin \
			-size "${SIZE_MB}MiB" -timeout 300s
		timeout -k 10 "$((xfer_limit * 9))" "${direct[@]}" -mode put -key "home/$FERRY_USER/s3ceiling-upload.bin" \
			-size "${SIZE_MB}MiB" -parts "${BENCH_S3_PARTS:-8MiB,16MiB,64MiB}" -conc "${BENCH_S3_CONC:-1,4,8}" \
			>>"$RESULTS" 2>>"$OUT/bench.log" || true
		;;
	s3-list)
		run ferry-s3 "$r" s3-list "$((60 + LIST_N / 1000))" "${anon[@]}" -scenario list -list-cmd MLSD \
			-path "dir-$LIST_N" -expect "$LIST_N" -reps 5
		timeout -k 10 "$((60 + LIST_N / 1000))" "${direct[@]}" -mode list -prefix "public/dir-$LIST_N/" -reps 5 \
			>>"$RESULTS" 2>>"$OUT/bench.log" || true
		;;
	s3-small)
		run ferry-s3 "$r" s3-small "$((120 + S3_SMALL_N / 10))" "${named[@]}" -scenario smallstor -n "$S3_SMALL_N" \
			-c 4 -size 4KiB -upload small -timeout 60s
		timeout -k 10 "$((120 + S3_SMALL_N / 10))" "${direct[@]}" -mode small -n "$S3_SMALL_N" -c 4 -object-size 4KiB \
			-prefix "home/$FERRY_USER/" >>"$RESULTS" 2>>"$OUT/bench.log" || true
		;;
	*) die "unknown scenario $sc" ;;
	esac
	tail -n 1 "$OUT/bench.log" >&2
}

# run_limits runs the four ceilings of ferry-bench (no server): sendfile and
# TLS sending of the retr file, receiving SIZE_MB into the upload directory,
# SHA-256 of SIZE_MB (what an upload hashed as it arrives can reach).
run_limits() { # round
	local k
	for k in limit-sendfile limit-tls limit-recv limit-sha256; do
		timeout -k 10 "$xfer_limit" "$BENCH" -label limit -round "$1" -key "$k" -scenario "$k" -file "$PUB/$BIG" \
			-size "${SIZE_MB}MiB" -dir "$PUB/upload" -tls-cert "$WORK/cert.pem" -tls-key "$WORK/key.pem" \
			-timeout 300s >>"$RESULTS" 2>>"$OUT/bench.log" || true
		tail -n 1 "$OUT/bench.log" >&2
	done
}

xfer_limit=$((360 + SIZE_MB / 5))
for ((round = 1; round <= ROUNDS; round++)); do
	log "round $round of $ROUNDS"
	[[ -n $PLAIN_SCENARIOS ]] && cat "$PUB/$BIG" >/dev/null # page-cached, for both servers alike
	for sc in $S3_SCENARIOS; do run_s3 "$round" "$sc"; done
	for sc in $PLAIN_SCENARIOS; do
		[[ $sc == limit ]] && { run_limits "$round"; continue; }
		for s in $SERVERS; do
			anon=(-user anonymous -pass bench@)
			named=(-user "${USER[$s]}" -pass "${PASS[$s]}")
			case $sc in
			retr | ftps-retr) run "$s" "$round" "$sc" "$xfer_limit" "${anon[@]}" -scenario "$sc" -file "$BIG" -timeout 300s ;;
			# A server may fsync an upload before its 226: the wait shows as final_reply_s.
			stor | ftps-stor) run "$s" "$round" "$sc" "$xfer_limit" "${named[@]}" -scenario "$sc" \
				-upload "${UPLOAD[$s]}" -size "${SIZE_MB}MiB" -timeout 300s ;;
			list)
				run "$s" "$round" list "$((60 + LIST_N / 1000))" "${anon[@]}" -scenario list \
					-path "dir-$LIST_N" -expect "$LIST_N" -reps 5
				run "$s" "$round" list-big "$((120 + BIGLIST_N / 2000))" "${anon[@]}" -scenario list \
					-path "dir-$BIGLIST_N" -expect "$BIGLIST_N" -reps 1 -timeout 600s
				;;
			sessions)
				for c in $SESS_C1 $SESS_C2; do
					key=sessions-1
					[[ $c == "$SESS_C2" ]] && key=sessions-2
					run "$s" "$round" "$key" "$((SESS_SECS + 180))" "${anon[@]}" -scenario sessions \
						-c "$c" -duration "${SESS_SECS}s" -small small.bin -timeout 60s
				done
				;;
			idle)
				for n in $IDLE_N1 $IDLE_N2; do
					key=idle-1
					[[ $n == "$IDLE_N2" ]] && key=idle-2
					run "$s" "$round" "$key" "$((300 + n / 5))" "${anon[@]}" -scenario idle -n "$n" -timeout 300s
				done
				;;
			*) die "unknown scenario $sc" ;;
			esac
		done
	done
done

# --- report ------------------------------------------------------------------
labels=($SERVERS)
{
	printf '## Ferry vs vsftpd — %s\n\n' "$(date -u +'%Y-%m-%d %H:%M UTC')"
	printf 'Machine: %s cores, %s, kernel %s, %s, vsftpd %s.\n' "$(nproc)" \
		"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(uname -r)" \
		"$(go version | cut -d' ' -f3)" "$(dpkg-query -W -f='${Version}' vsftpd 2>/dev/null || echo '?')"
	printf 'Sizes: transfers %s MiB, listings %s and %s entries, sessions c=%s and c=%s for %ss, idle n=%s and n=%s; %s round(s).\n\n' \
		"$SIZE_MB" "$LIST_N" "$BIGLIST_N" "$SESS_C1" "$SESS_C2" "$SESS_SECS" "$IDLE_N1" "$IDLE_N2" "$ROUNDS"
	if [[ -n $PLAIN_SCENARIOS ]]; then
		"$BENCH" -report "$RESULTS" -a "${labels[0]:-vsftpd}" -b "${labels[1]:-ferry}"
	fi
	if [[ -n $S3_SCENARIOS ]]; then
		printf '\n### On S3: Ferry on versitygw against a plain S3 client (bench/s3ceiling)\n\n'
		printf 'versitygw %s, posix backend in %s; Ferry with the default s3_part_size and s3_buffer_budget.\n\n' \
			"$(vgw_version)" "$S3_DATA"
		"$BENCH" -report "$RESULTS" -a s3-direct -b ferry-s3 -limit s3-direct
	fi
	printf '\nLoad average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/report.md"
cat "$OUT/report.md"
log "results: $RESULTS, report: $OUT/report.md, logs: $OUT"
