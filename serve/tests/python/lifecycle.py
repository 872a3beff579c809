"""A full lifecycle through dockhand-serve with the python-socketio client:
usage: lifecycle.py <url>. Exits non-zero, saying why, on the first failure."""
import sys
import threading
import time

import socketio

url = sys.argv[1]
pushed = {"container-event": [], "activity": [], "stats": []}
lock = threading.Lock()
client = socketio.Client(reconnection=False)
for name in pushed:
    client.on(name, (lambda name: lambda data: (lock.acquire(), pushed[name].append(data), lock.release()))(name))
client.connect(url, transports=["websocket"], wait_timeout=10)


def call(event, data=None):
    return client.call(event, data or {}, timeout=120)


def ok(reply):
    if isinstance(reply, dict) and reply.get("error"):
        sys.exit(f"an error reply: {reply}")
    return reply


def expect(name, match, limit=10):
    deadline = time.time() + limit
    while time.time() < deadline:
        with lock:
            found = [d for d in pushed[name] if match(d)]
        if found:
            return found[0]
        time.sleep(0.05)
    sys.exit(f"no {name} push matched within {limit}s; saw {pushed[name][-5:]}")


LISTENER = ('use IO::Socket::UNIX; $| = 1; umask 0; '
            'my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ENV{DOCKHAND_CHANNEL}, Listen => 8) or die; '
            'print "listening\\n"; '
            'while (my $c = $s->accept) { $c->autoflush(1); while (my $l = <$c>) { chomp $l; print $c "{\\"got\\":$l}\\n"; } }')

created = ok(call("create", {"image": "fixtures/redis:7", "command": ["perl", "-e", LISTENER],
                             "channel": True, "wait_log": "listening", "env": ["FROM=python"], "init": True}))
cid = created["id"]
assert created["state"] == "running", created
assert ok(call("status", {"id": cid}))["channel"]["connected"] is True

reply = ok(call("send-message", {"id": cid, "message": {"hello": "from python"}}))
assert reply["reply"] == {"got": {"hello": "from python"}}, reply

ok(call("watch", {"id": cid}))
expect("stats", lambda d: d["id"] == cid, limit=30)

assert ok(call("stop", {"id": cid}))["state"] == "exited"
expect("container-event", lambda d: d["id"] == cid and d["verb"] == "die")
started = ok(call("start", {"id": cid}))
assert started["state"] == "running", started
# The start answers once the listener logged again: it answers at once.
reply = ok(call("send-message", {"id": cid, "message": "after start"}))
assert reply["reply"] == {"got": "after start"}, reply
updated = ok(call("update", {"id": cid, "files": [{"path": "/etc/motd-from-python", "content": "v2\n"}]}))
assert updated["state"] == "running", updated
restarted = ok(call("restart", {"id": cid}))
assert restarted["state"] == "running", restarted
reply = ok(call("send-message", {"id": cid, "message": "after restart"}))
assert reply["reply"] == {"got": "after restart"}, reply
names = [c["id"] for c in ok(call("list"))["containers"]]
assert cid in names, names

missing = call("stop", {"id": "no-such-container"})
assert missing["error"] is True and missing["error_type"] == "not_found", missing
assert missing["details"]["operation"] == "stop", missing
bad = call("create", {"image": ["not", "a", "string"]})
assert bad["error_type"] == "validation", bad

assert ok(call("delete", {"id": cid}))["deleted"] is True
expect("container-event", lambda d: d["id"] == cid and d["verb"] == "destroy")
expect("activity", lambda d: d["operation"] == "delete" and d["ok"])
client.disconnect()
print("python lifecycle: ok")
