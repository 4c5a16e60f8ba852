#!/usr/bin/env bash
# Regenerates frames.txt: starts a standalone ZooKeeper server on a free loopback port, puts
# record.py in front of it, runs Capture.java (the reference Java client) through the proxy,
# then stops both. Needs Debian's zookeeper package (jars in /usr/share/java), a JDK and
# python3. Usage: ./capture.sh [output file, default frames.txt next to this script]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/frames.txt}"
jars=/usr/share/java
cp="$jars/zookeeper.jar:$jars/zookeeper-jute.jar:$jars/slf4j-api.jar:$jars/slf4j-nop.jar"
cp="$cp:$jars/netty-handler.jar:$jars/netty-transport.jar:$jars/netty-common.jar"
cp="$cp:$jars/netty-buffer.jar:$jars/netty-codec.jar:$jars/netty-resolver.jar"
cp="$cp:$jars/metrics-core.jar:$jars/commons-cli.jar"

work="$(mktemp -d)"
server_pid=""
proxy_pid=""
cleanup() {
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
zk_port="$(free_port)"
proxy_port="$(free_port)"

# A short tick so that 4 s is the longest session timeout and pings come quickly;
# extended types for TTL nodes; SASL (DIGEST-MD5) next to the digest scheme.
cat >"$work/zoo.cfg" <<CFG
tickTime=200
dataDir=$work/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
extendedTypesEnabled=true
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
CFG
cat >"$work/server.jaas" <<'JAAS'
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_golden="secret";
};
JAAS
cat >"$work/client.jaas" <<'JAAS'
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="golden"
    password="secret";
};
JAAS

java -cp "$cp" -Djava.security.auth.login.config="$work/server.jaas" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zoo.cfg" >"$work/server.log" 2>&1 &
server_pid=$!

ruok() {
    python3 - "$zk_port" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(b"ruok")
    print(s.recv(4).decode())
except OSError:
    print("")
PY
}
for _ in $(seq 150); do
    [ "$(ruok)" = imok ] && break
    sleep 0.2
done
[ "$(ruok)" = imok ] || { cat "$work/server.log"; echo "server did not start" >&2; exit 1; }

python3 "$here/record.py" "$proxy_port" "$zk_port" "$out" &
proxy_pid=$!
sleep 0.5

javac -d "$work" -cp "$cp" "$here/Capture.java"
java -cp "$work:$cp" -Djava.security.auth.login.config="$work/client.jaas" \
    Capture "127.0.0.1:$proxy_port"

sleep 0.5
kill -TERM "$proxy_pid"
wait "$proxy_pid"
proxy_pid=""
echo "wrote $out ($(grep -vc '^#' "$out") frames)"
