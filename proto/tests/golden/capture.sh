#!/usr/bin/env bash
# Records session.txt: the reference Java client (Capture.java) talking to a real ZooKeeper
# server through record.py. Needs Debian's zookeeper package, a JDK and python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
zk_port="$(free_port)"
proxy_port="$(free_port)"
cp="/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-nop.jar"

cat > "$work/zoo.cfg" <<CFG
tickTime=200
dataDir=$work/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
extendedTypesEnabled=true
CFG
java -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zoo.cfg" >"$work/server.log" 2>&1 &
for _ in $(seq 100); do
    ruok="$(python3 -c 'import socket,sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(b"ruok"); print(s.recv(4).decode())
except OSError:
    print("")' "$zk_port")"
    [ "$ruok" = imok ] && break
    sleep 0.1
done

python3 "$here/record.py" "$proxy_port" "$zk_port" "$here/session.txt" &
recorder=$!
sleep 0.3
javac -d "$work" -cp "$cp" "$here/Capture.java"
java -cp "$work:$cp" Capture "127.0.0.1:$proxy_port"
wait "$recorder"
echo "wrote $here/session.txt ($(wc -l < "$here/session.txt") frames)"
